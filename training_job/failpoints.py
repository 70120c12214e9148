"""Crash points, for the crash-safety tests: with TRAINER_FAILPOINT=<name>, the trainer SIGKILLs itself when it
reaches `failpoint(<name>)`, exactly as an OOM kill or a node loss would stop it there. Unset, it does nothing.

    after-ledger-insert   the ledger transaction committed, the Kafka offsets not yet
    after-publish         metadata.json written (the version exists), not yet registered
    after-register        the control document names the version, its model-event not yet sent
"""
from __future__ import annotations

import os
import signal

POINTS = ("after-ledger-insert", "after-publish", "after-register")


def failpoint(name: str) -> None:
    assert name in POINTS, name
    if os.environ.get("TRAINER_FAILPOINT") == name:
        print(f"[failpoint] {name}: SIGKILL", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
