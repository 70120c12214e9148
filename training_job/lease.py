"""One active trainer per model and consumer group, elected through PostgreSQL; the others wait as standbys.

    lease = Lease(settings.db.url, "engineer", "trainer")
    if lease.acquire(stop=lambda: stopping):      # blocks while another trainer holds it
        ...                                       # the active trainer's loop
        lease.held()                              # checked every few seconds: False -> stop being active

How: a session-level advisory lock (pg_try_advisory_lock) on a connection of its own, kept open while the
trainer is active. The lock lives exactly as long as that session: a trainer that is SIGKILLed, or whose
machine loses its connection, loses it, and a standby polling every POLL_S takes over. The standby then does
what a restarted trainer does: it reconciles (a version published or registered but not announced is
finished, never published twice, since publishing is idempotent on the data), reads the votes Kafka still
holds from the last committed offset (the ledger insert is idempotent on the vote id), and trains.

Replicas of one trainer share `--group`; a trainer with another group (a test's own topic) is another lease.
A machine that vanishes without closing its TCP connection holds the lock until PostgreSQL notices: set the
server's tcp_keepalives_idle (docs/deploy.md).
"""
from __future__ import annotations

import hashlib
import time
from typing import Callable

import psycopg

from layers.db import first_line

POLL_S = 1.0


class Lease:
    def __init__(self, url: str, model: str, group: str) -> None:
        self.url, self.model, self.group = url, model, group
        digest = hashlib.sha256(f"afterdark trainer\n{model}\n{group}".encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)     # advisory locks take a bigint
        self._conn: psycopg.Connection | None = None

    def acquire(self, stop: Callable[[], bool], on_wait: Callable[[str], None] | None = None) -> bool:
        """Block until this trainer holds the lease (True), or `stop()` says to give up (False)."""
        said = False
        while not stop():
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5,
                                                 application_name=f"afterdark-trainer {self.model}")
                if self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0]:
                    return True
                why = "another trainer is active"
            except psycopg.Error as err:
                self.release()
                why = f"the database is unavailable ({first_line(err)})"
            if on_wait and not said:
                on_wait(why)
                said = True
            time.sleep(POLL_S)
        return False

    def held(self) -> bool:
        """Whether the session that holds the lock is still alive: a session-level lock is released only by
        its session's end (nothing here unlocks it), so a live session still holds it."""
        try:
            return self._conn is not None and self._conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.Error:
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None
