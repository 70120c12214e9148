"""The training job through its real CLI, against the real MinIO, Kafka and PostgreSQL."""
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


# Test trainer runs wait at most 1 s for more votes. They read no `commands` (a test that sends one names its
# own topic), so another test's `train` never starts a run here.
FAST = ("--max-wait-s", "1")


def consume_args(model: str, topic: str, *extra: str, commands: str = "none") -> list[str]:
    return ["consume", "--model", model, "--topic", topic, "--group", f"trainer-{topic}", "--commands-topic", commands,
            *FAST, *extra]


def ingest_only(settings, model: str, topic: str | None = None, idle_s: float = 2) -> subprocess.CompletedProcess:
    """Run the learner until the topic is drained into the ledger, with training held off."""
    topic = topic or settings.kafka.topics.fixes
    result = training_job("consume", "--model", model, "--topic", topic, "--group", f"ingest-{topic}",
                          "--commands-topic", "none", "--min-votes", "1000000", "--max-wait-s", "1000000",
                          "--exit-when-idle", str(idle_s))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


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


def read_topic_to_end(settings, topic: str, match) -> list[dict]:
    """Every record of `topic` up to its end as of now whose decoded JSON satisfies `match`: an absence check
    that does not depend on how long a consumer takes to join (it reads to the end offsets, however long)."""
    import json
    from kafka import TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False, group_id=None)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        out = []
        while any(consumer.position(p) < ends[p] for p in parts):
            for records in consumer.poll(timeout_ms=500).values():
                out += [json.loads(r.value) for r in records if r.offset < ends[TopicPartition(r.topic, r.partition)]]
        return [d for d in out if match(d)]
    finally:
        consumer.close()


__all__ = ["training_job", "read_topic", "read_topic_to_end", "consume_args", "ingest_only", "FAST"]
