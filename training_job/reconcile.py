"""The reconciler: finishes what a crash interrupted, so every complete version is registered and announced.

Example:
    actions = reconcile(registry, runs, "engineer", emit)     # ["registered v7 (published, not registered)", ...]

It runs when the learner starts and every `reconcile_every_s`, and is idempotent:
  * a committed version (metadata.json exists) above the control document's `registered_through` was
    published by a run that died before registering it: register it (canary candidate) and announce it;
  * a run whose row says "published" or "registered" died before its model-event: register (a no-op when
    done) and announce it, then finish the row;
  * a run still "started" died while training: finish it as failed. Its votes are in the ledger and its
    watermark never counted as trained, so the next trigger trains on them.

Announcements are at-least-once: a crash between an event and its row update repeats the event.
"""
from __future__ import annotations

from typing import Callable

from layers.ledger import TrainingRuns
from layers.registry import Policy, Registry
from training_job.publish import register_and_announce

INTERRUPTED = "interrupted: the trainer stopped during this run"


def reconcile(registry: Registry, runs: TrainingRuns, model: str, emit: Callable[..., None],
              policy: Policy = Policy()) -> list[str]:
    actions: list[str] = []
    route = registry.control()[0].models.get(model)
    through = route.registered_through if route else 0
    for version in (v for v in registry.versions(model) if v > through):
        meta = registry.metadata(model, version)
        run_id = (meta.data.get("ledger") or {}).get("run_id")
        register_and_announce(registry, emit, model, version, policy, run_id, "reconciled: published, not registered",
                              actor="reconciler")
        if run_id:
            runs.finish(run_id, "published", version=version, reason="registered by the reconciler")
        actions.append(f"registered v{version} (published, not registered)")
    for run in runs.unfinished(model):
        if run.stage in ("published", "registered") and run.version is not None:
            register_and_announce(registry, emit, model, run.version, policy, run.run_id,
                                  "reconciled: registered, not announced", actor="reconciler")
            runs.finish(run.run_id, "published", version=run.version, reason="announced by the reconciler")
            actions.append(f"announced v{run.version} (run {run.run_id})")
        else:
            runs.finish(run.run_id, "failed", INTERRUPTED)
            actions.append(f"run {run.run_id} marked failed ({INTERRUPTED})")
    return actions
