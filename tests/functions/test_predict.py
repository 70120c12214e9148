"""/predict through the gateway with real MinIO, Kafka and a bootstrapped model."""
from __future__ import annotations

import base64
import json
import threading
import time
import uuid

import pytest

from layers.registry import ModelMetadata, Registry, artifact_key
from portraits.synth import portrait, to_jpeg
from tests.conftest import audited, http, wait_until
from tests.training_job.conftest import read_topic


def predict_bytes(gateway, jpeg: bytes, user: str | None = None, call_id: str | None = None):
    headers = {"Content-Type": "image/jpeg"}
    if user:
        headers["X-User-Id"] = user
    if call_id:
        headers["X-Call-Id"] = call_id
    return http("POST", f"{gateway}/function/predict", jpeg, headers)


def set_route(store, gateway, model: str, weights: dict[int, int], wait: bool = True) -> None:
    """Replace the model's traffic weights (a DataOps edit), and wait until the function serves them."""
    def change(doc):
        doc.models[model].weights.clear()
        doc.models[model].weights.update(weights)
        return f"test: weights {weights}"
    audited(store).update_control(change, "test")
    want = {str(v): w for v, w in sorted(weights.items())}
    if wait:
        assert wait_until(lambda: http("GET", f"{gateway}/function/predict/status")[2]["route"]["weights"] == want, 15)


def test_correct_answers_on_held_out_images(served, gateway, store):
    reg = audited(store)
    data = json.loads(reg.fetch_artifact(served, 1, "data.json"))
    hold = [e for e in data["examples"] if e["split"] == "holdout"][:40]
    right = 0
    for e in hold:
        status, _, body = predict_bytes(gateway, store.get(e["key"]).body, user="U-acc")
        assert status == 200, body
        assert body["version"] == 1 and body["model"] == served
        assert set(body["probabilities"]) == {"engineer", "non_engineer"}
        assert abs(sum(body["probabilities"].values()) - 1) < 1e-3
        assert body["unconfident"] == (body["confidence"] < 0.8)
        assert body["label"] == max(body["probabilities"], key=body["probabilities"].get)
        right += body["label"] == e["label"]
    assert right / len(hold) >= 0.75


def test_inputs_url_json_url_and_base64(served, gateway, image_server):
    jpeg = to_jpeg(portrait(11)[0])
    s1, _, by_b64 = http("POST", f"{gateway}/function/predict",
                         json.dumps({"image_b64": base64.b64encode(jpeg).decode(), "user": "U1"}).encode(),
                         {"Content-Type": "application/json"})
    s2, _, by_url = http("POST", f"{gateway}/function/predict",
                         json.dumps({"image_url": f"{image_server}/img/11.jpg", "user": "U1"}).encode(),
                         {"Content-Type": "application/json"})
    s3, _, by_get = http("GET", f"{gateway}/function/predict?url={image_server}/img/11.jpg&user=U1")
    assert (s1, s2, s3) == (200, 200, 200)
    assert by_b64["probabilities"] == by_url["probabilities"] == by_get["probabilities"]
    assert by_b64["user"] == "api:local:U1"                    # the API client's namespace, never a bare id


def test_routing_split_matches_weights_and_is_sticky(served, gateway, store):
    set_route(store, gateway, served, {1: 70, 2: 30})
    try:
        jpeg = to_jpeg(portrait(5)[0])
        got = {u: predict_bytes(gateway, jpeg, user=f"user-{u}")[2]["version"] for u in range(300)}
        share = sum(v == 1 for v in got.values()) / len(got)
        assert 0.6 <= share <= 0.8, share                       # 70% +- ~4 sigma for n=300
        for u in (1, 7, 42):                                     # sticky: one user, one version
            assert {predict_bytes(gateway, jpeg, user=f"user-{u}")[2]["version"] for _ in range(4)} == {got[u]}
    finally:
        set_route(store, gateway, served, {1: 100, 2: 0})


def _publish_copy(reg: Registry, store, model: str, source: int, tamper: str | None = None) -> int:
    """A new immutable version with the artifacts of `source` (what a trainer would publish). tamper="head"
    then overwrites its head.tflite behind the registry's back, so the recorded sha256 no longer matches;
    tamper="backbone" records a backbone sha256 that the shared backbone.tflite does not have."""
    meta = reg.metadata(model, source)
    v = reg.allocate(model, owner="test")
    arts = {name: reg.put_artifact(model, v, name, reg.fetch_artifact(model, source, name, meta)) for name in meta.artifacts}
    backbone = meta.backbone
    if tamper == "backbone":
        backbone = {**backbone, "tflite": {**backbone["tflite"], "sha256": "0" * 64}}
    reg.commit(ModelMetadata(**{**meta.__dict__, "version": v, "parent": source, "artifacts": arts, "backbone": backbone}))
    if tamper == "head":
        store.put(artifact_key(model, v, "head.tflite"), b"\x00" * 1000)
    return v


def test_hot_reload_under_load_drops_nothing(served, gateway, store):
    reg = audited(store)
    new = _publish_copy(reg, store, served, 2)
    jpeg = to_jpeg(portrait(8)[0])
    results, stop = [], threading.Event()

    def client():
        while not stop.is_set():
            status, _, body = predict_bytes(gateway, jpeg, user="U-reload")
            results.append((time.time(), status, body.get("version") if isinstance(body, dict) else None))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    switched_at = time.time()
    set_route(store, gateway, served, {new: 100}, wait=False)
    time.sleep(4.0)
    stop.set()
    for t in threads:
        t.join()
    try:
        assert results and all(status == 200 for _, status, _ in results), [r for r in results if r[1] != 200][:3]
        first_new = min(t for t, _, v in results if v == new)
        assert first_new - switched_at < 15                 # within the poll bound (1 s) here; how fast: bench/
        assert all(v == new for t, _, v in results if t > first_new + 0.2)
        assert any(v != new for t, _, v in results if t < switched_at)
    finally:
        set_route(store, gateway, served, {1: 100, 2: 0})


