"""Kafka through kafka-python 3.x against the real broker: acknowledged writes, manual commits, resume."""
from __future__ import annotations

import re

from kafka.admin import KafkaAdminClient

from layers.events import EventSink, Malformed, decode, make_consumer
from layers.ledger import Vote
from tests.conftest import LOGS, new_topic


def _topic(settings, uid: str) -> str:
    return new_topic(settings, f"test-{uid}")


def _fix(i: int) -> Vote:
    return Vote(vote_id=f"{i:032x}", model="m", image_sha256=f"{i:064x}", image_key=f"images/{i:064x}",
                    label="engineer", principal=f"api:test:U{i}", source="api", created_at_ms=1)


def _drain(consumer, want: int, timeout_ms: int = 15000) -> list:
    out = []
    import time
    deadline = time.time() + timeout_ms / 1000
    while len(out) < want and time.time() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            out.extend(records)
    return out


def test_consumer_resumes_after_last_commit_and_loses_nothing(settings, uid):
    topic = _topic(settings, uid)
    sink = EventSink(settings.kafka)
    sent = [_fix(i) for i in range(10)]
    offsets = [sink.send(topic, r)[1] for r in sent]
    assert offsets == sorted(offsets) and len(set(offsets)) == 10   # each write acknowledged with its offset

    group = f"group-{uid}"
    first = make_consumer(settings.kafka, topic, group)
    got = _drain(first, 10)
    assert len(got) == 10
    # process 6, commit exactly those, then "crash" without committing the rest
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata
    tp = TopicPartition(topic, 0)
    first.commit({tp: OffsetAndMetadata(got[5].offset + 1, "", -1)})
    first.close(autocommit=False)

    second = make_consumer(settings.kafka, topic, group)
    rest = _drain(second, 4)
    second.commit()
    second.close()
    assert [r.offset for r in rest] == [r.offset for r in got[6:]]
    seen = [decode(r.value, Vote) for r in got[:6] + rest]
    assert [s.vote_id for s in seen] == [f.vote_id for f in sent]

    third = make_consumer(settings.kafka, topic, group)
    tp = TopicPartition(topic, 0)
    assert third.committed(tp) == third.end_offsets([tp])[tp] == 10   # everything committed: nothing replays
    third.close()
    sink.close()


def test_records_are_utf8_json_and_malformed_ones_are_reported():
    fix = _fix(7)
    assert decode(fix.encode(), Vote) == fix
    assert isinstance(decode(b"\xff\xfe", Vote), Malformed)
    assert isinstance(decode(b"[1,2]", Vote), Malformed)
    assert "kind" in decode(b'{"kind":"other"}', Vote).reason
    assert isinstance(decode(b'{"kind":"fix","schema":1}', Vote), Malformed)


def test_system_topics_exist(settings):
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    try:
        assert set(settings.kafka.topics.all()) <= set(admin.list_topics())
    finally:
        admin.close()


def test_broker_and_client_speak_without_protocol_errors(settings, uid):
    """kafka-python 3.x negotiates API versions with the pinned broker: every request kind we use (produce,
    fetch, list offsets, group commit, admin) runs, and the broker logs no unsupported-version request."""
    from kafka import KafkaConsumer, TopicPartition
    topic = _topic(settings, uid)
    EventSink(settings.kafka).send(topic, _fix(1))
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, group_id=f"g-{uid}", enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    assert consumer.end_offsets([tp])[tp] == 1                  # ListOffsets
    assert consumer.beginning_offsets([tp])[tp] == 0
    consumer.seek_to_beginning(tp)
    assert len(_drain(consumer, 1)) == 1                          # Fetch
    consumer.commit()                                              # OffsetCommit
    assert consumer.committed(tp) == 1                             # OffsetFetch
    consumer.close()
    log = (LOGS / "kafka.log").read_text(errors="replace")
    assert not re.search(r"unsupported version|UnsupportedVersion", log), "broker rejected a client request version"
