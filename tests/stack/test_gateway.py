"""gateway -> watchdog -> template -> handler, over real HTTP: statuses, headers, bodies and timeouts are kept."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import API_TOKEN, ROOT

PORT = 8090
CLIENT_TIMEOUT_S = 2          # the gateway's patience with a silent client, for these tests
MAX_CONNECTIONS = 24


def call(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def real_watchdog_unavailable() -> str | None:
    sys.path.insert(0, str(ROOT / "dev"))
    import gateway as g
    kind, why = g.choose_watchdog("auto")
    return None if kind == "real" else why


# Each kind's functions on ports of their own: the other kind's may still be letting go of theirs.
FIRST_PORT = {"real": "8190", "standin": "8240"}


@pytest.fixture(scope="module", params=["real", "standin"])
def echo_gateway(request):
    """The same contract tests against the real of-watchdog (in a network namespace) and dev/watchdog.py."""
    if request.param == "real" and real_watchdog_unavailable():
        if os.environ.get("CI") and os.environ.get("OF_WATCHDOG_SRC"):
            pytest.fail(f"CI must test the real of-watchdog: {real_watchdog_unavailable()}")
        pytest.skip(real_watchdog_unavailable())
    env = {**os.environ, "AFTERDARK_RUNTIME": "processes",       # the echo functions have no image
           "AFTERDARK_WATCHDOG": request.param, "GATEWAY_CLIENT_TIMEOUT_S": str(CLIENT_TIMEOUT_S),
           "GATEWAY_MAX_CONNECTIONS": str(MAX_CONNECTIONS)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "dev" / "gateway.py"), "--stack", str(ROOT / "tests/fixtures/stack.yml"),
                             "--root", str(ROOT), "--bind", f"127.0.0.1:{PORT}", "--first-port", FIRST_PORT[request.param]], env=env)
    base = f"http://127.0.0.1:{PORT}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if call(base + "/healthz")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("test gateway did not become healthy")
    yield base
    proc.terminate()
    proc.wait(timeout=15)


def test_round_trip_keeps_status_headers_body_path_and_query(echo_gateway):
    payload = bytes(range(256))
    status, headers, body = call(f"{echo_gateway}/function/echo/sub/path?status=201&tag=x1", "POST", payload,
                                 {"Content-Type": "application/octet-stream", "X-Custom": "abc"})
    assert status == 201
    assert headers["X-Echo"] == "x1"
    assert headers["Content-Type"] == "application/json"
    seen = json.loads(body)
    assert base64.b64decode(seen["body_b64"]) == payload
    assert seen["method"] == "POST"
    assert seen["path"] == "/sub/path"
    assert seen["query"] == {"status": "201", "tag": "x1"}
    assert seen["headers"]["x-custom"] == "abc"
    assert seen["headers"]["x-call-id"] == headers["X-Call-Id"]      # the gateway's call id reaches the function
    assert float(headers["X-Duration-Seconds"]) >= 0                   # added by the watchdog


def test_error_statuses_pass_through(echo_gateway):
    for code in (400, 404, 413, 503):
        assert call(f"{echo_gateway}/function/echo?status={code}")[0] == code


def test_client_call_id_is_kept(echo_gateway):
    _, _, body = call(f"{echo_gateway}/function/echo", headers={"X-Call-Id": "my-call"})
    assert json.loads(body)["headers"]["x-call-id"] == "my-call"


def test_exec_timeout_gives_504(echo_gateway):
    assert call(f"{echo_gateway}/function/echo?sleep=3")[0] == 504


def test_health_and_ready(echo_gateway, request):
    function = f"http://127.0.0.1:{FIRST_PORT[request.node.callspec.params['echo_gateway']]}"
    status, _, body = call(f"{function}/_/health")
    assert (status, body) == (200, b"OK")
    assert call(f"{function}/_/ready")[0] == 200


def test_max_inflight_gives_429_and_the_others_are_served(echo_gateway):
    import threading
    got = []
    threads = [threading.Thread(target=lambda: got.append(call(f"{echo_gateway}/function/echo?sleep=1")[0]))
               for _ in range(5)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert got.count(429) >= 1 and got.count(200) >= 2 and set(got) <= {200, 429}, got   # max_inflight 2


def test_an_overloaded_function_does_not_stop_the_gateway_serving_others(echo_gateway):
    import threading
    busy = [threading.Thread(target=call, args=(f"{echo_gateway}/function/echo?sleep=1.5",)) for _ in range(6)]
    for t in busy:
        t.start()
    time.sleep(0.3)
    assert call(f"{echo_gateway}/function/echo")[0] == 429                   # echo is full
    status, _, body = call(f"{echo_gateway}/function/calm?tag=ok")           # calm is not
    assert status == 200 and json.loads(body)["query"] == {"tag": "ok"}
    for t in busy:
        t.join()


def test_unknown_function_is_404_and_system_functions_lists_the_stack(echo_gateway):
    assert call(f"{echo_gateway}/function/nope")[0] == 404
    status, _, body = call(f"{echo_gateway}/system/functions")
    assert status == 200
    assert [f["name"] for f in json.loads(body)] == ["calm", "echo"]


def test_production_healthz_function_reaches_s3_kafka_and_postgres(gateway):
    status, _, body = call(f"{gateway}/function/healthz")
    assert status == 200 and json.loads(body) == {"status": "up"}          # anyone: up or down, nothing more
    status, headers, body = call(f"{gateway}/function/healthz", headers={"Authorization": f"Bearer {API_TOKEN}"})
    report = json.loads(body)
    assert status == 200, report
    assert report["s3"]["ok"] and report["kafka"]["ok"] and report["postgres"]["ok"]
    assert report["versions"]["ai-edge-litert"] == "2.3.0"
    assert "tensorflow" not in report["versions"]


def raw(base: str, data: bytes, wait_s: float = 10) -> tuple[bytes, bool]:
    """Send raw bytes on one connection; (what came back, whether the gateway closed the connection)."""
    import socket
    host, port = base.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=wait_s) as s:
        s.sendall(data)
        got, deadline = b"", time.time() + wait_s
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                return got, False
            if not chunk:
                return got, True
            got += chunk
        return got, False


def test_a_declared_body_over_the_limit_is_413_at_once(echo_gateway):
    import socket
    host, port = echo_gateway.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=1.5) as s:      # 50 MB declared, nothing sent
        s.sendall(b"POST /function/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 52428800\r\n\r\n")
        first, t0 = b"", time.time()
        while b'"too_large"' not in first and time.time() - t0 < 1.5:
            first += s.recv(65536)                                          # headers, then the body: within 1.5 s
    assert first.startswith(b"HTTP/1.1 413") and b'"too_large"' in first, first
    # a client that sends its whole over-limit body reads the 413 too (the gateway drops what it reads)
    status, _, body = call(f"{echo_gateway}/function/echo", "POST", b"\0" * (17 * 1024 * 1024))
    assert status == 413 and json.loads(body)["error"] == "too_large"


def test_a_body_is_streamed_not_held(echo_gateway):
    big = os.urandom(12 * 1024 * 1024)                    # under the functions' 16 MiB
    status, _, body = call(f"{echo_gateway}/function/echo", "POST", big, {"Content-Type": "application/octet-stream"})
    assert status == 200 and base64.b64decode(json.loads(body)["body_b64"]) == big


def test_a_chunked_request_is_411_and_never_a_second_request(echo_gateway):
    got, closed = raw(echo_gateway, b"POST /function/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    b"2b\r\nGET /function/echo?status=299 HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 411") and closed, got
    assert b"299" not in got                              # the chunk's bytes were not served as a request


def test_a_slow_client_is_cut_off(echo_gateway):
    t0 = time.time()
    got, closed = raw(echo_gateway, b"POST /function/echo HTTP/1.1\r\nHost: x\r\n")           # headers never end
    assert closed and got == b"" and time.time() - t0 < CLIENT_TIMEOUT_S + 3
    got, closed = raw(echo_gateway, b"POST /function/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
    assert got.startswith(b"HTTP/1.1 408") and closed, got                                   # the body stalled


def test_connections_are_capped_and_served_again_once_idle_ones_go(echo_gateway):
    import socket
    host, port = echo_gateway.split("//")[1].split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.3)
        got, closed = raw(echo_gateway, b"GET /function/echo HTTP/1.1\r\nHost: x\r\n\r\n", wait_s=3)
        assert got.startswith(b"HTTP/1.1 503") and closed, got
        time.sleep(CLIENT_TIMEOUT_S + 1)                  # the silent ones are cut off...
        assert call(f"{echo_gateway}/function/echo")[0] == 200          # ...and the gateway serves again
    finally:
        for s in idle:
            s.close()
