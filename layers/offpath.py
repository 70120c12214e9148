"""Work that must never slow down or fail a reply: a bounded queue drained by a background thread.

Example:
    offpath = OffPath(maxsize=256)
    offpath.submit("decoy", lambda: sink.send(...))     # returns at once; False (and counted) when full

A job that raises is counted as failed and logged; a full queue drops the job and counts it. `stats()`
reports submitted / done / failed / dropped per kind.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from typing import Callable

log = logging.getLogger("afterdark.offpath")


class OffPath:
    def __init__(self, maxsize: int = 256, workers: int = 1) -> None:
        self._q: queue.Queue[tuple[str, Callable[[], object]]] = queue.Queue(maxsize)
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        for i in range(workers):
            threading.Thread(target=self._work, name=f"offpath-{i}", daemon=True).start()

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def submit(self, kind: str, job: Callable[[], object]) -> bool:
        try:
            self._q.put_nowait((kind, job))
        except queue.Full:
            self._count(f"{kind}.dropped")
            return False
        self._count(f"{kind}.submitted")
        return True

    def _work(self) -> None:
        while True:
            kind, job = self._q.get()
            try:
                job()
                self._count(f"{kind}.done")
            except Exception as err:
                self._count(f"{kind}.failed")
                log.warning("off-path %s job failed: %s", kind, err)
            finally:
                self._q.task_done()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
