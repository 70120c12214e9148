"""Canary analysis that closes the loop: a new version becomes a canary, it is judged against the live version
on images neither was trained on, and it is promoted or rolled back, by the policy in the control document
(layers.registry.AutoPromotion), at a stated error rate.

Example:
    analyst = CanaryAnalyst(settings, registry, emit)
    step = analyst.step("engineer", consensus)   # None (policy off / nothing to do) or the Step taken;
                                                 # consensus() -> the ledger's Consensus, read when needed

One step, run by the trainer every few seconds:
  1. no canary yet: the newest mirrored version above the live one that the trainer retrained (never one
     rejected before, always one that passed its gates) gets `canary_percent` of the traffic;
  2. a canary: the honest images are every image with an accepted consensus label that NEITHER version was
     trained on: the evaluation split (layers.ledger.split), votes that arrived after the canary's training
     watermark (prequential: tested before any version trains on them), and so every replayed decoy that has
     such a label. Both versions answer each of them (layers.analysis.replay's answers, remembered), and the
     paired sequential test (layers.analysis.paired: discordant pairs, mSPRT) decides:
       promote   the canary is better at alpha, and its hold-out accuracy is not lower than live's beyond noise;
       rollback  it is worse at alpha, or `max_samples` honest images or `max_age_s` pass without a decision;
       supersede a newer version, trained on at least twice the voted images, has passed its gates, and the
                 canary is still undecided after `min_samples` honest images and not leaning its way (its
                 LR_better under sqrt(1/alpha), halfway to a promotion): it is rolled back, the newer one is
                 next. A canary that is leaning its way keeps its evidence: a newer one would start from none.
     Each canary tried against one live version spends part of alpha (layers.analysis.paired.spend: the k-th
     is tested at alpha / 2^(k+1)), so the chance that any of them is promoted while no better is <= alpha.
     The newest live traffic (predict-decoy, read incrementally: only what is new since the last step) is
     replayed too, for the agreement of the two versions on it; it informs, the labelled images decide.
Each action is one audited, conditional DataOps edit by `system:auto-promotion`, and a model-event
(`canary`, `promoted`, `rolled-back`) carrying the evidence: n, the discordant counts, LR and p.

IMPORTANT: the canary is never judged on what it was trained on: images in its data.json's training fixes
are left out, whatever the ledger says now. Repeated looks keep the error rate (the mSPRT is always valid).
A canary's age is counted from when this analyst first saw it (a restarted trainer starts the clock again).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from layers.analysis.canary import current_canary, judge, next_canary, retrain, supersedes
from layers.analysis.paired import evidence
from layers.config import Settings
from layers.errors import AfterDarkError, Conflict
from layers.ledger import Consensus
from layers.registry import Registry
from layers.registry.dataops import DataOps
from layers.analysis.replay import DecoyTail, Replayer, decoy_window_s

ACTOR = "system:auto-promotion"
LIMIT = 2000                       # the newest decoy records read per step, at most (the agreement's traffic)


@dataclass(frozen=True)
class Step:
    action: str                    # canary | promoted | rolled-back | waiting
    version: int
    live: int
    reason: str
    evidence: dict = field(default_factory=dict)


class CanaryAnalyst:
    def __init__(self, settings: Settings, registry: Registry, emit: Callable[..., None],
                 replayer: Replayer | None = None, topic: str | None = None, window_s: float | None = None) -> None:
        self.settings, self.registry, self.emit = settings, registry, emit
        self.window_s = window_s or decoy_window_s(settings)      # default: as long as decoys are kept
        self.replayer = replayer or Replayer(settings, registry.store)
        self.topic = topic or settings.kafka.topics.predict_decoy
        self._tails: dict[str, DecoyTail] = {}
        self._ops: dict[str, DataOps] = {}        # one per model: versions' metadata is read once (immutable)
        self._trained: dict[tuple[str, int], set[str]] = {}
        self._first_seen: dict[tuple[str, int], float] = {}
        self._waiting: dict[int, str] = {}       # canary -> the last "waiting" reason (announced once each)

    def trained(self, model: str, version: int) -> set[str]:
        key = (model, version)
        if key not in self._trained:
            self._trained[key] = self.registry.trained_fixes(model, version)
        return self._trained[key]

    def honest(self, model: str, live: int, canary: int, agreed: Consensus) -> dict[str, str]:
        """The images with an accepted consensus label that neither version trained on: sha -> label."""
        seen = self.trained(model, live) | self.trained(model, canary)
        return {sha: a["label"] for sha, a in sorted(agreed.accepted.items()) if sha not in seen}

    def step(self, model: str, consensus: Callable[[], Consensus]) -> Step | None:
        """One look at the model's route; at most one edit."""
        ops = self._ops.setdefault(model, DataOps(self.registry, model))
        doc, _ = self.registry.control()
        route = doc.models.get(model)
        if route is None or not route.auto.enabled or route.live is None:
            return None
        live, canary = route.live, current_canary(route)
        if canary is None:
            candidate = next_canary(route, lambda v: retrain(ops.metadata(v)))
            if candidate is None:
                return None
            why = f"the newest version gets {route.auto.canary_percent}% of traffic"
            return self._act(lambda: ops.canary(candidate, route.auto.canary_percent, ACTOR, doc.revision, why),
                             Step("canary", candidate, live, why), model)
        policy = route.auto
        labels = self.honest(model, live, canary, consensus())
        answers = self.replayer.answers(model, [live, canary], list(labels))
        labels = {sha: label for sha, label in labels.items() if sha in answers[live]}
        ev = evidence((answers[canary][sha] == label, answers[live][sha] == label) for sha, label in labels.items())
        hold = lambda v: ops.metadata(v).metrics.get("holdout", {})
        holdout = (hold(canary).get("accuracy") or 0.0, hold(live).get("accuracy") or 0.0,
                   int(ops.metadata(live).data.get("counts", {}).get("holdout") or 0))
        age = time.time() - self._first_seen.setdefault((model, canary), time.time())
        generation = sum(v > live for v in policy.rejected)        # canaries tried against this live version
        fixes = lambda v: int(ops.metadata(v).data.get("counts", {}).get("fixes") or 0)
        newer = next_canary(route, lambda v: v > canary and retrain(ops.metadata(v)) and supersedes(fixes(v), fixes(canary)))
        decision, why, alpha = judge(policy, ev, generation, holdout, age > policy.max_age_s, newer)
        details = {**ev.to_json(), "alpha": alpha, "generation": generation,
                   "holdout": {"canary": holdout[0], "live": holdout[1], "images": holdout[2]},
                   **self._traffic(model, live, canary)}
        if decision == "wait":
            if self._waiting.get(canary) != why:
                self._waiting[canary] = why
                print(f"[canary] v{canary} against live v{live}: {why}", flush=True)
            return Step("waiting", canary, live, why, details)
        if decision == "promote":
            return self._act(lambda: ops.promote(canary, ACTOR, doc.revision, why),
                             Step("promoted", canary, live, why, details), model)
        return self._act(lambda: ops.reject(canary, ACTOR, why, doc.revision),
                         Step("rolled-back", canary, live, why, details), model)

    def disagreements(self, model: str, live: int, canary: int, limit: int = 5) -> list[str]:
        """The newest live-traffic images on which the live version and the canary answer differently (from
        the answers the last step already computed)."""
        tail = self._tails.get(model)
        if tail is None:
            return []
        images = tail.images(since_ms=int((time.time() - self.window_s) * 1000))[:200]
        answers = self.replayer.answers(model, [live, canary], images)
        return [sha for sha in images if sha in answers[live] and sha in answers[canary]
                and answers[live][sha] != answers[canary][sha]][:limit]

    def _traffic(self, model: str, live: int, canary: int) -> dict:
        """How often the two versions agree on the newest live traffic (read incrementally)."""
        tail = self._tails.get(model)
        if tail is None:
            tail = self._tails[model] = DecoyTail(self.settings, self.topic, model, per_step=LIMIT, keep=LIMIT)
        tail.read()
        images = tail.images(since_ms=int((time.time() - self.window_s) * 1000))
        if not images:
            return {"traffic": {"images": 0, "agreement": None, "skipped": tail.skipped}}
        answers = self.replayer.answers(model, [live, canary], images)
        images = [sha for sha in images if sha in answers[live]]
        agree = sum(answers[live][sha] == answers[canary][sha] for sha in images)
        return {"traffic": {"images": len(images), "agreement": round(agree / len(images), 4) if images else None,
                            "skipped": tail.skipped}}

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
