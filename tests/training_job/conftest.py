"""The training job through its real CLI, against the real MinIO, Kafka and PostgreSQL."""
from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from kafka import KafkaConsumer

from layers.registry import Policy, Registry
from tests.conftest import ROOT, audited

def copy_version(reg: Registry, src_model: str, src: int, model: str, flip: bool = False,
                 parent: int | None = None, data: dict | None = None) -> int:
    """Publish `src` again as a version of `model`; `flip` swaps its head's outputs (a version that is always
    wrong where the original is right), converted like the trainer converts heads; `data` replaces its
    data.json (what it says it trained on)."""
    from training_job.convert import to_tflite
    from training_job.head import Head, head_model
    meta = reg.metadata(src_model, src)
    v = reg.allocate(model, owner="test")
    arts = {name: reg.put_artifact(model, v, name, reg.fetch_artifact(src_model, src, name, meta))
            for name in meta.artifacts if not (flip and name in ("head.tflite", "head.npz"))
            and not (data is not None and name == "data.json")}
    if flip:
        arrays = np.load(io.BytesIO(reg.fetch_artifact(src_model, src, "head.npz", meta)))
        head = Head(arrays["kernel"][:, ::-1].copy(), arrays["bias"][::-1].copy())
        buf = io.BytesIO()
        np.savez(buf, **head.arrays())
        arts["head.npz"] = reg.put_artifact(model, v, "head.npz", buf.getvalue())
        arts["head.tflite"] = reg.put_artifact(model, v, "head.tflite", to_tflite(head_model(head)))
    if data is not None:
        import json
        arts["data.json"] = reg.put_artifact(model, v, "data.json", json.dumps(data).encode())
    reg.commit(dataclasses.replace(meta, model=model, version=v, parent=parent, artifacts=arts))
    return v


@pytest.fixture
def own_model(bootstrapped, store, uid) -> str:
    """A model of the test's own, live at v1 (the run's bootstrapped v1, copied): a test that trains, publishes
    or routes it changes nothing another test, or the functions, serve."""
    reg, model = audited(store), f"own-{uid}"
    reg.register(model, copy_version(reg, bootstrapped, 1, model), Policy())
    return model


def trainer_env(**extra: str) -> dict:
    """The environment of a trainer a test starts. It logs to no MLflow server (importing MLflow costs each
    process seconds of CPU): tests/training_job/test_tracking.py tests tracking on the bootstrap's runs."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": "", **extra}


def training_job(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = trainer_env()
    return subprocess.run([sys.executable, "-m", "training_job", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def start_trainer(args: list[str], log, **env: str) -> subprocess.Popen:
    """The training job in the background, its output to `log` (an open file)."""
    return subprocess.Popen([sys.executable, "-m", "training_job", *args], cwd=ROOT, env=trainer_env(**env),
                            stdout=log, stderr=subprocess.STDOUT)


# Test trainer runs wait at most 1 s for more votes. They read no `commands` (a test that sends one names its
# own topic), so another test's `train` never starts a run here.
FAST = ("--max-wait-s", "1")


def consume_args(model: str, topic: str, *extra: str, commands: str = "none") -> list[str]:
    return ["consume", "--model", model, "--topic", topic, "--group", f"trainer-{topic}", "--commands-topic", commands,
            *FAST, *extra]


def ingest_only(settings, model: str, topic: str | None = None, idle_s: float = 2) -> subprocess.CompletedProcess:
    """Run the learner until the topic is drained into the ledger, with training, the canary analysis and the
    reconciler held off (each could move the model's route, which later tests read: the reconciler would
    register the versions a test published on purpose without registering)."""
    topic = topic or settings.kafka.topics.fixes
    result = training_job("consume", "--model", model, "--topic", topic, "--group", f"ingest-{topic}",
                          "--commands-topic", "none", "--min-votes", "1000000", "--max-wait-s", "1000000",
                          "--canary-every-s", "0", "--reconcile-every-s", "0", "--exit-when-idle", str(idle_s))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def read_topic(settings, topic: str, match, want: int = 1, timeout_s: float = 20, raw: bool = False) -> list:
    """Records of `topic` (from the beginning) whose decoded JSON satisfies `match`: the JSON, or with `raw`
    the consumer's records (headers, offsets)."""
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
                        out.append(r if raw else data)
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


__all__ = ["training_job", "start_trainer", "read_topic", "read_topic_to_end", "consume_args", "ingest_only", "FAST"]
