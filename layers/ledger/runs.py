"""The `training_runs` table: one row per training run, so a refused or crashed run is never silent.

Example:
    runs = TrainingRuns(db)
    run_id = runs.start("engineer", trigger="votes", watermark=42, votes=17, parent=3)
    runs.advance(run_id, "published", version=5)      # metadata.json is written
    runs.advance(run_id, "registered")                # the control document names it
    runs.finish(run_id, "published", version=5)       # its model-event is acknowledged (stage "announced")

Stages record how far a run got, so the reconciler (training_job.reconcile) can finish what a crash
interrupted: started -> published -> registered -> announced. Outcomes: published, unchanged (the consensus
adds nothing to a version that exists), refused (a gate said no), failed (an error, or interrupted).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from layers.db import Database

TRAINED = ("published", "unchanged")      # outcomes whose watermark counts as trained


@dataclass(frozen=True)
class TrainingRun:
    run_id: int
    model: str
    trigger: str
    watermark: int
    votes: int
    parent: int | None
    stage: str
    outcome: str | None
    reason: str | None
    version: int | None
    started_at: datetime
    finished_at: datetime | None


SELECT = ("SELECT run_id, model, trigger, watermark, votes, parent, stage, outcome, reason, version, started_at, "
          "finished_at FROM training_runs")


class TrainingRuns:
    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, model: str, trigger: str, watermark: int, votes: int, parent: int | None) -> int:
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO training_runs (model, trigger, watermark, votes, parent) "
                        "VALUES (%s, %s, %s, %s, %s) RETURNING run_id", (model, trigger, watermark, votes, parent))
            return cur.fetchone()[0]

    def advance(self, run_id: int, stage: str, version: int | None = None) -> None:
        with self.db.transaction() as cur:
            cur.execute("UPDATE training_runs SET stage = %s, version = coalesce(%s, version) WHERE run_id = %s",
                        (stage, version, run_id))

    def finish(self, run_id: int, outcome: str, reason: str | None = None, version: int | None = None,
               details: dict | None = None) -> None:
        stage = "announced" if outcome == "published" else None
        with self.db.transaction() as cur:
            cur.execute("UPDATE training_runs SET outcome = %s, reason = %s, version = coalesce(%s, version), "
                        "stage = coalesce(%s, stage), finished_at = now(), details = details || %s::jsonb "
                        "WHERE run_id = %s", (outcome, reason, version, stage, json.dumps(details or {}), run_id))

    def get(self, run_id: int) -> TrainingRun | None:
        with self.db.transaction() as cur:
            cur.execute(SELECT + " WHERE run_id = %s", (run_id,))
            row = cur.fetchone()
        return TrainingRun(*row) if row else None

    def trained_watermark(self, model: str) -> int:
        """The watermark of the newest run that trained (published, or found its data already published)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT coalesce(max(watermark), 0) FROM training_runs WHERE model = %s AND outcome = ANY(%s)",
                        (model, list(TRAINED)))
            return cur.fetchone()[0]

    def unfinished(self, model: str) -> list[TrainingRun]:
        with self.db.transaction() as cur:
            cur.execute(SELECT + " WHERE model = %s AND finished_at IS NULL ORDER BY run_id", (model,))
            return [TrainingRun(*row) for row in cur.fetchall()]

    def recent(self, model: str, limit: int = 20) -> list[TrainingRun]:
        with self.db.transaction() as cur:
            cur.execute(SELECT + " WHERE model = %s ORDER BY run_id DESC LIMIT %s", (model, limit))
            return [TrainingRun(*row) for row in cur.fetchall()]
