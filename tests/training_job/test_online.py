"""The online consumer against real Kafka and MinIO: fixes -> new verified version -> offsets committed;
consensus, gates, dead letters, and crash safety (SIGKILL between consuming and publishing)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from layers.events import EventSink, FixEvent
from layers.images import sha256_hex
from layers.registry import Registry, image_key
from layers.synth import portrait, to_jpeg
from tests.conftest import ROOT
from tests.training_job.conftest import read_topic, training_job


@pytest.fixture
def topic(settings, uid):
    name = f"fixes-{uid}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    admin.close()
    return name


def store_fix(store, seed: int, label: str, user: str) -> FixEvent:
    """What /fix does: store the image content-addressed, then describe the fix."""
    jpeg = to_jpeg(portrait(seed)[0])
    sha = sha256_hex(jpeg)
    store.put(image_key(sha), jpeg, content_type="image/jpeg")
    return FixEvent.new(image_sha256=sha, image_key=image_key(sha), label=label, user=user)


def consume_args(model, topic, *extra):
    return ["consume", "--model", model, "--topic", topic, "--group", f"trainer-{topic}", "--max-wait-s", "2", *extra]


def committed(settings, topic, group) -> int | None:
    c = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return c.committed(TopicPartition(topic, 0))
    finally:
        c.close()


def data_of(store, model, version) -> dict:
    return json.loads(Registry(store).fetch_artifact(model, version, "data.json"))


def test_fixes_become_a_new_version_and_offsets_are_committed_after(bootstrapped, store, settings, topic):
    reg = Registry(store)
    before = reg.versions(bootstrapped)
    sink = EventSink(settings.kafka)
    fixes = [store_fix(store, 50_000 + i, "engineer" if i % 2 else "non_engineer", f"U{i}") for i in range(6)]
    for f in fixes:
        sink.send(topic, f)
    result = training_job(*consume_args(bootstrapped, topic, "--min-fixes", "6", "--max-batches", "1"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    after = reg.versions(bootstrapped)
    assert len(after) == len(before) + 1, result.stdout[-2000:]
    new = after[-1]
    meta = reg.metadata(bootstrapped, new)
    assert meta.parent == before[-1]
    data = data_of(store, bootstrapped, new)
    assert {f.fix_id for f in fixes} <= {r["fix_id"] for r in data["fix_records"]}
    assert {f.image_sha256 for f in fixes} <= set(data["fixes"])
    assert all(data["fixes"][f.image_sha256]["label"] == f.label for f in fixes)
    assert meta.metrics["fixes"]["n"] == 6
    assert committed(settings, topic, f"trainer-{topic}") == 6
    events = read_topic(settings, settings.kafka.topics.model_events, lambda e: e["model"] == bootstrapped and e["version"] == new)
    assert events and events[0]["event"] == "published"
    # the new version is registered by policy: deployed, 0% traffic, in the rendezvous set
    route = reg.control()[0].models[bootstrapped]
    assert route.weights[new] == 0 and new in route.rendezvous


def test_conflicting_labels_are_quarantined(bootstrapped, store, settings, topic):
    reg = Registry(store)
    tie = [store_fix(store, 60_001, "engineer", "UA"), store_fix(store, 60_001, "non_engineer", "UB")]
    majority = [store_fix(store, 60_002, "engineer", u) for u in ("UA", "UB")] + [store_fix(store, 60_002, "non_engineer", "UC")]
    sink = EventSink(settings.kafka)
    for f in tie + majority:
        sink.send(topic, f)
    result = training_job(*consume_args(bootstrapped, topic, "--min-fixes", "5", "--max-batches", "1"))
    assert result.returncode == 0, result.stdout[-3000:]
    data = data_of(store, bootstrapped, reg.versions(bootstrapped)[-1])
    assert tie[0].image_sha256 in data["quarantined"]
    assert data["quarantined"][tie[0].image_sha256]["votes"] == {"engineer": 1, "non_engineer": 1}
    assert tie[0].image_sha256 not in {e["sha256"] for e in data["examples"]}     # never trained on
    assert data["fixes"][majority[0].image_sha256]["label"] == "engineer"
    assert data["fixes"][majority[0].image_sha256]["votes"] == {"engineer": 2, "non_engineer": 1}


def test_failed_gate_publishes_nothing_and_says_why(bootstrapped, store, settings, topic):
    reg = Registry(store)
    before = reg.versions(bootstrapped)
    EventSink(settings.kafka).send(topic, store_fix(store, 70_001, "engineer", "UG"))
    result = training_job(*consume_args(bootstrapped, topic, "--min-fixes", "1", "--max-batches", "1",
                                        "--min-accuracy", "1.01"))
    assert result.returncode == 0, result.stdout[-3000:]
    assert reg.versions(bootstrapped) == before
    refused = read_topic(settings, settings.kafka.topics.model_events,
                         lambda e: e["model"] == bootstrapped and e["event"] == "refused" and "1.01" in (e["reason"] or ""))
    assert refused and "hold-out accuracy" in refused[0]["reason"]


def test_malformed_fixes_go_to_the_dead_letter_topic(bootstrapped, store, settings, topic):
    sink = EventSink(settings.kafka)
    good = store_fix(store, 80_001, "engineer", "UD")
    producer = sink._get()
    producer.send(topic, b"{not json").get(10)
    producer.send(topic, json.dumps({**good.to_json(), "label": "astronaut"}).encode()).get(10)
    producer.send(topic, json.dumps({**good.to_json(), "image_sha256": "f" * 64, "image_key": "images/" + "f" * 64}).encode()).get(10)
    result = training_job(*consume_args(bootstrapped, topic, "--exit-when-idle", "3"))
    assert result.returncode == 0, result.stdout[-3000:]
    dead = read_topic(settings, settings.kafka.topics.dead_letter, lambda e: e["source_topic"] == topic, want=3)
    assert sorted(d["offset"] for d in dead) == [0, 1, 2]
    reasons = " | ".join(d["reason"] for d in dead)
    assert "JSON" in reasons and "astronaut" in reasons and "not stored" in reasons
    assert committed(settings, topic, f"trainer-{topic}") == 3      # the job kept going past them


def test_sigkill_between_consuming_and_publishing_loses_nothing(bootstrapped, store, settings, topic):
    reg = Registry(store)
    before = reg.versions(bootstrapped)
    fixes = [store_fix(store, 90_000 + i, "engineer" if i % 3 else "non_engineer", f"UK{i}") for i in range(5)]
    sink = EventSink(settings.kafka)
    for f in fixes:
        sink.send(topic, f)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "training_job", *consume_args(bootstrapped, topic, "--min-fixes", "5")],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    for line in proc.stdout:
        if "[consume] training on" in line or time.time() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert reg.versions(bootstrapped) == before, "the kill came after publishing: the test did not test the gap"
    assert committed(settings, topic, f"trainer-{topic}") is None     # consumed, never committed

    result = training_job(*consume_args(bootstrapped, topic, "--min-fixes", "5", "--max-batches", "1"))
    assert result.returncode == 0, result.stdout[-3000:]
    after = reg.versions(bootstrapped)
    assert len(after) == len(before) + 1
    data = data_of(store, bootstrapped, after[-1])
    assert {f.fix_id for f in fixes} <= {r["fix_id"] for r in data["fix_records"]}
    assert committed(settings, topic, f"trainer-{topic}") == 5
    # a replay of the same batch publishes nothing new: no two versions hold the same data
    from kafka import KafkaConsumer as KC
    c = KC(bootstrap_servers=settings.kafka.bootstrap, group_id=f"trainer-{topic}", enable_auto_commit=False)
    c.assign([TopicPartition(topic, 0)])
    c.seek(TopicPartition(topic, 0), 0)
    c.commit()
    c.close()
    again = training_job(*consume_args(bootstrapped, topic, "--min-fixes", "5", "--max-batches", "1"))
    assert again.returncode == 0 and "already holds exactly this data" in again.stdout
    assert reg.versions(bootstrapped) == after
    key = lambda v: (reg.metadata(bootstrapped, v).data["data_sha256"], reg.metadata(bootstrapped, v).params["seed"])
    assert key(after[-1]) not in {key(v) for v in after[:-1]}
