"""Hostile and broken inputs: each gets its proper status and a JSON error, and nothing is stored.
SSRF targets are all on loopback (never another address): the functions' allow-list admits only the test
image host 127.0.0.1:8765, so every other loopback form must be refused, also behind a redirect."""
from __future__ import annotations

import base64
import json
import uuid

import pytest

from portraits.synth import portrait, to_jpeg
from tests.conftest import http, wait_until
from training_job.archiver import lag

JPEG = to_jpeg(portrait(5)[0])
IMG = "http://127.0.0.1:8765"
JSON = {"Content-Type": "application/json"}


def js(**doc) -> bytes:
    return json.dumps(doc).encode()


def fixdoc(url: str) -> bytes:
    return js(image_url=url, label="engineer", user=f"U-abuse-{uuid.uuid4().hex[:8]}")   # under the vote rate limit


CASES = [
    # (id, function, method, query, body, headers, status, error code)
    ("ssrf-loopback-gateway", "fix", "POST", "", fixdoc("http://127.0.0.1:8088/function/healthz"), JSON, 400, "unsafe_url"),
    ("ssrf-localhost-name", "fix", "POST", "", fixdoc("http://localhost:8765/img/1.jpg"), JSON, 400, "unsafe_url"),
    ("ssrf-ipv6-loopback", "fix", "POST", "", fixdoc("http://[::1]:8765/img/1.jpg"), JSON, 400, "unsafe_url"),
    ("ssrf-zero-address", "fix", "POST", "", fixdoc("http://0.0.0.0:8765/img/1.jpg"), JSON, 400, "unsafe_url"),
    ("ssrf-decimal-ip", "fix", "POST", "", fixdoc("http://2130706433:8765/img/1.jpg"), JSON, 400, "unsafe_url"),
    ("ssrf-minio-direct", "predict", "GET", "?url=http://127.0.0.1:9000/minio/health/live", b"", {}, 400, "unsafe_url"),
    ("ssrf-redirect-to-minio", "fix", "POST", "", fixdoc(f"{IMG}/redirect?to=http://127.0.0.1:9000/afterdark-test/"), JSON, 400, "unsafe_url"),
    ("ssrf-redirect-to-localhost", "predict", "POST", "", js(image_url=f"{IMG}/redirect?to=http://localhost:8088/"), JSON, 400, "unsafe_url"),
    ("ssrf-redirect-loop", "fix", "POST", "", fixdoc(f"{IMG}/loop?n=6"), JSON, 400, "unsafe_url"),
    ("scheme-file", "fix", "POST", "", fixdoc("file:///etc/passwd"), JSON, 400, "bad_input"),
    ("scheme-ftp", "predict", "POST", "", js(image_url="ftp://127.0.0.1/x.jpg"), JSON, 400, "bad_input"),
    ("not-a-url", "predict", "POST", "", b"definitely not a url", {"Content-Type": "text/plain"}, 400, "bad_input"),
    ("bad-port", "fix", "POST", "", fixdoc("http://127.0.0.1:99999/x.jpg"), JSON, 400, "bad_input"),
    ("oversize-body", "fix", "POST", "?label=engineer&user=U", b"\xff\xd8" + b"\0" * (10 * 1024 * 1024 + 10), {"Content-Type": "image/jpeg"}, 413, "too_large"),
    ("oversize-download", "fix", "POST", "", fixdoc(f"{IMG}/big"), JSON, 413, "too_large"),
    ("oversize-declared", "predict", "POST", "", js(image_url=f"{IMG}/big?declare=1"), JSON, 413, "too_large"),
    ("decompression-bomb", "fix", "POST", "", fixdoc(f"{IMG}/bomb.png"), JSON, 413, "too_large"),
    ("text-as-jpeg", "fix", "POST", "?label=engineer&user=U", b"hello world, not a jpeg", {"Content-Type": "image/jpeg"}, 415, "not_an_image"),
    ("truncated-jpeg", "fix", "POST", "", fixdoc(f"{IMG}/truncated.jpg"), JSON, 415, "not_an_image"),
    ("url-serves-text", "predict", "POST", "", js(image_url=f"{IMG}/text"), JSON, 415, "not_an_image"),
    ("upstream-404", "fix", "POST", "", fixdoc(f"{IMG}/status/404"), JSON, 502, "fetch_failed"),
    ("bad-json", "fix", "POST", "", b"{not json", JSON, 400, "bad_input"),
    ("json-array", "predict", "POST", "", b"[1, 2]", JSON, 400, "bad_input"),
    ("json-no-image", "fix", "POST", "", js(label="engineer", user="U"), JSON, 400, "bad_input"),
    ("bad-base64", "fix", "POST", "", js(image_b64="***", label="engineer", user="U"), JSON, 400, "bad_input"),
    ("unknown-label", "fix", "POST", "", js(image_b64=base64.b64encode(JPEG).decode(), label="pirate", user="U"), JSON, 400, "bad_input"),
    ("bad-user", "fix", "POST", "?label=engineer&user=a%20b%3Cscript%3E", JPEG, {"Content-Type": "image/jpeg"}, 400, "bad_input"),
    ("bad-idempotency-key", "fix", "POST", "?label=engineer&user=U-key", JPEG, {"Content-Type": "image/jpeg", "Idempotency-Key": "a b"}, 400, "bad_input"),
    ("xml-content-type", "predict", "POST", "", b"<img/>", {"Content-Type": "application/xml"}, 415, "not_an_image"),
    ("wrong-method-fix", "fix", "GET", "", b"", {}, 405, "method_not_allowed"),
    ("wrong-method-predict", "predict", "DELETE", "", b"", {}, 405, "method_not_allowed"),
]


def stored(store) -> set[str]:
    return set(store.keys("images/")) | set(store.keys("decoys/")) | set(store.keys("fixes/"))


@pytest.fixture(scope="module")
def quiet(served, gateway, settings):
    """No decoy of an earlier test may still be landing while we compare what is stored."""
    def idle():
        s = http("GET", f"{gateway}/function/predict/status")[2]["offpath"]
        return s.get("decoy.submitted", 0) == s.get("decoy.done", 0) + s.get("decoy.failed", 0)
    assert wait_until(idle, timeout_s=30)
    assert wait_until(lambda: lag(settings) == 0, timeout_s=30)       # and none is still on its way to S3


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_input(case, quiet, gateway, image_server, store):
    _, fn, method, query, body, headers, status, code = case
    before = stored(store)
    got, resp_headers, reply = http(method, f"{gateway}/function/{fn}{query}", body or None, headers)
    assert got == status, reply
    assert isinstance(reply, dict) and reply["error"] == code and reply["message"], reply
    assert resp_headers["Content-Type"].startswith("application/json")
    assert stored(store) == before, "an error must store nothing"


def test_the_table_is_large_enough():
    assert len(CASES) >= 20
