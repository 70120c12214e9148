"""The learning loop loses nothing (real Kafka, MinIO and PostgreSQL, the real CLI): votes -> ledger -> training
runs -> versions, with a refused run, agreeing and tied votes, the live parent, bootstrap --force, and the
trainer SIGKILLed at each of its three crash points, and votes that keep flowing in while a run trains."""
from __future__ import annotations

import json
import os
import uuid

import pytest
from kafka import KafkaConsumer, TopicPartition

from layers.edge.auth import vote_id
from layers.events import CommandRecord, EventSink, now_ms
from layers.images import sha256_hex
from layers.ledger import Ledger, TrainingRuns, Vote, decide
from layers.registry import Registry, backbone_key, image_key
from portraits.synth import portrait, to_jpeg
from tests.conftest import new_topic, wait_until
from tests.training_job.conftest import consume_args, ingest_only, read_topic, start_trainer, training_job


@pytest.fixture
def topic(settings, uid):
    return new_topic(settings, f"fixes-{uid}")


def cast(store, sink, topic, model, seed: int, label: str, principal: str) -> Vote:
    """What /fix does: store the image content-addressed, then send the vote."""
    jpeg = to_jpeg(portrait(seed)[0])
    sha = sha256_hex(jpeg)
    store.put_if_absent(image_key(sha), jpeg)
    vote = Vote(vote_id=vote_id(principal, uuid.uuid4().hex), model=model, image_sha256=sha,
                    image_key=image_key(sha), label=label, principal=principal, source="api", created_at_ms=now_ms())
    sink.send(topic, vote, key=sha)
    return vote


def committed(settings, topic, group: str = "trainer") -> int | None:
    c = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, group_id=f"{group}-{topic}", enable_auto_commit=False)
    try:
        return c.committed(TopicPartition(topic, 0))
    finally:
        c.close()


def data_of(store, model, version) -> dict:
    return json.loads(Registry(store).fetch_artifact(model, version, "data.json"))


def holding(store, model, sha: str) -> list[int]:
    """The versions whose training data has this image as a voted example (a version published by hand, with
    no data.json, holds none)."""
    reg = Registry(store)
    return [v for v in reg.versions(model)
            if "data.json" in reg.metadata(model, v).artifacts and sha in data_of(store, model, v)["fixes"]]


def run_with_failpoint(point: str, *args: str):
    os.environ["TRAINER_FAILPOINT"] = point
    try:
        return training_job(*args)
    finally:
        del os.environ["TRAINER_FAILPOINT"]


