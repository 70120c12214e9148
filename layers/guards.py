"""Limits held in PostgreSQL, so they hold across replicas and restarts: votes per principal, and signed
Slack requests accepted once.

Example:
    limiter = RateLimiter(db, limit=30, window_s=60)
    limiter.hit("slack:T1:U1", "vote")          # RateLimited (429, Retry-After) past 30 votes in the window
    guard = ReplayGuard(db)
    guard.first_time("1732800000:v0=ab…")       # True once; False for a replay, on any replica

IMPORTANT: both raise Unavailable when the database is down. The Slack front then falls back to its
in-process guard (a replay to the same replica is still refused), and anything that writes fails with 503.
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from layers.db import Database
from layers.errors import RateLimited


class RequestBudget:
    """/predict's per-client limit, in this process (per replica; a PostgreSQL round trip per prediction would
    cost more than the prediction): a token bucket per principal, `per_minute` tokens a minute and a burst of
    as many; 0 turns it off. At most `max_keys` buckets are held (the least recently used go), so the memory
    is bounded whoever calls."""

    def __init__(self, per_minute: int, max_keys: int = 10_000, clock=time.monotonic) -> None:
        self.per_minute, self.max_keys, self.clock = per_minute, max_keys, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()   # key -> (tokens, at)
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        if self.per_minute <= 0:
            return
        rate = self.per_minute / 60.0
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.pop(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - at) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise RateLimited(f"too many predictions: at most {self.per_minute} a minute per client",
                                  retry_after_s=max(1, int((1.0 - tokens) / rate + 0.999)))
            self._buckets[key] = (tokens - 1.0, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)


REPLAY_WINDOW_S = 360          # Slack's 5-minute signature window, plus clock skew
REPLAY_WAIT_S = 0.5            # Slack allows 3 s for the whole answer: the guard waits at most this for a connection
SWEEP_EVERY_S = 60.0


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
