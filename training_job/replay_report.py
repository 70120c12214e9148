"""`python -m training_job replay`: re-score archived live traffic with any versions and compare them, against
the ledger's consensus labels (layers.analysis.replay does the work).

    python -m training_job replay --model engineer --versions 1,3 [--from-offset 0 | --since-ms T] [--limit 500]

Example:
    report = replay(settings, "engineer", [1, 3], from_offset=0, limit=500)
    report["agreement"], report["versions"]["3"]["accuracy"], report["versions"]["3"]["labelled"]
"""
from __future__ import annotations

import json

from layers.config import Settings
from layers.db import Database
from layers.ledger import Ledger, decide
from layers.analysis.replay import Replayer


def consensus(settings: Settings, model: str) -> dict:
    """The ledger's accepted consensus labels of `model`: image sha256 -> {"label", "votes", ...}."""
    db = Database(settings.db)
    try:
        return decide(Ledger(db).snapshot(model).latest).accepted
    finally:
        db.close()


def replay(settings: Settings, model: str, versions: list[int], from_offset: int | None = 0,
           since_ms: int | None = None, limit: int = 500) -> dict:
    return Replayer(settings).report(model, versions, consensus(settings, model), from_offset, since_ms, limit)


def main(settings: Settings, model: str, versions: str, from_offset: int | None, since_ms: int | None,
         limit: int) -> int:
    report = replay(settings, model, [int(v) for v in versions.split(",") if v], from_offset, since_ms, limit)
    print(json.dumps(report, indent=1, sort_keys=True))
    return 0
