"""Canary analysis that closes the loop: a new version becomes a canary, the replayed live traffic judges it,
and it is promoted or rolled back, by the policy in the control document (layers.registry.AutoPromotion).

Example:
    analyst = CanaryAnalyst(settings, registry, emit)
    step = analyst.step("engineer", consensus)   # None (policy off / nothing to do) or the Step taken;
                                                 # consensus() -> the ledger's accepted labels, read if needed

One step, run by the trainer every few seconds:
  1. no canary yet: the newest mirrored version above the live one (never one rejected before, always one
     that passed its gates) gets `canary_percent` of the traffic;
  2. a canary: the live and canary versions re-score the recent `predict-decoy` traffic (training_job.replay,
     answers remembered); once `min_samples` of those images have a consensus label in the ledger, `judge`
     decides: promote when the canary's accuracy on them beats the live version's by `margin`, else roll back.
Each action is one audited, conditional DataOps edit by `system:auto-promotion`, and a model-event
(`canary`, `promoted`, `rolled-back`) with the evidence.

IMPORTANT: fix-labelled accuracy measures whether a version learnt what people corrected. A canary trained on
those corrections is expected to win on them; the publish gates (hold-out accuracy, parity) already keep a
version that learnt them at the expense of everything else from being published at all.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from layers.config import Settings
from layers.errors import AfterDarkError, Conflict
from layers.registry import AutoPromotion, ModelRoute, Registry
from layers.registry.dataops import DataOps
from layers.serving.replay import Replayer

ACTOR = "system:auto-promotion"
WINDOW_S = 7 * 24 * 3600          # the traffic replayed: the last week of predict-decoy records...
LIMIT = 2000                       # ...at most this many


@dataclass(frozen=True)
class Step:
    action: str                    # canary | promoted | rolled-back | waiting
    version: int
    live: int
    reason: str
    evidence: dict = field(default_factory=dict)


def judge(policy: AutoPromotion, labelled: int, live_accuracy: float | None,
          canary_accuracy: float | None) -> tuple[str, str]:
    """("wait" | "promote" | "rollback", why). Pure."""
    if labelled < policy.min_samples or live_accuracy is None or canary_accuracy is None:
        return "wait", f"{labelled} of {policy.min_samples} fix-labelled samples so far"
    gain = canary_accuracy - live_accuracy
    verdict = f"fix-labelled accuracy {canary_accuracy:.3f} vs live {live_accuracy:.3f} on {labelled} images"
    if gain >= policy.margin:
        return "promote", f"{verdict}: +{gain:.3f} >= margin {policy.margin}"
    return "rollback", f"{verdict}: {gain:+.3f} < margin {policy.margin}"


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


class CanaryAnalyst:
    def __init__(self, settings: Settings, registry: Registry, emit: Callable[..., None],
                 replayer: Replayer | None = None, topic: str | None = None, window_s: float = WINDOW_S) -> None:
        self.settings, self.registry, self.emit = settings, registry, emit
        self.window_s = window_s
        self.replayer = replayer or Replayer(settings, registry.store)
        self.topic = topic
        self._waiting: dict[int, str] = {}       # canary -> the last "waiting" reason (announced once each)

    def step(self, model: str, consensus: Callable[[], dict]) -> Step | None:
        """One look at the model's route; at most one edit. `consensus()`: the ledger's accepted labels."""
        ops = DataOps(self.registry, model)
        doc, _ = self.registry.control()
        route = doc.models.get(model)
        if route is None or not route.auto.enabled or route.live is None:
            return None
        live, canary = route.live, current_canary(route)
        if canary is None:
            candidate = next_canary(route, lambda v: bool(ops.metadata(v).conversion.get("ok")))
            if candidate is None:
                return None
            why = f"the newest version gets {route.auto.canary_percent}% of traffic"
            return self._act(lambda: ops.canary(candidate, route.auto.canary_percent, ACTOR, doc.revision, why),
                             Step("canary", candidate, live, why), model)
        report = self.replayer.report(model, [live, canary], consensus(), from_offset=None,
                                      since_ms=int((time.time() - self.window_s) * 1000), limit=LIMIT, topic=self.topic)
        accuracy = lambda v: report["versions"][str(v)]["accuracy"]
        verdict, why = judge(route.auto, report["labelled"], accuracy(live), accuracy(canary))
        evidence = {"images": report["images"], "labelled": report["labelled"], "agreement": report["agreement"],
                    "live_accuracy": accuracy(live), "canary_accuracy": accuracy(canary)}
        if verdict == "wait":
            if self._waiting.get(canary) != why:
                self._waiting[canary] = why
                print(f"[canary] v{canary} against live v{live}: {why}", flush=True)
            return Step("waiting", canary, live, why, evidence)
        if verdict == "promote":
            return self._act(lambda: ops.promote(canary, ACTOR, doc.revision, why),
                             Step("promoted", canary, live, why, evidence), model)
        return self._act(lambda: ops.reject(canary, ACTOR, why, doc.revision), Step("rolled-back", canary, live, why, evidence),
                         model)

    def _act(self, edit: Callable[[], object], step: Step, model: str) -> Step | None:
        """The edit, on the document the decision was made on (a concurrent change: decide again next time)."""
        try:
            edit()
        except Conflict:
            print(f"[canary] the control document changed while deciding on v{step.version}; looking again", flush=True)
            return None
        except AfterDarkError as err:
            print(f"[canary] could not {step.action} v{step.version}: {err.message}", flush=True)
            return None
        print(f"[canary] {step.action} v{step.version} (live v{step.live}): {step.reason}", flush=True)
        try:
            self.emit(step.action, step.version, step.reason, live=step.live, actor=ACTOR, **step.evidence)
        except AfterDarkError as err:          # the edit is made and audited; only the announcement is lost
            print(f"[canary] model-event for v{step.version} not sent: {err.message}", flush=True)
        return step
