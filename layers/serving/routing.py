"""Traffic routing: which version answers a request. Pure functions, table-tested.

Example:
    route = ModelRoute(weights={1: 90, 2: 10})
    choose(route, "U123", ready={1, 2})     # the same user always lands on the same version

The user id (or, without one, the request id) is hashed into one of 10,000 buckets; the weights split the
bucket range in version order. Versions that are not ready are skipped: their share goes to the ready
versions in proportion, so a failed load never fails requests while another version can answer.
"""
from __future__ import annotations

import hashlib

from layers.registry import ModelRoute

BUCKETS = 10_000


def bucket(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % BUCKETS


def choose(route: ModelRoute, key: str, ready: set[int] | frozenset[int]) -> int | None:
    """The version for `key`, or None when no routed version is ready."""
    live = [(v, w) for v, w in sorted(route.weights.items()) if w > 0 and v in ready]
    if not live:
        return None
    total = sum(w for _, w in live)
    point = bucket(key) * total / BUCKETS
    acc = 0.0
    for version, weight in live:
        acc += weight
        if point < acc:
            return version
    return live[-1][0]
