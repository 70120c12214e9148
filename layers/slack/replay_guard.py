"""Signed Slack requests are accepted once, across every replica: the guard is a PostgreSQL table.

Example:
    guard = ReplayGuard(db)
    guard.first_time("1732800000:v0=ab…")       # True once; False for a replay, on any replica

IMPORTANT: it raises Unavailable when the database is down. The Slack front then falls back to its in-process
guard (a replay to the same replica is still refused).
"""
from __future__ import annotations

import time

from layers.db import Database

REPLAY_WINDOW_S = 360          # Slack's 5-minute signature window, plus clock skew
REPLAY_WAIT_S = 0.5            # Slack allows 3 s for the whole answer: the guard waits at most this for a connection
SWEEP_EVERY_S = 60.0


class ReplayGuard:
    """Each key (a Slack request's timestamp and signature) is accepted once, across every replica."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._swept = 0.0

    def first_time(self, key: str) -> bool:
        with self.db.transaction(wait_s=REPLAY_WAIT_S) as cur:
            cur.execute("INSERT INTO replay_guard (key) VALUES (%s) ON CONFLICT (key) DO NOTHING", (key,))
            first = cur.rowcount == 1
            if time.monotonic() - self._swept > SWEEP_EVERY_S:
                self._swept = time.monotonic()
                cur.execute("DELETE FROM replay_guard WHERE seen_at < now() - make_interval(secs => %s)",
                            (REPLAY_WINDOW_S,))
        return first
