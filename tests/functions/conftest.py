"""Fixtures of the function tests: a response_url and Slack Web API receiver on loopback, for the session."""
from __future__ import annotations

import importlib.util
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from tests.conftest import ROOT


def _standin():
    """dev/slack.py, the local stand-in for Slack, loaded from its file (a top-level `slack/` folder exists)."""
    spec = importlib.util.spec_from_file_location("dev_slack", ROOT / "dev" / "slack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


slack_standin = _standin()

RECEIVER_PORT = 8799          # dev/test.sh allows it as a response_url and points SLACK_API_URL at it


BOT_TOKEN = "xoxb-test"        # dev/test.sh's SLACK_BOT_TOKEN


class Received:
    """What reached the receiver: `posts` (time, path, JSON or form body as a dict, headers), and what it
    serves: `files` (url_private, only with the bot token) and `avatars` (profile photos, public)."""
    def __init__(self):
        self.posts: list[tuple[float, str, dict, dict]] = []
        self.files: dict[str, bytes] = {}
        self.avatars: dict[str, bytes] = {}
        self.file_requests: list[tuple[str, str | None]] = []      # (path, Authorization)

    def calls(self, method: str) -> list[tuple[dict, dict]]:
        """(body, headers) of each Web API call of `method` (e.g. views.open), in order."""
        return [(body, headers) for _, path, body, headers in self.posts if path == f"/api/{method}"]


def web_api_answer(method: str, body: dict) -> dict:
    """What Slack's Web API answers: dev/slack.py's stand-in, which `make run`'s try-outs use too."""
    return slack_standin.web_api(method, body, remember=None)


@pytest.fixture(scope="session")
def receiver():
    got = Received()

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _body(self) -> dict:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
                return {k: v[0] for k, v in parse_qs(data.decode()).items()}
            return json.loads(data) if data else {}

        def _answer(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            """url_private (only with the bot token, as Slack's file host) and profile photos; a Web API
            method called with GET (users.profile.get)."""
            path, _, query = self.path.partition("?")
            if path.startswith("/api/"):
                body = {k: v[0] for k, v in parse_qs(query).items()}
                got.posts.append((time.time(), path, body, dict(self.headers)))
                return self._answer(200, json.dumps(web_api_answer(path[5:], body)).encode(), "application/json")
            got.file_requests.append((path, self.headers.get("Authorization")))
            if path.startswith("/files/"):
                if self.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
                    return self._answer(403, b"not_authed", "text/plain")
                data = got.files.get(path[len("/files/"):])
            else:
                data = got.avatars.get(path[len("/avatars/"):].removesuffix(".jpg"))
            if data is None:
                return self._answer(404, b"no such file", "text/plain")
            self._answer(200, data, "image/jpeg")

        def do_POST(self):
            """response_url posts (answered "ok"), and Web API calls under /api/ (answered like Slack)."""
            body = self._body()
            got.posts.append((time.time(), self.path, body, dict(self.headers)))
            if self.path.startswith("/api/"):
                return self._answer(200, json.dumps(web_api_answer(self.path[5:], body)).encode(), "application/json")
            self._answer(200, b"ok", "text/plain")

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
