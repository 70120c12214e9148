"""Canary analysis: auto-promotion and auto-rollback on constructed cases against the real MinIO and Kafka (decoy
traffic replayed with LiteRT), then the whole loop through the gateway. The pure decision rules are tested in
tests/unit/analysis/test_canary_policy.py."""
from __future__ import annotations

import dataclasses
import random
from typing import Callable

import numpy as np
import pytest

from layers.events import DecoyRecord, EventSink, now_ms
from layers.images import preprocess, sha256_hex
from layers.registry import AutoPromotion, Policy, image_key
from layers.registry.dataops import DataOps
from layers.serving.loader import Loader
from layers.ledger import Consensus
from layers.analysis.replay import DecoyTail
from training_job.canary import ACTOR, CanaryAnalyst
from portraits.synth import portrait, to_jpeg
from tests.conftest import audited, new_topic
from tests.training_job.conftest import copy_version

POLICY = AutoPromotion(enabled=True, canary_percent=20, min_samples=4)
N_IMAGES = 10            # all discordant: 7 in one direction decide at alpha 0.05


@pytest.fixture
def canary_case(bootstrapped, store, settings, uid, tmp_path):
    """A model of its own: v1 (live) and v2 (v1 with its outputs swapped, mirrored), the policy on, and six
    images of live traffic on a decoy topic of its own."""
    reg = audited(store)
    model = f"auto-{uid}"
    live = copy_version(reg, bootstrapped, 1, model)
    flipped = copy_version(reg, bootstrapped, 1, model, flip=True, parent=live)        # a retrain of live, as the trainer's
    reg.register(model, live, Policy())
    reg.register(model, flipped, Policy())
    DataOps(reg, model).auto(True, "test", canary_percent=20, min_samples=4, max_samples=N_IMAGES)
    topic = new_topic(settings, f"test-decoy-{uid}")
    sink = EventSink(settings.kafka, client_id="test")
    loaded = Loader(reg, str(tmp_path)).load(model, live)
    answers = {}
    for i in range(N_IMAGES):
        jpeg = to_jpeg(portrait(7000 + i)[0])
        sha = sha256_hex(jpeg)
        store.put_if_absent(image_key(sha), jpeg)
        answers[sha] = loaded.labels[int(np.argmax(loaded.predict(preprocess(jpeg, loaded.input_size)[None])[0]))]
        sink.send(topic, DecoyRecord(request_id=f"r-{uid}-{i}", image_sha256=sha, image_key=image_key(sha), user="U1",
                                     created_at_ms=now_ms(), model=model, version=live, label=answers[sha],
                                     confidence=0.9))
    events = []
    analyst = CanaryAnalyst(settings, reg, lambda *a, **k: events.append((a, k)), topic=topic)
    yield reg, model, live, flipped, analyst, answers, events
    sink.close()


def decide(analyst: CanaryAnalyst, model: str, consensus: Callable[[], Consensus]):
    """The analyst's next decision. A step that lost the race for the control document (the tests that run
    meanwhile register models of their own in it) decides again, as the trainer's next step would."""
    for _ in range(20):
        step = analyst.step(model, consensus)
        if step is not None:
            return step
    return None


def other(label: str) -> str:
    return "non_engineer" if label == "engineer" else "engineer"


def agreed(labels: dict[str, str]) -> Callable[[], Consensus]:
    return lambda: Consensus(accepted={sha: {"label": label} for sha, label in labels.items()})


@pytest.mark.parametrize("people_say, outcome", [("the opposite", "promoted"), ("what v1 says", "rolled-back"),
                                                 ("coin flips", "rolled-back")])
