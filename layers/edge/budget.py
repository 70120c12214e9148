"""/predict's per-client request budget, held in this process (per replica).

Example:
    budget = RequestBudget(per_minute=600)
    budget.hit("api:bot")                       # RateLimited (429, Retry-After) past the budget
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict

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
