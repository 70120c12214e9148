"""Canary analysis: the pure decision rules, then auto-promotion and auto-rollback on constructed cases against
the real MinIO and Kafka (decoy traffic replayed with LiteRT), then the whole loop through the gateway."""
from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest

from layers.events import DecoyRecord, EventSink, now_ms
from layers.images import preprocess, sha256_hex
from layers.registry import AutoPromotion, ModelRoute, Policy, Registry, image_key
from layers.registry.dataops import DataOps
from layers.serving.servable import Loader
from training_job.canary import ACTOR, CanaryAnalyst, current_canary, judge, next_canary
from training_job.synth import portrait, to_jpeg
from tests.conftest import new_topic

POLICY = AutoPromotion(enabled=True, canary_percent=20, min_samples=4, margin=0.05)


@pytest.mark.parametrize("labelled, live, canary, verdict", [
    (3, 0.0, 1.0, "wait"),                  # too few labelled samples, however good
    (4, None, None, "wait"),
    (4, 0.50, 0.75, "promote"),
    (4, 0.50, 0.55, "promote"),             # exactly the margin
    (4, 0.50, 0.50, "rollback"),            # no better: the live version stays
    (40, 0.90, 0.60, "rollback"),
])
def test_judge(labelled, live, canary, verdict):
    got, why = judge(POLICY, labelled, live, canary)
    assert got == verdict and why


def test_the_next_canary_is_the_newest_servable_mirrored_version_never_a_rejected_one():
    route = ModelRoute(weights={3: 100, 4: 0, 5: 0, 6: 0}, mirror=[5, 6], auto=dataclasses.replace(POLICY, rejected=[6]))
    assert next_canary(route, lambda v: True) == 5
    assert next_canary(route, lambda v: v != 5) is None            # 5 failed its gates
    assert current_canary(route) is None
    route.weights[5] = 20
    assert current_canary(route) == 5 and next_canary(route, lambda v: True) is None
    assert next_canary(ModelRoute(weights={7: 100}, mirror=[2]), lambda v: True) is None   # older than live


def _copy(reg: Registry, src_model: str, src: int, model: str, flip: bool = False) -> int:
    """Publish `src` again as a version of `model`; `flip` swaps its head's outputs (a version that is always
    wrong where the original is right), converted like the trainer converts heads."""
    from training_job.convert import to_tflite
    from training_job.head import Head, head_model
    meta = reg.metadata(src_model, src)
    v = reg.allocate(model, owner="test")
    arts = {name: reg.put_artifact(model, v, name, reg.fetch_artifact(src_model, src, name, meta))
            for name in meta.artifacts if not (flip and name in ("head.tflite", "head.npz"))}
    if flip:
        arrays = np.load(io.BytesIO(reg.fetch_artifact(src_model, src, "head.npz", meta)))
        head = Head(arrays["kernel"][:, ::-1].copy(), arrays["bias"][::-1].copy())
        buf = io.BytesIO()
        np.savez(buf, **head.arrays())
        arts["head.npz"] = reg.put_artifact(model, v, "head.npz", buf.getvalue())
        arts["head.tflite"] = reg.put_artifact(model, v, "head.tflite", to_tflite(head_model(head)))
    reg.commit(dataclasses.replace(meta, model=model, version=v, parent=None, artifacts=arts))
    return v


@pytest.fixture
def canary_case(bootstrapped, store, settings, uid, tmp_path):
    """A model of its own: v1 (live) and v2 (v1 with its outputs swapped, mirrored), the policy on, and six
    images of live traffic on a decoy topic of its own."""
    reg = Registry(store)
    model = f"auto-{uid}"
    live = _copy(reg, bootstrapped, 1, model)
    flipped = _copy(reg, bootstrapped, 1, model, flip=True)
    reg.register(model, live, Policy())
    reg.register(model, flipped, Policy())
    DataOps(reg, model).auto(True, "test", canary_percent=20, min_samples=4, margin=0.05)
    topic = new_topic(settings, f"test-decoy-{uid}")
    sink = EventSink(settings.kafka, client_id="test")
    loaded = Loader(reg, str(tmp_path)).load(model, live)
    answers = {}
    for i in range(6):
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


def other(label: str) -> str:
    return "non_engineer" if label == "engineer" else "engineer"


@pytest.mark.parametrize("people_say, outcome", [("the opposite", "promoted"), ("what v1 says", "rolled-back")])
def test_auto_promotion_and_auto_rollback(people_say, outcome, canary_case):
    reg, model, live, flipped, analyst, answers, events = canary_case
    route = lambda: reg.control()[0].models[model]
    step = analyst.step(model, lambda: {})
    assert step.action == "canary" and step.version == flipped
    assert route().weights == {live: 80, flipped: 20}
    step = analyst.step(model, lambda: {})                          # no labelled traffic yet
    assert step.action == "waiting" and "0 of 4" in step.reason and route().weights == {live: 80, flipped: 20}
    labels = {sha: {"label": other(a) if people_say == "the opposite" else a} for sha, a in answers.items()}
    step = analyst.step(model, lambda: labels)
    assert step.action == outcome and step.evidence["labelled"] == 6
    if outcome == "promoted":
        assert step.evidence["canary_accuracy"] == 1.0 and step.evidence["live_accuracy"] == 0.0
        assert route().weights[flipped] == 100 and route().live == flipped
    else:
        assert route().weights == {live: 100, flipped: 0} and flipped not in route().mirror
        assert route().auto.rejected == [flipped]
        assert analyst.step(model, lambda: labels) is None       # a rejected version is never tried again
    assert [e[0][0] for e in events] == ["canary", outcome]
    history = DataOps(reg, model).history()
    assert history[0]["actor"] == ACTOR and history[1]["actor"] == ACTOR


def test_the_policy_off_does_nothing(canary_case):
    reg, model, live, flipped, analyst, _, events = canary_case
    DataOps(reg, model).auto(False, "test")
    assert analyst.step(model, lambda: {}) is None and events == []
    assert reg.control()[0].models[model].weights == {live: 100, flipped: 0}


def test_the_replayer_lets_go_of_versions_it_no_longer_uses(canary_case, settings):
    from layers.serving.replay import Replayer
    reg, model, live, flipped, analyst, answers, _ = canary_case
    replayer = Replayer(settings, reg.store, keep=1)
    first = replayer.report(model, [live], {}, from_offset=0, topic=analyst.topic)
    assert first["images"] == 6 and len(replayer._answers) == 6
    replayer.report(model, [flipped], {}, from_offset=0, topic=analyst.topic)
    assert list(replayer._loaded) == [(model, flipped)]
    assert {k[1] for k in replayer._answers} == {flipped} and len(replayer._answers) == 6
