"""The decoy archiver (training_job.archiver) against the real Kafka and MinIO, on topics of the test's own:
each image a decoy record carries is stored once at decoys/<sha256>, a forged or malformed record goes to the
dead letters, and a batch is committed only after its images are stored, so an S3 outage loses nothing."""
from __future__ import annotations

import dataclasses
import threading

import pytest
from kafka import KafkaProducer

from layers.events import IMAGE_HEADER, DecoyRecord, EventSink, now_ms
from layers.images import sha256_hex
from layers.registry import decoy_key
from layers.store import BlobStore
from portraits.synth import portrait, to_jpeg
from tests.conftest import new_topic, wait_until
from tests.training_job.conftest import read_topic
from training_job.archiver import DecoyArchiver


@pytest.fixture
def mine(settings, uid):
    kafka = dataclasses.replace(settings.kafka, topic_prefix=f"arch{uid}-")
    for topic in (kafka.topics.predict_decoy, kafka.topics.dead_letter):
        new_topic(settings, topic)
    return dataclasses.replace(settings, kafka=kafka)


def photo(seed: int, uid: str) -> bytes:
    """A portrait no earlier run stored (the bucket outlives a run): its bytes end with the test's uid."""
    return to_jpeg(portrait(seed)[0]) + uid.encode()


def decoy(image: bytes, request_id: str, sha: str | None = None) -> DecoyRecord:
    sha = sha or sha256_hex(image)
    return DecoyRecord(request_id=request_id, image_sha256=sha, image_key=decoy_key(sha), user="api:test",
                       created_at_ms=now_ms(), model="m", version=1, label="engineer", confidence=0.9)


def publish(settings, records: list[tuple[DecoyRecord | bytes, bytes | None]]) -> None:
    """Each (record, image) as /predict publishes it; raw bytes go as they are (a malformed record)."""
    sink = EventSink(settings.kafka, client_id="test")
    raw = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap)
    for rec, image in records:
        if isinstance(rec, bytes):
            raw.send(settings.kafka.topics.predict_decoy, value=rec)
        else:
            sink.publish(settings.kafka.topics.predict_decoy, rec, key=rec.request_id,
                         headers={IMAGE_HEADER: image} if image is not None else None)
    sink._get().flush()
    raw.flush()
    sink.close()
    raw.close()


def test_each_carried_image_is_stored_once_and_forged_or_malformed_records_are_dead_lettered(mine, store, uid):
    a, b, forged = photo(93_001, uid), photo(93_002, uid), photo(93_003, uid)
    publish(mine, [(decoy(a, "r-a"), a), (decoy(b, "r-b"), b), (decoy(a, "r-a2"), a),      # a repeat
                   (decoy(forged, "r-f", sha=sha256_hex(b"something else")), forged),     # header != its sha
                   (b'{"kind": "predict-decoy", "request_id": 7', None),                     # not JSON
                   (decoy(b, "r-stored"), None)])                 # no header: /predict stored it itself
    done = DecoyArchiver(mine, store).run(exit_when_idle_s=3)
    assert (done.stored, done.present, done.stored_by_predict, len(done.dead)) == (2, 1, 1, 2)
    assert store.get(decoy_key(sha256_hex(a))).body == a and store.get(decoy_key(sha256_hex(b))).body == b
    assert not store.exists(decoy_key(sha256_hex(b"something else")))
    assert not store.exists(decoy_key(sha256_hex(forged)))
    dead = read_topic(mine, mine.kafka.topics.dead_letter, lambda d: True, want=2)
    reasons = sorted(d["reason"] for d in dead)
    assert "does not match" in reasons[0] and "not UTF-8 JSON" in reasons[1], reasons
    assert any('"request_id":"r-f"' in d["payload"] for d in dead)       # the record itself, for a look
    again = DecoyArchiver(mine, store).run(exit_when_idle_s=2)          # committed: nothing is read twice
    assert (again.stored, again.present, again.dead) == (0, 0, [])


def test_an_s3_outage_loses_no_decoy(mine, store, settings, uid):
    images = [photo(93_100 + i, uid) for i in range(3)]
    publish(mine, [(decoy(img, f"r-{i}"), img) for i, img in enumerate(images)])
    down = BlobStore(dataclasses.replace(settings.s3, endpoint="http://127.0.0.1:9"))    # nothing listens there
    stalled = DecoyArchiver(mine, down)
    thread = threading.Thread(target=stalled.run)
    thread.start()
    try:
        assert not wait_until(lambda: stalled.totals.stored, timeout_s=5)
    finally:
        stalled.stop()
        thread.join(timeout=30)
    assert not thread.is_alive() and stalled.totals.stored == 0
    assert not any(store.exists(decoy_key(sha256_hex(img))) for img in images)
    done = DecoyArchiver(mine, store).run(exit_when_idle_s=3)           # the batch was never committed
    assert done.stored == 3 and all(store.get(decoy_key(sha256_hex(img))).body == img for img in images)
