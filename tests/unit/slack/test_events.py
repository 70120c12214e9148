"""The Events API through the Slack front, in process (layers.slack.dispatch, layers.slack.events): a signed
challenge is answered, an event is handled once per event_id, and an event refused while the front is busy
is not marked as seen, so Slack's retry is handled."""
import json
import threading
import time
from types import SimpleNamespace

from slack_sdk.signature import SignatureVerifier

from layers.config import SlackSettings
from layers.slack import SlackFront
from layers.slack.verify import LocalReplayGuard

SECRET = "s3cret"


def signed_event(payload: dict):
    body = json.dumps(payload).encode()
    ts = str(int(time.time()))
    sig = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
    return SimpleNamespace(method="POST", body=body, headers={
        "Content-Type": "application/json", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig})


def event(event_id: str, nonce: int):
    """app_home_opened as Slack sends it; a retry has the same event_id and a new signature (`nonce`)."""
    return signed_event({"type": "event_callback", "team_id": "T1", "event_id": event_id, "nonce": nonce,
                         "event": {"type": "app_home_opened", "user": "U1", "tab": "home"}})


def front(max_inflight: int = 1) -> SlackFront:
    return SlackFront(SlackSettings(signing_secret=SECRET, max_inflight=max_inflight), "app", "usage", (0, 0),
                      replay_guard=LocalReplayGuard())


def test_the_challenge_is_answered():
    answer = front().handle(signed_event({"type": "url_verification", "challenge": "c-1"}), None)
    assert answer["statusCode"] == 200 and answer["body"] == {"challenge": "c-1"}


def test_an_event_is_handled_once_per_event_id():
    seen, done = [], threading.Event()
    handlers = {"app_home_opened": lambda ev: (seen.append(ev.user_id), done.set())}
    f = front(max_inflight=4)
    assert f.handle(event("Ev1", 1), None, events=handlers)["statusCode"] == 200
    assert done.wait(5)
    assert f.handle(event("Ev1", 2), None, events=handlers)["statusCode"] == 200      # Slack's retry
    time.sleep(0.3)
    assert seen == ["U1"]


def test_an_event_refused_while_busy_is_handled_when_slack_retries():
    release, seen, done = threading.Event(), [], threading.Event()
    f = front(max_inflight=1)
    f.handle(event("Ev-slow", 1), None, events={"app_home_opened": lambda ev: release.wait(5)})     # the one place
    busy = f.handle(event("Ev2", 1), None, events={"app_home_opened": lambda ev: None})
    assert busy["statusCode"] == 503
    release.set()
    handlers = {"app_home_opened": lambda ev: (seen.append(ev.event_id), done.set())}
    deadline = time.time() + 5
    while time.time() < deadline:                           # the place comes back once the slow one ends
        if f.handle(event("Ev2", 2), None, events=handlers)["statusCode"] == 200:
            break
        time.sleep(0.05)
    assert done.wait(5) and seen == ["Ev2"]                 # the retry was not taken for a duplicate
