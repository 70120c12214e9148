"""With Kafka stopped: /predict still answers (the decoy is dropped and counted), /fix answers 503 and
acknowledges nothing, healthz says 503. With PostgreSQL stopped: /fix answers 503 at once, /predict keeps
serving. With MinIO stopped: /predict keeps serving the loaded versions, /fix answers 503, and the control
poll's failure is reported; it resumes when MinIO is back. Each service is started again afterwards, and
/fix works again."""
from __future__ import annotations

import base64
import json
import uuid

import pytest

from portraits.synth import portrait, to_jpeg
from tests.conftest import http, run_script, wait_until
from tests.training_job.conftest import read_topic

pytestmark = pytest.mark.exclusive          # it stops services every other test uses: dev/test.sh runs it alone


def stopped(service: str):
    """A fixture that stops `service` (dev/stop.sh) for the test, starts it again (dev/start.sh) after, and
    waits until the functions use it again: a decoy reaches Kafka, a vote reaches PostgreSQL. It yields
    `back()`, which does that at once, for a test that goes on once the service is back."""
    @pytest.fixture
    def fixture(gateway):
        result = run_script("stop.sh", service)
        assert result.returncode == 0, result.stderr
        state = {"up": False}

        def back():
            if not state["up"]:
                state["up"] = True
                result = run_script("start.sh", service, timeout=180)
                assert result.returncode == 0, result.stderr
                assert wait_until(lambda: recovered(gateway), timeout_s=30), f"the functions did not recover after {service}"
        yield back
        back()
    return fixture


def recovered(gateway) -> bool:
    done = lambda: http("GET", f"{gateway}/function/predict/status")[2]["offpath"].get("decoy.done", 0)
    before = done()
    jpeg = to_jpeg(portrait(uuid.uuid4().int % 100_000)[0])
    if http("POST", f"{gateway}/function/predict", jpeg, {"Content-Type": "image/jpeg"})[0] != 200:
        return False
    return bool(wait_until(lambda: done() > before, timeout_s=8)) and fix_request(gateway, 44)[0] == 201


kafka_down = stopped("kafka")
postgres_down = stopped("postgres")
minio_down = stopped("minio")


def test_kafka_down(serving, gateway, store, settings, kafka_down):
    jpeg = to_jpeg(portrait(31)[0])
    status, _, body = http("POST", f"{gateway}/function/predict", jpeg, {"Content-Type": "image/jpeg"})
    assert status == 200 and body["label"] in ("engineer", "non_engineer")

    user = f"U-{uuid.uuid4().hex[:6]}"
    fix_jpeg = to_jpeg(portrait(32)[0])
    vote = json.dumps({"image_b64": base64.b64encode(fix_jpeg).decode(), "label": "engineer", "user": user}).encode()
    key = {"Content-Type": "application/json", "Idempotency-Key": f"outage-{user}"}
    status, _, body = http("POST", f"{gateway}/function/fix", vote, key)
    assert status == 503, body
    assert body["error"] == "unavailable" and "Kafka" in body["message"]

    assert http("GET", f"{gateway}/function/healthz")[0] == 503
    lost = ("decoy.failed", "decoy.dropped", "decoy.unacknowledged")     # never acknowledged: counted, not hidden
    stats = wait_until(lambda: (lambda s: sum(s.get(k, 0) for k in lost) > 0 and s)(
        http("GET", f"{gateway}/function/predict/status")[2]["offpath"]), timeout_s=20)
    assert stats, "the lost decoy was not counted"

    # the key was bound before Kafka refused the vote: its retry is sent now, not taken for a duplicate
    kafka_down()
    status, _, body = http("POST", f"{gateway}/function/fix", vote, key)
    assert status == 201 and not body["duplicate"], body
    assert read_topic(settings, settings.kafka.topics.fixes, lambda r: r.get("vote_id") == body["vote_id"])
    status, _, again = http("POST", f"{gateway}/function/fix", vote, key)
    assert status == 200 and again["duplicate"] and again["vote_id"] == body["vote_id"]


def fix_request(gateway, seed: int):
    doc = {"image_b64": base64.b64encode(to_jpeg(portrait(seed)[0])).decode(), "label": "engineer",
           "user": f"U-{uuid.uuid4().hex[:6]}"}
    return http("POST", f"{gateway}/function/fix", json.dumps(doc).encode(), {"Content-Type": "application/json"})


def test_postgres_down_and_back(serving, gateway, image_server, postgres_down):
    import time
    from tests.functions.test_slack import form, signed
    body = form("/predict", f"{image_server}/img/5.jpg")
    t0 = time.monotonic()
    status, _, reply = http("POST", f"{gateway}/function/predict", body.encode(), signed(body))
    assert status == 200 and reply["response_type"] == "in_channel", reply     # the replay guard fell back
    assert time.monotonic() - t0 < 2.5                                           # inside Slack's 3 s
    t0 = time.monotonic()
    status, _, body = fix_request(gateway, 41)
    assert status == 503 and body["error"] == "unavailable" and "database" in body["message"], body
    assert time.monotonic() - t0 < 15                                   # a clear answer, never a hang
    jpeg = to_jpeg(portrait(42)[0])
    status, _, body = http("POST", f"{gateway}/function/predict", jpeg, {"Content-Type": "image/jpeg"})
    assert status == 200 and body["label"] in ("engineer", "non_engineer")
    status, _, body = http("GET", f"{gateway}/function/healthz", auth=False)
    assert status == 503 and body == {"status": "down"}
    result = run_script("start.sh", "postgres", timeout=120)
    assert result.returncode == 0, result.stderr
    assert wait_until(lambda: fix_request(gateway, 43)[0] == 201, timeout_s=20)


def test_minio_down_and_back(serving, gateway, minio_down):
    status_of = lambda: http("GET", f"{gateway}/function/predict/status")[2]
    ready = set(status_of()["ready"])
    jpeg = to_jpeg(portrait(51)[0])
    status, _, body = http("POST", f"{gateway}/function/predict", jpeg, {"Content-Type": "image/jpeg"})
    assert status == 200 and body["version"] in {int(v) for v in ready}          # from the loaded versions
    status, _, body = fix_request(gateway, 52)
    assert status == 503 and body["error"] == "unavailable" and "object store" in body["message"], body
    failing = wait_until(lambda: (lambda s: s["last_error"] and s)(status_of()), timeout_s=10)
    assert failing and set(failing["ready"]) == ready                             # reported, nothing unloaded
    result = run_script("start.sh", "minio", timeout=120)
    assert result.returncode == 0, result.stderr
    assert wait_until(lambda: status_of()["last_error"] is None, timeout_s=15)   # the poll works again
    assert wait_until(lambda: fix_request(gateway, 53)[0] == 201, timeout_s=20)
