"""/fix through the gateway: durable before acknowledged, idempotent, and a clear 400 for unknown classes."""
from __future__ import annotations

import base64
import json
import uuid

from layers.images import sha256_hex
from layers.synth import portrait, to_jpeg
from tests.conftest import http
from tests.training_job.conftest import read_topic


def post_fix(gateway, doc: dict):
    return http("POST", f"{gateway}/function/fix", json.dumps(doc).encode(), {"Content-Type": "application/json"})


def test_an_acknowledged_fix_is_in_kafka_and_in_s3(gateway, store, settings):
    jpeg = to_jpeg(portrait(1234)[0])
    user = f"U-{uuid.uuid4().hex[:6]}"
    status, _, body = post_fix(gateway, {"image_b64": base64.b64encode(jpeg).decode(), "label": "engineer", "user": user})
    assert status == 201, body
    assert body["image_sha256"] == sha256_hex(jpeg) and body["label"] == "engineer" and not body["duplicate"]
    assert "retrain" in body["next"]
    assert store.get(body["image_key"]).body == jpeg
    records = read_topic(settings, settings.kafka.topics.fixes, lambda r: r["fix_id"] == body["fix_id"])
    assert len(records) == 1 and records[0]["user"] == user and records[0]["image_key"] == body["image_key"]
    # the same image, label and user again: one fix, nothing new in Kafka
    status2, _, again = post_fix(gateway, {"image_b64": base64.b64encode(jpeg).decode(), "label": "engineer", "user": user})
    assert status2 == 200 and again["duplicate"] and again["fix_id"] == body["fix_id"]
    assert len(read_topic(settings, settings.kafka.topics.fixes, lambda r: r["fix_id"] == body["fix_id"], want=2, timeout_s=4)) == 1
    # another user's vote on the same image is another fix
    _, _, other = post_fix(gateway, {"image_b64": base64.b64encode(jpeg).decode(), "label": "engineer", "user": user + "x"})
    assert other["fix_id"] != body["fix_id"]


def test_raw_bytes_with_query_label_and_url_input(gateway, store, image_server, uid):
    jpeg = to_jpeg(portrait(4321)[0])
    status, _, body = http("POST", f"{gateway}/function/fix?label=non_engineer&user=U-raw-{uid}", jpeg, {"Content-Type": "image/jpeg"})
    assert status == 201 and body["label"] == "non_engineer"
    status, _, body = post_fix(gateway, {"image_url": f"{image_server}/img/77.jpg", "label": "engineer", "user": f"U-url-{uid}"})
    assert status == 201 and store.exists(body["image_key"])


def test_unknown_class_is_400_and_lists_the_valid_ones(gateway):
    status, _, body = post_fix(gateway, {"image_b64": base64.b64encode(b"x").decode(), "label": "astronaut", "user": "U"})
    assert status == 400
    assert body["error"] == "bad_input" and body["valid_labels"] == ["engineer", "non_engineer"]
    assert "engineer" in body["message"]
