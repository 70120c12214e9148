"""The canary policy's pure parts: the policy value (held in the control document), which version becomes the
canary, when a newer one supersedes it, and the decision on its evidence. No I/O: the trainer's analyst
(training_job/canary.py) reads the ledger and the replays, calls these, and makes the edit.

Example:
    policy = AutoPromotion(enabled=True, alpha=0.05)
    decision, why, alpha = judge(policy, evidence(pairs), generation=0, holdout=(0.93, 0.92, 486),
                                 expired=False, newer=None)      # promote | rollback | wait
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from layers.analysis.paired import Evidence, spend, verdict

if TYPE_CHECKING:
    from layers.registry.control import ModelRoute


@dataclass
class AutoPromotion:
    """The canary policy of one model, held in the control document and applied by the trainer's canary analysis (training_job/canary.py):
    the newest mirrored version becomes a canary at `canary_percent`; it is promoted when the paired sequential
    test on images neither version trained on says it is better at `alpha` (after at least `min_samples` such
    images) and its hold-out accuracy is not lower beyond noise; it is rolled back (and remembered in
    `rejected`) when the test says it is worse at `alpha`, or when `max_samples` images or `max_age_s` seconds
    pass without a decision."""
    enabled: bool = False
    canary_percent: int = 10
    min_samples: int = 8
    alpha: float = 0.05
    max_samples: int = 400
    max_age_s: int = 24 * 3600
    rejected: list[int] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"enabled": self.enabled, "canary_percent": self.canary_percent, "min_samples": self.min_samples,
                "alpha": self.alpha, "max_samples": self.max_samples, "max_age_s": self.max_age_s,
                "rejected": sorted(self.rejected)}

    @classmethod
    def from_json(cls, data: dict | None) -> "AutoPromotion":
        data = data or {}               # a document from before alpha had a `margin`: it is no longer read
        return cls(enabled=bool(data.get("enabled", False)), canary_percent=int(data.get("canary_percent", 10)),
                   min_samples=int(data.get("min_samples", 8)), alpha=float(data.get("alpha", 0.05)),
                   max_samples=int(data.get("max_samples", 400)), max_age_s=int(data.get("max_age_s", 24 * 3600)),
                   rejected=[int(v) for v in data.get("rejected") or []])



def retrain(meta) -> bool:
    """Whether a version may become a canary: one the trainer retrained from a parent, that passed its gates.
    The bootstrap's versions (no parent) and hand-published ones reach traffic through DataOps only: a
    canary spends alpha (layers.analysis.paired.spend), which belongs to what the crowd taught."""
    return meta.parent is not None and bool(meta.conversion.get("ok"))


def supersedes(newer_fixes: int, canary_fixes: int) -> bool:
    """Whether a newer version has learnt enough more to replace an undecided canary: at least twice the
    voted images. Canaries then come at geometric steps (2, 4, 8, ... times the first one's votes), so each
    gets evidence of its own, and alpha is split among few of them. Pure."""
    return newer_fixes >= max(2 * canary_fixes, canary_fixes + 1)


def judge(policy: AutoPromotion, ev: Evidence, generation: int, holdout: tuple[float, float, int] | None,
          expired: bool, newer: int | None) -> tuple[str, str, float]:
    """(promote | rollback | wait, why, the alpha it was tested at) for a canary, the generation-th tried
    against the live version, with `newer` the newest gated version above it (or None). Pure."""
    alpha = spend(policy.alpha, generation)
    decision, why = verdict(ev, alpha, policy.max_samples, holdout, expired=expired)
    if decision == "promote" and ev.n < policy.min_samples:
        decision, why = "wait", f"{ev.n} of at least {policy.min_samples} honest images so far; {why}"
    if decision == "wait" and newer is not None and ev.n >= policy.min_samples and not leaning(ev, alpha):
        decision, why = "rollback", f"superseded by v{newer}, trained on more votes; {why}"
    return decision, why, alpha


def leaning(ev: Evidence, alpha: float) -> bool:
    """Whether the evidence so far is halfway (on the log scale) to promoting the canary at `alpha`. Only a
    rollback depends on it, so it cannot raise the chance of a false promotion. Pure."""
    return ev.lr_better >= (1 / alpha) ** 0.5


def next_canary(route: ModelRoute, servable: Callable[[int], bool]) -> int | None:
    """The version the policy makes the canary: the newest mirrored one above the live version. Pure."""
    live = route.live
    if live is None:
        return None
    fresh = [v for v in route.mirror if v > live and v not in route.auto.rejected and route.weights.get(v, 0) == 0]
    for v in sorted(fresh, reverse=True):
        if servable(v):
            return v
    return None


def current_canary(route: ModelRoute) -> int | None:
    live = route.live
    canaries = [v for v, w in route.weights.items() if w > 0 and v != live]
    return max(canaries) if canaries else None
