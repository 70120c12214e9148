"""The `voters` table: each voter's estimated reliability, as the trainer's last consensus computed it.

Example:
    board = VoterBoard(db)
    board.save("engineer", consensus.voters.values(), watermark=42)     # replaces the model's rows at once
    board.list("engineer")      # [{"principal", "accuracy", "weight", "votes", ...}], most reliable first

IMPORTANT: the estimates are derived data: the ledger is the history, and the trainer writes them again
after every consensus it computes (layers.ledger.consensus). Readers (`/models voters`) never compute them.
"""
from __future__ import annotations

from typing import Iterable

from layers.db import Database
from layers.ledger.consensus import VoterEstimate

FIELDS = ("principal", "accuracy", "weight", "votes", "checked", "gold", "gold_right")


class VoterBoard:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, model: str, voters: Iterable[VoterEstimate], watermark: int) -> None:
        rows = [(model, v.principal, v.accuracy, v.weight, v.votes, v.checked, v.gold, v.gold_right, watermark)
                for v in voters]
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM voters WHERE model = %s", (model,))
            if rows:
                cur.executemany(f"INSERT INTO voters (model, {', '.join(FIELDS)}, watermark) "
                                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)

    def list(self, model: str, limit: int = 200) -> list[dict]:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {', '.join(FIELDS)}, watermark, updated_at FROM voters WHERE model = %s "
                        "ORDER BY accuracy DESC, votes DESC, principal LIMIT %s", (model, limit))
            return [{**dict(zip(FIELDS + ("watermark",), (round(x, 4) if isinstance(x, float) else x
                                                           for x in row[:-1]))),
                     "updated_at": row[-1].isoformat()} for row in cur.fetchall()]