def test_auto_promotion_and_auto_rollback(people_say, outcome, canary_case):
    reg, model, live, flipped, analyst, answers, events = canary_case
    route = lambda: reg.control()[0].models[model]
    step = decide(analyst, model, agreed({}))
    assert step.action == "canary" and step.version == flipped
    assert route().weights == {live: 80, flipped: 20}
    step = decide(analyst, model, agreed({}))                          # no honestly labelled image yet
    assert step.action == "waiting" and step.evidence["n"] == 0 and route().weights == {live: 80, flipped: 20}
    coin = random.Random(3)
    say = {"the opposite": other, "what v1 says": lambda a: a,
           "coin flips": lambda a: a if coin.random() < 0.5 else other(a)}[people_say]
    labels = {sha: say(a) for sha, a in answers.items()}
    step = decide(analyst, model, agreed(labels))
    ev = step.evidence
    assert step.action == outcome and ev["n"] == N_IMAGES
    assert ev["canary_only"] + ev["live_only"] == N_IMAGES          # v2 is v1 flipped: every image discordant
    assert ev["traffic"]["images"] == N_IMAGES and ev["traffic"]["agreement"] == 0.0
    if outcome == "promoted":
        assert ev["canary_only"] == N_IMAGES and ev["p_better"] <= 0.05 and "better than live" in step.reason
        assert route().weights[flipped] == 100 and route().live == flipped
    else:
        assert route().weights == {live: 100, flipped: 0} and flipped not in route().mirror
        assert route().auto.rejected == [flipped]
        assert analyst.step(model, agreed(labels)) is None       # a rejected version is never tried again
        if people_say == "coin flips":            # neither side wins at alpha: the budget ends it
            assert "no decision within the budget" in step.reason and max(ev["p_better"], ev["p_worse"]) > 0.05
        else:
            assert "worse than live" in step.reason and ev["p_worse"] <= 0.05
    assert [e[0][0] for e in events] == ["canary", outcome]
    assert events[-1][1]["n"] == N_IMAGES and "lr_better" in events[-1][1]     # the evidence, on model-events
    history = DataOps(reg, model).history()["history"]
    assert history[0]["actor"] == ACTOR and history[1]["actor"] == ACTOR
    assert f"n={N_IMAGES}" in history[0]["change"]                             # ...and in the audit log


def test_the_canary_is_never_judged_on_images_it_trained_on(canary_case):
    reg, model, live, flipped, analyst, answers, _ = canary_case
    decide(analyst, model, agreed({}))
    analyst._trained[(model, flipped)] = set(list(answers)[:4])      # as if its data.json listed them
    step = decide(analyst, model, agreed({sha: other(a) for sha, a in answers.items()}))
    assert step.evidence["n"] == N_IMAGES - 4


def test_the_decoy_tail_reads_only_what_is_new_and_always_the_newest(settings, uid):
    topic = new_topic(settings, f"test-tail-{uid}")
    sink = EventSink(settings.kafka, client_id="test")
    model = f"tail-{uid}"

    def send(first: int, n: int) -> None:
        for i in range(first, first + n):
            sink.send(topic, DecoyRecord(request_id=f"r{i}", image_sha256=f"{i:064x}", image_key="k", user="u",
                                         created_at_ms=now_ms(), model=model, version=1, label="engineer",
                                         confidence=0.9))
    send(0, 60)                                    # more than any limit below
    tail = DecoyTail(settings, topic, model, per_step=10, keep=100)
    try:
        assert tail.read() == 10 and set(tail.images()) == {f"{i:064x}" for i in range(50, 60)}
        assert tail.read() == 0                    # nothing new: nothing read again
        send(60, 25)
        assert tail.read() == 10 and tail.images()[0] == f"{84:064x}"       # the newest, past the limit
        assert tail.skipped == 15 and f"{74:064x}" not in tail.images()
        send(85, 3)
        assert tail.read() == 3 and tail.read_records == 23
    finally:
        tail.close()
        sink.close()


def test_a_version_the_trainer_did_not_retrain_is_never_made_a_canary(canary_case, store):
    """The bootstrap's second version (no parent) is mirrored too; it must not spend the crowd's alpha."""
    reg, model, live, flipped, analyst, _, events = canary_case
    meta = reg.metadata(model, flipped)
    orphan = reg.allocate(model, owner="test")
    reg.commit(dataclasses.replace(meta, version=orphan, parent=None))
    reg.register(model, orphan, Policy())
    DataOps(reg, model).mirror(flipped, True, "test")        # both mirrored: the orphan is the newer
    assert {flipped, orphan} <= set(reg.control()[0].models[model].mirror)
    step = decide(analyst, model, agreed({}))
    assert step.action == "canary" and step.version == flipped != orphan


def test_the_policy_off_does_nothing(canary_case):
    reg, model, live, flipped, analyst, _, events = canary_case
    DataOps(reg, model).auto(False, "test")
    assert analyst.step(model, agreed({})) is None and events == []
    assert reg.control()[0].models[model].weights == {live: 100, flipped: 0}


def test_the_replayer_lets_go_of_versions_it_no_longer_uses(canary_case, settings):
    from layers.analysis.replay import Replayer
    reg, model, live, flipped, analyst, answers, _ = canary_case
    replayer = Replayer(settings, reg.store, keep=1)
    first = replayer.report(model, [live], {}, from_offset=0, topic=analyst.topic)
    assert first["images"] == N_IMAGES and len(replayer._answers) == N_IMAGES
    replayer.report(model, [flipped], {}, from_offset=0, topic=analyst.topic)
    assert list(replayer._loaded) == [(model, flipped)]
    assert {k[1] for k in replayer._answers} == {flipped} and len(replayer._answers) == N_IMAGES
