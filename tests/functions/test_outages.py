"""With Kafka stopped: /predict still answers (the decoy is dropped and counted), /fix answers 503 and
acknowledges nothing, healthz says 503. Kafka is started again afterwards."""
from __future__ import annotations

import base64
import json
import uuid

import pytest

from layers.fixes import fix_marker_key
from layers.synth import portrait, to_jpeg
from tests.conftest import http, run_script, wait_until


@pytest.fixture
def kafka_down():
    result = run_script("stop.sh", "kafka")
    assert result.returncode == 0, result.stderr
    yield
    result = run_script("start.sh", "kafka", timeout=180)
    assert result.returncode == 0, result.stderr


def test_kafka_down(served, gateway, store, kafka_down):
    jpeg = to_jpeg(portrait(31)[0])
    status, _, body = http("POST", f"{gateway}/function/predict", jpeg, {"Content-Type": "image/jpeg"})
    assert status == 200 and body["label"] in ("engineer", "non_engineer")

    user = f"U-{uuid.uuid4().hex[:6]}"
    fix_jpeg = to_jpeg(portrait(32)[0])
    status, _, body = http("POST", f"{gateway}/function/fix",
                           json.dumps({"image_b64": base64.b64encode(fix_jpeg).decode(), "label": "engineer", "user": user}).encode(),
                           {"Content-Type": "application/json"})
    assert status == 503, body
    assert body["error"] == "unavailable" and "Kafka" in body["message"]
    from layers.events import FixEvent
    from layers.images import sha256_hex
    assert not store.exists(fix_marker_key(FixEvent.fix_id_for(sha256_hex(fix_jpeg), "engineer", user)))

    assert http("GET", f"{gateway}/function/healthz")[0] == 503
    stats = wait_until(lambda: (lambda s: s.get("decoy.failed", 0) + s.get("decoy.dropped", 0) > 0 and s)(
        http("GET", f"{gateway}/function/predict/status")[2]["offpath"]), timeout_s=20)
    assert stats, "the lost decoy was not counted"
