"""Logs are JSON lines carrying the call id, the function, the principal and the model version, and never a
token, a signature or image bytes."""
from __future__ import annotations

import json
import uuid

from layers.logs import scrub
from tests.conftest import API_TOKEN, LOGS, http, wait_until
from portraits.synth import portrait, to_jpeg


def test_scrub_blanks_tokens_and_signatures():
    text = scrub("Authorization: Bearer abc.def-123 sig v0=" + "a" * 64 + " bot xoxb-123-456-abc")
    assert "abc.def-123" not in text and "a" * 64 not in text and "xoxb-123" not in text
    assert text.count("[redacted]") == 3


def test_a_request_is_one_json_line_with_its_context_and_no_secret(served, gateway):
    call_id = f"log-{uuid.uuid4().hex}"
    jpeg = to_jpeg(portrait(77)[0])
    status, _, body = http("POST", f"{gateway}/function/predict?user=U-log", jpeg,
                           {"Content-Type": "image/jpeg", "X-Call-Id": call_id})
    assert status == 200, body

    def mine():
        found = []
        for line in (LOGS / "fn-predict.log").read_text(errors="replace").splitlines():
            if call_id in line and line.startswith("{"):
                found.append(json.loads(line))
        return found
    lines = wait_until(mine, timeout_s=10)
    assert lines, "no JSON log line carries the call id"
    answered = [l for l in lines if l["msg"].startswith("answered POST")]
    assert answered and answered[0]["function"] == "predict" and answered[0]["principal"] == "api:local:U-log"
    assert answered[0]["version"] == body["version"] and answered[0]["level"] == "info"
    text = (LOGS / "fn-predict.log").read_text(errors="replace")
    assert API_TOKEN and API_TOKEN not in text
