"""A bounded prediction cache, keyed by (image sha256, model, version). Safe because versions are immutable:
the same bytes through the same version always give the same answer.

Example:
    cache = PredictionCache(max_entries=4096)
    hit = cache.get(sha, "engineer", 3)           # (label, confidence, probabilities) or None
    cache.put(sha, "engineer", 3, ("engineer", 0.97, {...}))
    cache.stats()                                 # {"entries", "max_entries", "hits", "misses"}

IMPORTANT: least-recently-used entries are evicted past `max_entries` (a few hundred bytes each). Thread-safe.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

Answer = tuple[str, float, dict[str, float]]


class PredictionCache:
    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[tuple[str, str, int], Answer] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, sha: str, model: str, version: int) -> Answer | None:
        with self._lock:
            answer = self._items.get((sha, model, version))
            if answer is None:
                self.misses += 1
                return None
            self._items.move_to_end((sha, model, version))
            self.hits += 1
            return answer

    def put(self, sha: str, model: str, version: int, answer: Answer) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            self._items[(sha, model, version)] = answer
            self._items.move_to_end((sha, model, version))
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"entries": len(self._items), "max_entries": self.max_entries, "hits": self.hits,
                    "misses": self.misses}
