"""Limits held in PostgreSQL, so they hold across replicas and restarts: votes per principal (and per
client), refused DataOps edits, dating-app sign-ups.

Example:
    limiter = RateLimiter(db, limit=30, window_s=60)
    limiter.hit("slack:T1:U1", "vote")          # RateLimited (429, Retry-After) past 30 votes in the window

IMPORTANT: it raises Unavailable when the database is down: anything that writes then fails with 503.
"""
from __future__ import annotations

import math
import time

from layers.db import Database
from layers.errors import RateLimited

SWEEP_EVERY_S = 60.0           # how often expired rows are deleted (at most)


class RateLimiter:
    """At most `limit` requests per (principal, action) in ANY `window_s` seconds: a sliding log of the times of
    the accepted requests, one row per principal and at most `limit` times in it. (A window fixed to the clock
    let a burst that straddled a window's end through at twice the limit.) A refused request is not logged: the
    caller may try again when the oldest logged one leaves the window, as Retry-After says."""

    def __init__(self, db: Database, limit: int, window_s: int) -> None:
        self.db, self.limit, self.window_s = db, limit, window_s
        self._swept = 0.0

    def hit(self, principal: str, action: str = "vote") -> int:
        """Count one request; returns how many were accepted in the window, this one included. RateLimited
        past the limit. Concurrent requests of one principal take turns on its row."""
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO rate_log (principal, action, hits) VALUES (%s, %s, '{}') "
                        "ON CONFLICT (principal, action) DO NOTHING", (principal, action))
            cur.execute("SELECT ARRAY(SELECT t FROM unnest(hits) t WHERE t > now() - make_interval(secs => %s) "
                        "ORDER BY t), now() FROM rate_log WHERE principal = %s AND action = %s FOR UPDATE",
                        (self.window_s, principal, action))
            hits, now = cur.fetchone()
            accepted = len(hits) < self.limit
            if accepted:
                hits.append(now)
                cur.execute("UPDATE rate_log SET hits = %s WHERE principal = %s AND action = %s",
                            (hits, principal, action))
            if time.monotonic() - self._swept > SWEEP_EVERY_S:
                self._swept = time.monotonic()
                cur.execute("DELETE FROM rate_log WHERE hits = '{}' OR "
                            "hits[cardinality(hits)] < now() - make_interval(secs => %s)", (self.window_s,))
        if not accepted:
            # the request that must leave the window first (none when the limit is 0: the whole window)
            left = ((hits[len(hits) - self.limit] - now).total_seconds() if hits else 0.0) + self.window_s
            raise RateLimited(f"too many {action}s: at most {self.limit} every {self.window_s} s; try again in "
                              f"{max(1, math.ceil(left))} s", retry_after_s=max(1, math.ceil(left)))
        return len(hits)
