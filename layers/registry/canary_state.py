"""The canary's evidence so far, as the trainer's analyst last judged it (the `canary_state` table): what
Slack's App Home and `/models` show between decisions, which are audited and announced on their own.

Example:
    board = CanaryBoard(db)
    board.save("engineer", canary=7, live=6, evidence={"action": "waiting", "n": 12, "lr": 3.1, ...})
    board.get("engineer")      # {"canary", "live", "evidence", "updated_at"} or None
"""
from __future__ import annotations

from psycopg.types.json import Jsonb

from layers.db import Database


class CanaryBoard:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, model: str, canary: int | None, live: int | None, evidence: dict) -> None:
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO canary_state (model, canary, live, evidence) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (model) DO UPDATE SET canary = EXCLUDED.canary, live = EXCLUDED.live, "
                        "evidence = EXCLUDED.evidence, updated_at = now()", (model, canary, live, Jsonb(evidence)))

    def get(self, model: str) -> dict | None:
        with self.db.transaction() as cur:
            cur.execute("SELECT canary, live, evidence, updated_at FROM canary_state WHERE model = %s", (model,))
            row = cur.fetchone()
        return None if row is None else {"canary": row[0], "live": row[1], "evidence": row[2],
                                         "updated_at": row[3].isoformat()}