def test_a_refused_run_then_a_crash_after_publishing_lose_nothing(own_model, store, settings, db, topic, uid):
    """Sequences 1, 4 and 6: a refused run keeps every vote; the retry is killed after metadata.json and before
    the control document names it; on restart the reconciler registers and announces it, and the retry was
    compared with the LIVE version, not the newest."""
    reg, runs, ledger = Registry(store), TrainingRuns(db), Ledger(db)
    sink = EventSink(settings.kafka)
    votes = [cast(store, sink, topic, own_model, 50_000 + i, "engineer" if i % 2 else "non_engineer", f"api:t:{uid}{i}")
             for i in range(6)]
    before = reg.versions(own_model)

    refused = training_job(*consume_args(own_model, topic, "--min-votes", "6", "--max-runs", "1", "--min-accuracy", "1.01"))
    assert refused.returncode == 0, refused.stdout[-3000:]
    assert reg.versions(own_model) == before
    run = runs.recent(own_model, 1)[0]
    assert run.outcome == "refused" and "1.01" in run.reason and run.version is None
    assert committed(settings, topic) == 6                          # consumed, because every vote is in the ledger
    assert all(ledger.get(v.vote_id) is not None for v in votes)
    assert read_topic(settings, settings.kafka.topics.model_events,
                      lambda e: e["model"] == own_model and e["event"] == "refused" and "1.01" in (e["reason"] or ""))

    route = reg.control()[0].models[own_model]
    live, newest = route.live, max(before)
    killed = run_with_failpoint("after-publish", *consume_args(own_model, topic, "--min-votes", "1", "--exit-when-idle", "60"))
    assert killed.returncode == -9 and "[failpoint] after-publish" in killed.stdout, killed.stdout[-3000:]
    new = max(reg.versions(own_model))
    assert new not in before and new not in reg.control()[0].models[own_model].deployed   # complete, unregistered
    run = runs.recent(own_model, 1)[0]
    assert (run.stage, run.outcome, run.version, run.parent) == ("published", None, new, live)

    restarted = training_job(*consume_args(own_model, topic, "--min-votes", "1", "--exit-when-idle", "2"))
    assert restarted.returncode == 0 and "[reconcile] registered" in restarted.stdout, restarted.stdout[-3000:]
    assert reg.versions(own_model) == before + [new]              # nothing trained twice
    meta = reg.metadata(own_model, new)
    assert meta.parent == live and (live != newest or len(before) == 1)
    data = data_of(store, own_model, new)
    for v in votes:
        assert data["fixes"][v.image_sha256]["label"] == v.label and v.vote_id in data["fixes"][v.image_sha256]["vote_ids"]
        assert holding(store, own_model, v.image_sha256) == [new]
    run = runs.get(run.run_id)
    assert (run.outcome, run.stage, run.version) == ("published", "announced", new)
    assert data["ledger"]["run_id"] == run.run_id and data["ledger"]["watermark"] == run.watermark
    assert read_topic(settings, settings.kafka.topics.model_events,
                      lambda e: e["model"] == own_model and e["event"] == "registered" and e["version"] == new
                      and "reconciled" in (e["reason"] or ""))
    route = reg.control()[0].models[own_model]
    assert route.weights[new] == 0 and route.mirror == [new] and new in route.rendezvous   # the canary candidate
    assert route.live == live and route.registered_through >= new


def test_agreeing_votes_count_and_ties_are_quarantined(own_model, store, settings, db, topic, uid):
    """An agreeing vote is a vote: 2 against 1 is a majority (before the ledger, the agreeing vote was dropped
    as a duplicate and this was a tie)."""
    sink = EventSink(settings.kafka)
    p = [f"api:t:{uid}-{i}" for i in range(3)]
    majority = [cast(store, sink, topic, own_model, 60_002, label, who)
                for label, who in (("engineer", p[0]), ("engineer", p[1]), ("non_engineer", p[2]))]
    tie = [cast(store, sink, topic, own_model, 60_001, label, who)
           for label, who in (("engineer", p[0]), ("non_engineer", p[1]))]
    ingest_only(settings, own_model, topic)
    agreed = decide(Ledger(db).snapshot(own_model).latest)
    sha = majority[0].image_sha256
    assert agreed.accepted[sha]["votes"] == {"engineer": 2, "non_engineer": 1}
    assert agreed.accepted[sha]["label"] == "engineer"
    assert sorted(agreed.accepted[sha]["vote_ids"]) == sorted(v.vote_id for v in majority)
    assert agreed.quarantined[tie[0].image_sha256]["votes"] == {"engineer": 1, "non_engineer": 1}


BAD_ANY = [None, True, 1.5, [], {}]                         # wrong for every field
BAD_TEXT = [5, "\x00x", "x" * 1000]                          # wrong for each text field too
BAD_TIME = ["5", -1, 2 ** 60]                                # and for created_at_ms


