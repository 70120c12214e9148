"""In-memory doubles of the two seams, for the fast unit tier (tests/unit). They honour the same contracts as
the real ones (tests/layers/test_store.py runs its contract tests against both):

    MemoryStore   BlobStore: create-only PUT (If-None-Match: *) and compare-and-swap (If-Match) raise
                  Conflict when their condition fails; GET with If-None-Match of the current ETag is None (304);
                  a missing key is NotFound; `down = True` makes every call Unavailable
    MemorySink    EventSink: send returns (partition, offset) once "acknowledged", offsets grow per topic;
                  `down = True` makes send raise Unavailable, as a broker that does not acknowledge
    MemoryAuditLog  layers.registry.AuditLog: entries get ascending ids; pages newest first; the last applied

Integration tests never use them: they run against the real MinIO, Kafka and PostgreSQL.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import defaultdict

from layers.config import KafkaSettings, S3Settings
from layers.registry.audit import AuditEntry
from layers.errors import Conflict, NotFound, Unavailable
from layers.store import Blob, BlobStore


class MemoryStore:
    def __init__(self, settings: S3Settings | None = None) -> None:
        self.settings = settings or S3Settings(endpoint="memory://")
        self.bucket = self.settings.bucket
        self._objects: dict[str, Blob] = {}
        self.modified: dict[str, float] = {}       # key -> Unix time of its last write (a test may age it)
        self._lock = threading.Lock()
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise Unavailable(f"object store unreachable at {self.settings.endpoint}")

    def get(self, key: str, if_none_match: str | None = None) -> Blob | None:
        self._check()
        with self._lock:
            blob = self._objects.get(key)
        if blob is None:
            raise NotFound(f"{key} does not exist")
        return None if if_none_match and if_none_match == blob.etag else blob

    def put(self, key: str, body: bytes, *, if_none_match: str | None = None, if_match: str | None = None,
            content_type: str = "application/octet-stream") -> str:
        self._check()
        etag = hashlib.md5(body).hexdigest()                # as S3 does for a single-part upload
        with self._lock:
            current = self._objects.get(key)
            if if_none_match == "*" and current is not None:
                raise Conflict(f"{key} exists (If-None-Match: *)")
            if if_match is not None:
                if current is None:
                    raise NotFound(f"{key} does not exist")
                if current.etag != if_match:
                    raise Conflict(f"{key} changed (If-Match)")
            self._objects[key] = Blob(key=key, body=bytes(body), etag=etag)
            self.modified[key] = time.time()
        return etag

    put_if_absent = BlobStore.put_if_absent        # the real one's logic, over this class's exists and put

    def create(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> bool:
        """As BlobStore.create: one conditional PUT; False when the key was there."""
        try:
            self.put(key, body, if_none_match="*", content_type=content_type)
            return True
        except Conflict:
            return False

    def exists(self, key: str) -> bool:
        self._check()
        with self._lock:
            return key in self._objects

    def keys(self, prefix: str):
        self._check()
        with self._lock:
            return iter(sorted(k for k in self._objects if k.startswith(prefix)))

    def listing(self, prefix: str):
        self._check()
        with self._lock:
            return iter(sorted((k, self.modified[k]) for k in self._objects if k.startswith(prefix)))

    def delete(self, key: str) -> None:
        self._check()
        with self._lock:
            self._objects.pop(key, None)

    def ping(self) -> bool:
        return not self.down


class MemorySink:
    def __init__(self, settings: KafkaSettings | None = None) -> None:
        self.settings = settings or KafkaSettings()
        self.records: dict[str, list[tuple[str | None, object]]] = defaultdict(list)
        self._lock = threading.Lock()
        self.down = False

    def send(self, topic: str, record, key: str | None = None, timeout_s: float | None = None) -> tuple[int, int]:
        if self.down:
            raise Unavailable(f"Kafka did not acknowledge the write to {topic}: the broker is down")
        with self._lock:
            self.records[topic].append((key, record))
            return 0, len(self.records[topic]) - 1

    def publish(self, topic: str, record, key: str | None = None, on_failure=None) -> None:
        """As EventSink.publish: no wait; a write that is never acknowledged goes to `on_failure`."""
        if self.down:
            if on_failure is not None:
                on_failure(Unavailable(f"Kafka did not acknowledge the write to {topic}: the broker is down"))
            return
        self.send(topic, record, key)

    def close(self) -> None:
        pass


class MemoryAuditLog:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []
        self._lock = threading.Lock()

    def append(self, entries) -> None:
        import dataclasses
        from layers.registry.versions import utc_now
        with self._lock:
            for e in entries:
                self.entries.append(dataclasses.replace(e, id=len(self.entries) + 1, at=utc_now()))

    def page(self, model: str, limit: int = 20, before_id: int | None = None) -> list[AuditEntry]:
        mine = [e for e in reversed(self.entries) if e.model == model and (before_id is None or e.id < before_id)]
        return mine[:limit]

    def last_applied(self, model: str) -> AuditEntry | None:
        return next((e for e in reversed(self.entries) if e.model == model and e.refused is None), None)
