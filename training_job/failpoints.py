"""Crash and pause points, for the crash-safety tests. Unset, they do nothing.

With TRAINER_FAILPOINT=<name>, the trainer SIGKILLs itself when it reaches `failpoint(<name>)`, exactly as an
OOM kill or a node loss would stop it there:

    after-ledger-insert   the ledger transaction committed, the Kafka offsets not yet
    after-publish         metadata.json written (the version exists), not yet registered
    after-register        the control document names the version, its model-event not yet sent

With TRAINER_PAUSE=<name>:<file>, the thread that reaches `failpoint(<name>)` waits there until <file> exists
(at most PAUSE_MAX_S), so a test can act at a known point of a run, whatever the machine's speed:

    run-started           a training run's thread, before it trains
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

POINTS = ("after-ledger-insert", "after-publish", "after-register", "run-started")
PAUSE_MAX_S = 120.0


def failpoint(name: str) -> None:
    assert name in POINTS, name
    if os.environ.get("TRAINER_FAILPOINT") == name:
        print(f"[failpoint] {name}: SIGKILL", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    point, _, release = os.environ.get("TRAINER_PAUSE", "").partition(":")
    if point == name and release:
        print(f"[failpoint] {name}: paused until {release} exists", flush=True)
        deadline = time.monotonic() + PAUSE_MAX_S
        while not Path(release).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