def test_malformed_records_go_to_the_dead_letters_and_never_stop_the_partition(own_model, store, settings, db,
                                                                               topic, uid):
    """Every field of a vote, wrongly typed or out of range, between two good votes: the good ones reach the
    ledger, each bad one is a dead letter with its reason, and the offset is committed past all of them. (A
    `principal: 5` used to raise TypeError in the trainer, which died on that offset at every restart.)"""
    from kafka import KafkaProducer
    sink = EventSink(settings.kafka)
    first = cast(store, sink, topic, own_model, 60_010, "engineer", f"api:t:{uid}-a")
    good = first.to_json()
    bad = [json.dumps({**good, field: value}).encode() for field in good if field not in ("kind", "schema")
           for value in BAD_ANY + (BAD_TIME if field == "created_at_ms" else BAD_TEXT)]
    bad += [b"\xff\xfe not utf-8", b"[1, 2]", b"{}", json.dumps({**good, "kind": "decoy"}).encode(), b""]
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    try:
        for raw in bad:
            producer.send(topic, raw, partition=0)
        producer.flush()
    finally:
        producer.close()
    last = cast(store, sink, topic, own_model, 60_011, "non_engineer", f"api:t:{uid}-b")
    ingest_only(settings, own_model, topic)
    ledger = Ledger(db)
    assert ledger.get(first.vote_id) is not None and ledger.get(last.vote_id) is not None
    assert committed(settings, topic, "ingest") == len(bad) + 2
    dead = read_topic(settings, settings.kafka.topics.dead_letter, lambda d: d.get("source_topic") == topic,
                      want=len(bad), timeout_s=30)
    assert sorted(d["offset"] for d in dead) == list(range(1, len(bad) + 1))
    assert all(d["reason"] for d in dead)


def test_sigkill_after_the_ledger_insert_before_the_commit(own_model, store, settings, db, topic, uid):
    sink = EventSink(settings.kafka)
    votes = [cast(store, sink, topic, own_model, 61_000 + i, "engineer", f"api:t:{uid}{i}") for i in range(3)]
    held = ("--min-votes", "1000000", "--max-wait-s", "1000000", "--exit-when-idle", "2")
    killed = run_with_failpoint("after-ledger-insert", *consume_args(own_model, topic, *held))
    assert killed.returncode == -9 and "[failpoint] after-ledger-insert" in killed.stdout, killed.stdout[-2000:]
    assert committed(settings, topic) is None                      # the offsets were never committed...
    ledger = Ledger(db)
    assert all(ledger.get(v.vote_id) for v in votes)               # ...but the votes are in the ledger
    again = training_job(*consume_args(own_model, topic, *held))
    assert again.returncode == 0 and "0 new votes (3 already there)" in again.stdout, again.stdout[-2000:]
    assert committed(settings, topic) == 3
    with db.transaction() as cur:
        cur.execute("SELECT count(*) FROM votes WHERE vote_id = ANY(%s)", ([v.vote_id for v in votes],))
        assert cur.fetchone()[0] == 3


def test_sigkill_after_registering_before_announcing(own_model, store, settings, db, topic, uid):
    """Also: a `train` command (what /models train sends) starts the run, below every vote threshold."""
    reg, runs = Registry(store), TrainingRuns(db)
    sink = EventSink(settings.kafka)
    votes = [cast(store, sink, topic, own_model, 62_000 + i, "non_engineer", f"api:t:{uid}{i}") for i in range(2)]
    commands = new_topic(settings, f"commands-{uid}")
    sink.send(commands, CommandRecord(command="train", model=own_model, actor="api:t", created_at_ms=now_ms()))
    before = reg.versions(own_model)
    held = ("--min-votes", "1000000", "--max-wait-s", "1000000")
    killed = run_with_failpoint("after-register", *consume_args(own_model, topic, *held, "--exit-when-idle", "60",
                                                                commands=commands))
    assert killed.returncode == -9 and "[failpoint] after-register" in killed.stdout, killed.stdout[-3000:]
    new = max(reg.versions(own_model))
    assert new not in before and new in reg.control()[0].models[own_model].deployed
    run = runs.recent(own_model, 1)[0]
    assert (run.stage, run.outcome, run.version, run.trigger) == ("registered", None, new, "command")

    restarted = training_job(*consume_args(own_model, topic, *held, "--exit-when-idle", "2"))
    assert restarted.returncode == 0 and "[reconcile]" in restarted.stdout, restarted.stdout[-3000:]
    assert reg.versions(own_model) == before + [new]              # no second version for the same votes
    for v in votes:
        assert holding(store, own_model, v.image_sha256) == [new]
    route = reg.control()[0].models[own_model]
    assert new in route.deployed and route.registered_through >= new
    run = runs.get(run.run_id)
    assert (run.outcome, run.stage, run.version) == ("published", "announced", new)
    events = read_topic(settings, settings.kafka.topics.model_events,
                        lambda e: e["model"] == own_model and e["event"] == "registered" and e["version"] == new
                        and "reconciled" in (e["reason"] or ""))
    assert events


