"""Work that must never slow down or fail a reply: a bounded queue drained by a background thread.

Example:
    offpath = OffPath(maxsize=256, max_bytes=64 << 20)
    offpath.submit("decoy", lambda: sink.send(...), nbytes=len(image))   # returns at once; False when full

The queue is bounded twice: in jobs, and in the bytes the waiting jobs hold (an image each, say), so a burst
of large requests cannot grow memory past `max_bytes`. A job that raises is counted as failed and logged; a
job that does not fit is dropped and counted. `stats()` reports submitted / done / failed / dropped per kind,
and the bytes held now.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from typing import Callable

log = logging.getLogger("afterdark.offpath")


class OffPath:
    def __init__(self, maxsize: int = 256, workers: int = 1, max_bytes: int = 64 * 2**20) -> None:
        self._q: queue.Queue[tuple[str, Callable[[], object], int]] = queue.Queue(maxsize)
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.max_bytes = max_bytes
        self._bytes = 0
        for i in range(workers):
            threading.Thread(target=self._work, name=f"offpath-{i}", daemon=True).start()

    def count(self, key: str) -> None:
        """Count what happened to a job: submitted, dropped, done, failed, or after it ran (e.g.
        `decoy.unacknowledged`: Kafka never acknowledged its record)."""
        with self._lock:
            self._counts[key] += 1

    def submit(self, kind: str, job: Callable[[], object], nbytes: int = 0) -> bool:
        with self._lock:
            fits = self._bytes + nbytes <= self.max_bytes
            if fits:
                self._bytes += nbytes
        if fits:
            try:
                self._q.put_nowait((kind, job, nbytes))
                self.count(f"{kind}.submitted")
                return True
            except queue.Full:
                self._release(nbytes)
        self.count(f"{kind}.dropped")
        return False

    def _release(self, nbytes: int) -> None:
        with self._lock:
            self._bytes -= nbytes

    def _work(self) -> None:
        while True:
            kind, job, nbytes = self._q.get()
            try:
                job()
                self.count(f"{kind}.done")
            except Exception as err:
                self.count(f"{kind}.failed")
                log.warning("off-path %s job failed: %s", kind, err)
            finally:
                self._release(nbytes)
                self._q.task_done()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self._counts, "bytes_held": self._bytes}
