"""A model bootstrapped once per test session, through the real CLI, against the real MinIO and Kafka."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from kafka import KafkaConsumer

from tests.conftest import ROOT

def training_job(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "training_job", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def read_topic(settings, topic: str, match, want: int = 1, timeout_s: float = 20) -> list[dict]:
    """Records of `topic` (from the beginning) whose decoded JSON satisfies `match`."""
    import json
    consumer = KafkaConsumer(topic, bootstrap_servers=settings.kafka.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None)
    out, deadline = [], time.time() + timeout_s
    try:
        while time.time() < deadline and len(out) < want:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    data = json.loads(r.value)
                    if match(data):
                        out.append(data)
    finally:
        consumer.close()
    return out


__all__ = ["training_job", "read_topic"]
