"""Fixtures of the function tests: a response_url and Slack Web API receiver on loopback, for the session."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

RECEIVER_PORT = 8799          # dev/test.sh allows it as a response_url and points SLACK_API_URL at it


class Received:
    def __init__(self):
        self.posts: list[tuple[float, str, dict]] = []


@pytest.fixture(scope="session")
def receiver():
    got = Received()

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            """response_url posts (answered "ok"), and Web API calls under /api/ (answered like Slack)."""
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.posts.append((time.time(), self.path, json.loads(data)))
            answer = (json.dumps({"ok": True, "channel": "C-REVIEW", "ts": f"{time.time():.6f}"}).encode()
                      if self.path.startswith("/api/") else b"ok")
            self.send_response(200)
            self.send_header("Content-Type", "application/json" if self.path.startswith("/api/") else "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", RECEIVER_PORT), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield got
    server.shutdown()
    server.server_close()                    # a socket left listening would take connections nobody answers


@pytest.fixture(scope="session", autouse=True)
def no_profiles_from_earlier_sessions(db, settings):
    """The dating app's tests walk every profile of the other side; the test database (never the one `make run`
    serves) keeps earlier sessions' profiles, so each session starts without them. Runs before any function
    test, so before any profile of this session exists."""
    assert settings.db.url.rsplit("/", 1)[-1].endswith("_test"), settings.db.url.rsplit("@", 1)[-1]
    with db.transaction() as cur:
        cur.execute("DELETE FROM profiles")         # matches_shown goes with them (ON DELETE CASCADE)
    yield
