"""/predict-rendezvous through the gateway: every version scores in parallel; each policy, with the deadline
tested against a deliberately slow version (dev/test.sh delays v2 by 1.2 s), the average, each version's own
result, and the record on `predictions`."""
from __future__ import annotations

import json
import uuid

import pytest

from layers.errors import BadInput
from tests.conftest import audited, http, wait_until
from tests.functions.test_slack import assert_valid_blocks, form, signed
from tests.training_job.conftest import read_topic
from portraits.synth import portrait, to_jpeg

JPEG = to_jpeg(portrait(91)[0])


def rendezvous(gateway, call_id: str | None = None, auth: bool = True, **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    headers = {"Content-Type": "image/jpeg", **({"X-Call-Id": call_id} if call_id else {})}
    return http("POST", f"{gateway}/function/predict-rendezvous?{qs}", JPEG, headers, auth=auth)


def by_version(body) -> dict:
    return {a["version"]: a for a in body["answers"]}


def test_best_confidence_waits_for_every_version_and_averages(served, gateway, settings):
    call_id = f"rv-{uuid.uuid4().hex}"
    status, _, body = rendezvous(gateway, call_id, deadline_ms=3000)
    assert status == 200, body
    answers = by_version(body)
    assert {1, 2} <= set(answers) and not any(a["late"] for a in answers.values())
    assert answers[2]["latency_ms"] >= 1200 > answers[1]["latency_ms"]
    best = max(answers.values(), key=lambda a: a["confidence"])
    assert body["policy"] == "best-confidence" and body["chosen"]["confidence"] == best["confidence"]
    for label, p in body["average"].items():
        assert abs(p - sum(a["probabilities"][label] for a in answers.values()) / len(answers)) < 1e-5
    records = read_topic(settings, settings.kafka.topics.predictions,
                         lambda r: r.get("kind") == "rendezvous" and r["request_id"] == call_id)
    assert records and records[0]["chosen_version"] == body["chosen"]["version"]


def test_a_version_that_misses_the_deadline_is_late(served, gateway):
    status, _, body = rendezvous(gateway, deadline_ms=400)
    answers = by_version(body)
    assert status == 200 and answers[2]["late"] and answers[2]["label"] is None and not answers[1]["late"]
    assert body["chosen"]["version"] != 2 and body["latency_ms"] < 1200
    assert body["average"] == {k: round(v, 6) for k, v in body["average"].items()}
    assert set(body["average"]) == {"engineer", "non_engineer"}


def test_fastest_takes_the_first_answer(served, gateway):
    status, _, body = rendezvous(gateway, policy="fastest", deadline_ms=3000)
    assert status == 200 and body["policy"] == "fastest"
    assert body["chosen"]["version"] != 2 and by_version(body)[2]["late"] and body["latency_ms"] < 1200


@pytest.mark.parametrize("deadline_ms, chosen_is_preferred", [(3000, True), (400, False)])
def test_preferred_waits_for_its_version_until_the_deadline(deadline_ms, chosen_is_preferred, served, gateway):
    status, _, body = rendezvous(gateway, policy="preferred", preferred=2, deadline_ms=deadline_ms)
    assert status == 200, body
    assert (body["chosen"]["version"] == 2) == chosen_is_preferred
    assert by_version(body)[2]["late"] == (not chosen_is_preferred)


@pytest.mark.parametrize("query, auth, status, code", [
    ({}, False, 401, "unauthorized"),
    ({"policy": "loudest"}, True, 400, "bad_input"),
    ({"policy": "preferred", "preferred": 99}, True, 400, "bad_input"),
    ({"deadline_ms": "soon"}, True, 400, "bad_input"),
])
def test_bad_requests(query, auth, status, code, served, gateway):
    got, _, body = rendezvous(gateway, auth=auth, **query)
    assert got == status and body["error"] == code, body


def test_mixed_input_sizes_in_one_rendezvous_set(served, gateway, store, tmp_path):
    """A version at 64 px (a whole model.tflite, the portable form) joins the 96 px versions' rendezvous set:
    each version scores the image preprocessed at ITS size, and the shared-backbone versions still agree with
    the served /predict path."""
    import dataclasses

    import keras
    import numpy as np

    from layers.images import preprocess
    from layers.serving.litert import LiteModel
    from layers.serving.loader import Loader
    from training_job.convert import to_tflite

    inp = keras.Input((64, 64, 3))
    dense = keras.layers.Dense(2, activation="softmax")
    small = keras.Model(inp, dense(keras.layers.GlobalAveragePooling2D()(inp)))    # mean colour -> 2 classes
    dense.set_weights([np.array([[3, -3], [-2, 2], [1, -1]], np.float32), np.array([0.1, -0.1], np.float32)])
    tflite = to_tflite(small)
    reg = audited(store)
    base = reg.metadata(served, 1)
    v = reg.allocate(served, owner="test")
    arts = {"model.tflite": reg.put_artifact(served, v, "model.tflite", tflite)}
    reg.commit(dataclasses.replace(base, version=v, parent=None, input_size=64, artifacts=arts, backbone={},
                                   sizes={"model.tflite": len(tflite)}, conversion={"ok": True}))

    def add(doc):
        doc.models[served].rendezvous.append(v)
        return f"test: v{v} joins the rendezvous set"

    def remove(doc):
        doc.models[served].rendezvous.remove(v)
        return f"test: v{v} leaves the rendezvous set"
    reg.update_control(add, "test")
    try:
        body = wait_until(lambda: (lambda r: r[0] == 200 and v in by_version(r[2]) and r[2])(
            rendezvous(gateway, deadline_ms=3000)), timeout_s=15)
        assert body, "the 64 px version never joined the rendezvous"
        answers = by_version(body)
        want_small = LiteModel(tflite).predict(preprocess(JPEG, 64)[None])[0]
        assert abs(answers[v]["probabilities"]["engineer"] - want_small[0]) < 1e-5
        want_v1 = Loader(reg, str(tmp_path)).load(served, 1).predict(preprocess(JPEG, 96)[None])[0]
        assert abs(answers[1]["probabilities"]["engineer"] - want_v1[0]) < 1e-5
        assert not answers[v]["late"] and not answers[1]["late"]
    finally:
        reg.update_control(remove, "test")


def test_slack_gets_the_best_answer_first_then_the_final_one_over_it(served, gateway, image_server, receiver):
    """dev/test.sh: the first answer is due at 0.5 s, and v2 answers at 1.2 s."""
    path = f"/commands/{uuid.uuid4().hex}"
    body = form("/predict-rendezvous", f"{image_server}/img/91.jpg", path=path)
    status, _, first = http("POST", f"{gateway}/function/predict-rendezvous", body.encode(), signed(body))
    assert status == 200 and first["response_type"] == "in_channel", first
    assert "v2: still scoring" in json.dumps(first["blocks"]) and not first.get("replace_original")
    posts = wait_until(lambda: [p for p in receiver.posts if p[1] == path], timeout_s=10)
    assert len(posts) == 1, posts
    final = posts[0][2]
    assert final["replace_original"] is True and final["response_type"] == "in_channel"
    text = json.dumps(final["blocks"])
    assert "still scoring" not in text and "late" not in text and "v2: " in text and "v1: " in text
    assert_valid_blocks(final)


def test_the_default_policy_comes_from_the_control_document(served, gateway, store):
    from layers.registry.dataops import DataOps
    ops = DataOps(audited(store), served)
    ops.policy("preferred", 2, "test")
    try:
        body = wait_until(lambda: (lambda r: r[0] == 200 and r[2]["policy"] == "preferred" and r[2])(
            rendezvous(gateway, deadline_ms=3000)), timeout_s=10)
        assert body and body["chosen"]["version"] == 2                   # it waited for v2 (1.2 s late)
        with pytest.raises(BadInput):
            ops.policy("preferred", 99, "test")                          # not in the rendezvous set
    finally:
        ops.policy("best-confidence", None, "test")