def test_bootstrap_force_keeps_the_ledger(own_model, store, settings, db, topic, uid):
    sink = EventSink(settings.kafka)
    vote = cast(store, sink, topic, own_model, 63_001, "engineer", f"api:t:{uid}")
    ingest_only(settings, own_model, topic)
    ledger = Ledger(db)
    watermark = ledger.watermark(own_model)
    reg = Registry(store)
    live = reg.control()[0].models[own_model].live
    fp = reg.metadata(own_model, live).backbone["fingerprint"]
    before = reg.versions(own_model)
    result = training_job("bootstrap", "--model", own_model, "--force",
                          "--base", f"s3://{settings.s3.bucket}/{backbone_key(fp)}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    new = [v for v in reg.versions(own_model) if v not in before]
    assert len(new) == 2
    for v in new:
        data = data_of(store, own_model, v)
        assert data["fixes"][vote.image_sha256]["label"] == "engineer"     # trained on the kept votes
        assert data["ledger"]["watermark"] == watermark
    assert ledger.watermark(own_model) == watermark and ledger.get(vote.vote_id) is not None
    assert reg.control()[0].models[own_model].live == live              # the live version keeps its traffic


def test_votes_reach_the_ledger_while_a_run_trains(own_model, store, settings, db, topic, uid, tmp_path):
    """A run trains on its own thread: votes cast while it trains are in the ledger before it ends (they used
    to wait for the whole run), and the run learns only the votes of its snapshot."""
    sink, ledger, runs, log = EventSink(settings.kafka), Ledger(db), TrainingRuns(db), tmp_path / "trainer.log"
    first = [cast(store, sink, topic, own_model, 65_000 + i, "engineer", f"api:t:{uid}{i}") for i in range(2)]
    release = tmp_path / "release"
    with log.open("w") as out:
        trainer = start_trainer(consume_args(own_model, topic, "--min-votes", "2", "--max-runs", "1"), out,
                                TRAINER_PAUSE=f"run-started:{release}")
        try:
            assert wait_until(lambda: "[failpoint] run-started: paused" in log.read_text(), 90), log.read_text()[-3000:]
            later = [cast(store, sink, topic, own_model, 65_100 + i, "non_engineer", f"api:t:{uid}x{i}") for i in range(2)]
            assert wait_until(lambda: all(ledger.get(v.vote_id) for v in later), 30), log.read_text()[-3000:]
            run = runs.recent(own_model, 1)[0]
            assert run.outcome is None and run.stage == "started"          # ...while the run is still in flight
            release.touch()
            assert trainer.wait(timeout=180) == 0, log.read_text()[-3000:]
        finally:
            release.touch()
            if trainer.poll() is None:
                trainer.kill()
    run = runs.get(run.run_id)
    assert run.outcome == "published", log.read_text()[-3000:]
    data = data_of(store, own_model, run.version)
    assert all(v.image_sha256 in data["fixes"] for v in first)
    assert not any(v.image_sha256 in data["fixes"] for v in later)          # after its snapshot: the next run's
    assert data["ledger"]["watermark"] == run.watermark < ledger.watermark(own_model)
