"""The replay tool over live traffic: every image the decoy topic recorded, re-scored by two versions, compared
with what the functions themselves answer (/predict-rendezvous gives each version's label) and with the
ledger's consensus labels."""
from __future__ import annotations

import json

from kafka import KafkaConsumer, TopicPartition

from layers.edge.auth import vote_id
from layers.ledger import Ledger, Position, Recorded, Vote
from layers.images import sha256_hex
from tests.conftest import http
from tests.training_job.conftest import training_job
from portraits.synth import portrait, to_jpeg


def end_offset(settings, topic: str) -> int:
    c = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        return c.end_offsets([tp])[tp]
    finally:
        c.close()


def test_replay_reports_agreement_and_accuracy_on_ledger_labels(served, gateway, settings, store, db, uid):
    start = end_offset(settings, settings.kafka.topics.predict_decoy)
    images = [to_jpeg(portrait(95_000 + i)[0]) for i in range(6)]
    expected, versions = {}, None
    for jpeg in images:                                   # live traffic: each image twice, decoyed each time
        for _ in range(2):
            assert http("POST", f"{gateway}/function/predict", jpeg, {"Content-Type": "image/jpeg"})[0] == 200
        rv = http("POST", f"{gateway}/function/predict-rendezvous?deadline_ms=5000", jpeg, {"Content-Type": "image/jpeg"})[2]
        versions = versions or [str(a["version"]) for a in rv["answers"]][:2]   # two versions in the rendezvous set
        expected[sha256_hex(jpeg)] = {str(a["version"]): a["label"] for a in rv["answers"] if str(a["version"]) in versions}
        assert set(expected[sha256_hex(jpeg)]) == set(versions) and len(versions) == 2, rv
    labelled = {sha256_hex(jpeg): "engineer" for jpeg in images[:3]}          # consensus labels for three of them
    for jpeg in images[:3]:                                                    # voted images are kept, as /fix does
        store.put(f"images/{sha256_hex(jpeg)}", jpeg)
    Ledger(db).record([Recorded(Vote(vote_id=vote_id(f"api:t:{uid}", sha), model=served, image_sha256=sha,
                                     image_key=f"images/{sha}", label=label, principal=f"api:t:{uid}", source="api",
                                     created_at_ms=0), Position("replay-test", 0, i))
                       for i, (sha, label) in enumerate(labelled.items())])
    result = training_job("replay", "--model", served, "--versions", ",".join(versions), "--from-offset", str(start))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["records"] >= 12 and report["images"] >= 6           # one image seen twice counts once
    for sha, by_version in expected.items():                              # the same answers the functions gave
        for v, label in by_version.items():
            assert report["versions"][v]["labels"][sha] == label, (sha, v)
    seen = report["versions"][versions[0]]["labels"]
    agree = sum(len({report["versions"][v]["labels"][sha] for v in versions}) == 1 for sha in seen)
    assert report["agreement"] == round(agree / len(seen), 4)
    for v in versions:
        assert report["versions"][v]["labelled"] >= 3 and 0 <= report["versions"][v]["accuracy"] <= 1


def test_an_image_that_is_gone_is_left_out_not_fatal(served, settings, store, uid):
    """A labelled image whose object is in neither images/ nor decoys/ (deleted by hand, or a decoy that
    expired) is left out of the replay's answers: the canary judges on the rest instead of skipping every step."""
    from layers.analysis.replay import Replayer
    kept = to_jpeg(portrait(96_100)[0])
    store.put(f"images/{sha256_hex(kept)}", kept)
    gone = sha256_hex(f"never stored {uid}".encode())
    answers = Replayer(settings, store).answers(served, [1, 2], [gone, sha256_hex(kept)])
    assert {v: set(a) for v, a in answers.items()} == {1: {sha256_hex(kept)}, 2: {sha256_hex(kept)}}
    assert answers[1][sha256_hex(kept)] in ("engineer", "non_engineer")