@pytest.mark.parametrize("tamper", ["head", "backbone"])
def test_a_corrupted_artifact_is_never_served(tamper, served, gateway, store):
    reg = audited(store)
    set_route(store, gateway, served, {1: 100, 2: 0})
    bad = _publish_copy(reg, store, served, 1, tamper=tamper)
    set_route(store, gateway, served, {bad: 100, 1: 0}, wait=False)
    try:
        def failed():
            body = http("GET", f"{gateway}/function/predict/status")[2]
            return str(bad) in body["failed"] and body["failed"][str(bad)]
        why = wait_until(failed, timeout_s=10)
        assert why and "sha256" in why
        jpeg = to_jpeg(portrait(9)[0])
        versions = {predict_bytes(gateway, jpeg, user=f"u{i}")[2]["version"] for i in range(20)}
        assert versions == {1}                                   # the previous route keeps serving
        status = http("GET", f"{gateway}/function/predict/status")[2]
        assert status["desired_route"]["weights"] == {str(bad): 100, "1": 0} and status["route"]["weights"]["1"] == 100
    finally:
        set_route(store, gateway, served, {1: 100, 2: 0})


def test_every_request_is_mirrored_to_the_decoy_topic_with_a_replayable_image(served, gateway, store, settings):
    jpeg = to_jpeg(portrait(12)[0])
    call_id = f"decoy-{uuid.uuid4().hex}"
    status, _, body = predict_bytes(gateway, jpeg, user="U-decoy", call_id=call_id)
    assert status == 200
    records = read_topic(settings, settings.kafka.topics.predict_decoy, lambda r: r["request_id"] == call_id)
    assert len(records) == 1
    rec = records[0]
    assert rec["user"] == "api:local:U-decoy" and rec["version"] == body["version"] and rec["label"] == body["label"]
    assert wait_until(lambda: store.exists(rec["image_key"]), timeout_s=10)      # the archiver stores it...
    assert store.get(rec["image_key"]).body == jpeg            # ...exactly as seen: replayable
    replay = predict_bytes(gateway, store.get(rec["image_key"]).body, user="U-decoy")[2]
    assert replay["probabilities"] == body["probabilities"]


def test_shadow_versions_score_off_the_hot_path(served, gateway, store, settings):
    reg = audited(store)
    reg.update_control(lambda doc: (setattr(doc.models[served], "mirror", [2]), "mirror v2")[-1], "test")
    try:
        assert wait_until(lambda: http("GET", f"{gateway}/function/predict/status")[2]["route"]["mirror"] == [2])
        call_id = f"shadow-{uuid.uuid4().hex}"
        status, _, body = predict_bytes(gateway, to_jpeg(portrait(13)[0]), user="U-shadow", call_id=call_id)
        assert status == 200 and body["version"] == 1
        shadow = read_topic(settings, settings.kafka.topics.predictions, lambda r: r["request_id"] == call_id)
        assert shadow and shadow[0]["version"] == 2 and 0.5 <= shadow[0]["confidence"] <= 1
    finally:
        reg.update_control(lambda doc: (doc.models[served].mirror.clear(), "unmirror")[-1], "test")


def test_a_repeated_image_is_answered_from_the_prediction_cache(served, gateway):
    jpeg = to_jpeg(portrait(14_141)[0])
    before = http("GET", f"{gateway}/function/predict/status")[2]["cache"]
    first = predict_bytes(gateway, jpeg, user="U-cache")[2]
    second = predict_bytes(gateway, jpeg, user="U-cache")[2]           # same user: same version, same bytes
    after = http("GET", f"{gateway}/function/predict/status")[2]["cache"]
    assert first["version"] == second["version"] and first["probabilities"] == second["probabilities"]
    assert after["hits"] >= before["hits"] + 1 and after["misses"] >= before["misses"] + 1
    assert after["entries"] <= after["max_entries"]


@pytest.mark.exclusive           # it overwrites the one control document: a concurrent edit would be lost
def test_a_corrupted_control_document_is_never_served_and_the_log_says_why(serving, gateway, store):
    """...and the registry calls it Unavailable, as a trainer or /models sees it (they retry; nobody writes
    over it)."""
    from layers.errors import Unavailable
    from layers.registry import CONTROL_KEY, Registry
    from tests.conftest import LOGS
    status_of = lambda: http("GET", f"{gateway}/function/predict/status")[2]
    route = status_of()["route"]
    good = store.get(CONTROL_KEY).body
    corrupt = json.dumps({"models": {serving: {"weights": {"1": "lots"}}}}).encode()     # valid JSON, not a route
    store.put(CONTROL_KEY, corrupt, content_type="application/json")
    try:
        failing = wait_until(lambda: (lambda s: s["last_error"] and s)(status_of()), timeout_s=10)
        assert failing and failing["route"] == route, failing                   # the previous route serves on
        jpeg = to_jpeg(portrait(61)[0])
        assert predict_bytes(gateway, jpeg, user="U-corrupt")[0] == 200
        log = (LOGS / "fn-predict.log").read_text(errors="replace") if (LOGS / "fn-predict.log").exists() else ""
        log += (LOGS / "gateway-test.log").read_text(errors="replace") if (LOGS / "gateway-test.log").exists() else ""
        assert "control poll failed" in log and "lots" in log
        with pytest.raises(Unavailable, match="not valid"):
            Registry(store).control()
    finally:
        store.put(CONTROL_KEY, good, content_type="application/json")
    assert wait_until(lambda: status_of()["last_error"] is None, timeout_s=10)
