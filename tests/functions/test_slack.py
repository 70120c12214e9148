"""Slack slash commands through the gateway: signatures (slack-sdk), the 3-second budget with delivery to a
real local response_url receiver, Block Kit replies, and help on wrong usage."""
from __future__ import annotations

import json
import os
import time
import uuid
from urllib.parse import urlencode

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.signature import SignatureVerifier

from layers.config import SlackSettings
from layers.images import sha256_hex
from layers.slack import SlackFront, response_url_allowed
from layers.slack.reply import ephemeral
from portraits.synth import portrait, to_jpeg
from tests.conftest import http, wait_until
from tests.functions.conftest import RECEIVER_PORT
from tests.training_job.conftest import read_topic

SECRET = os.environ.get("SLACK_SIGNING_SECRET", "")


def form(command: str, text: str, user: str = "U-slack", path: str = "/commands/x") -> str:
    return urlencode({"token": "t", "team_id": "T1", "team_domain": "d", "channel_id": "C1", "channel_name": "c",
                      "user_id": user, "user_name": "n", "command": command, "text": text,
                      "response_url": f"http://127.0.0.1:{RECEIVER_PORT}{path}", "trigger_id": uuid.uuid4().hex})


def signed(body: str, secret: str = SECRET, ts: int | None = None) -> dict:
    ts = str(ts if ts is not None else int(time.time()))
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)}


def slash(gateway, function: str, body: str, headers: dict):
    t0 = time.perf_counter()
    status, _, reply = http("POST", f"{gateway}/function/{function}", body.encode(), headers)
    return status, reply, time.perf_counter() - t0


def assert_valid_blocks(reply: dict):
    assert reply["blocks"], reply
    for b in reply["blocks"]:
        parsed = Block.parse(b)
        assert parsed is not None and parsed.to_dict() == b     # slack-sdk's own model accepts every block


def test_signed_predict_is_answered_inline_with_block_kit(served, gateway, image_server):
    assert SECRET, "dev/lib.sh exports SLACK_SIGNING_SECRET"
    body = form("/predict", f"<{image_server}/img/21.jpg>")
    status, reply, _ = slash(gateway, "predict", body, signed(body))
    assert status == 200, reply
    assert reply["response_type"] == "in_channel"
    assert_valid_blocks(reply)
    text = json.dumps(reply["blocks"])
    assert ("an engineer" in text or "not an engineer" in text) and "v1" in text and "%" in text
    assert not any(b["type"] == "image" for b in reply["blocks"])          # a loopback URL is not public


def votes_by(settings, user: str, want: int = 1, timeout_s: float = 3) -> list[dict]:
    return read_topic(settings, settings.kafka.topics.fixes, lambda r: r.get("principal") == f"slack:T1:{user}",
                      want=want, timeout_s=timeout_s)


@pytest.mark.parametrize("case", ["tampered", "wrong-secret", "stale", "missing-headers", "replayed"])
def test_bad_signatures_are_401_and_nothing_is_done(case, gateway, store, settings, image_server):
    user = f"U-{uuid.uuid4().hex[:8]}"
    body = form("/fix", f"{image_server}/img/33.jpg engineer", user=user)
    headers = signed(body)
    sent = 0
    if case == "tampered":
        body = body.replace("engineer", "non_engineer")
    elif case == "wrong-secret":
        headers = signed(body, secret="not-the-secret")
    elif case == "stale":
        headers = signed(body, ts=int(time.time()) - 301)
    elif case == "missing-headers":
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    elif case == "replayed":
        assert slash(gateway, "fix", body, headers)[0] == 200            # the first delivery is fine
        sent = 1
        assert len(votes_by(settings, user, timeout_s=10)) == 1
    status, reply, _ = slash(gateway, "fix", body, headers)
    assert status == 401, reply
    assert len(votes_by(settings, user, want=sent + 1)) == sent          # nothing more was sent


def test_slow_work_is_acknowledged_at_once_and_delivered_to_response_url(served, gateway, image_server, receiver):
    path = f"/commands/{uuid.uuid4().hex}"
    body = form("/predict", f"{image_server}/slow?s=2.5&seed=4", path=path)
    status, reply, took = slash(gateway, "predict", body, signed(body))
    assert status == 200 and took < 2.5, (status, took)     # before the 2.5 s image host could have answered
    assert reply["response_type"] == "ephemeral" and "Working" in reply["text"]
    delivered = wait_until(lambda: [p for p in receiver.posts if p[1] == path], timeout_s=15)
    assert len(delivered) == 1
    message = delivered[0][2]
    assert message["response_type"] == "in_channel" and message["text"].split()[0] in ("engineer", "non_engineer")
    assert_valid_blocks(message)


def test_slack_fix_publishes_exactly_what_the_json_path_does(gateway, settings, image_server, store):
    user = f"U-{uuid.uuid4().hex[:8]}"
    body = form("/fix", f"{image_server}/img/44.jpg Non Engineer", user=user)       # any case, two words
    status, reply, _ = slash(gateway, "fix", body, signed(body))
    assert status == 200 and reply["response_type"] == "in_channel", reply
    assert_valid_blocks(reply)
    assert "Vote recorded" in json.dumps(reply["blocks"]) and "non_engineer" in reply["text"]
    sha = sha256_hex(to_jpeg(portrait(44)[0]))
    via_slack = read_topic(settings, settings.kafka.topics.fixes,
                           lambda r: r["image_sha256"] == sha and r["principal"] == f"slack:T1:{user}")
    json_user = user + "-json"
    status, _, _ = http("POST", f"{gateway}/function/fix", json.dumps(
        {"image_url": f"{image_server}/img/44.jpg", "label": "non_engineer", "user": json_user}).encode(),
        {"Content-Type": "application/json"})
    assert status == 201
    via_json = read_topic(settings, settings.kafka.topics.fixes,
                          lambda r: r["image_sha256"] == sha and r["principal"] == f"api:local:{json_user}")
    assert len(via_slack) == len(via_json) == 1
    a, b = via_slack[0], via_json[0]
    assert a["source"] == "slack" and b["source"] == "api"
    same = ("kind", "schema", "image_sha256", "image_key", "label")
    assert {k: a[k] for k in same} == {k: b[k] for k in same}
    assert store.exists(a["image_key"])


@pytest.mark.parametrize("function, command, text", [
    ("predict", "/predict", ""), ("predict", "/predict", "a b"), ("fix", "/fix", "only-a-url"),
    ("fix", "/fix", "help"), ("healthz", "/healthz", "unexpected"),
])
def test_wrong_usage_gets_ephemeral_help(function, command, text, gateway):
    body = form(command, text)
    status, reply, _ = slash(gateway, function, body, signed(body))
    assert status == 200 and reply["response_type"] == "ephemeral"
    assert "Usage" in reply["text"] and command in reply["text"]


def test_unknown_class_is_an_ephemeral_error_listing_the_valid_ones(gateway, image_server):
    body = form("/fix", f"{image_server}/img/1.jpg astronaut")
    status, reply, _ = slash(gateway, "fix", body, signed(body))
    assert status == 200 and reply["response_type"] == "ephemeral"
    assert "engineer, non_engineer" in reply["text"]


def test_without_a_signing_secret_slack_requests_are_refused():
    class Event:
        body = b"command=%2Fpredict&text=x"
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Signature": "v0=x",
                   "X-Slack-Request-Timestamp": str(int(time.time()))}
        method, path, query = "POST", "/", {}
    front = SlackFront(SlackSettings(signing_secret=None), "/predict", "/predict IMAGE_URL", (1, 1))
    ran = []
    answer = front.handle(Event(), lambda cmd: ran.append(cmd))
    assert answer["statusCode"] == 503 and "signing secret" in answer["body"]["text"] and not ran


def test_response_url_must_be_slack_unless_allowed():
    assert response_url_allowed("https://hooks.slack.com/commands/T1/2/3", ())
    assert not response_url_allowed("http://hooks.slack.com/commands/T1/2/3", ())     # not https
    assert not response_url_allowed("https://evil.example.com/hook", ())
    assert response_url_allowed("http://127.0.0.1:8799/x", ("127.0.0.1:8799",))
    assert not response_url_allowed("http://127.0.0.1:8800/x", ("127.0.0.1:8799",))


def test_the_checks_are_a_chain_that_stops_before_any_work_and_admins_are_marked():
    front = SlackFront(SlackSettings(signing_secret=SECRET, admins=("slack:T1:UA", "UB")), "/x", "/x", nargs=(0, 5))
    assert front.verify.checks == [front.verify.require_signature, front.verify.refuse_replays]
    ran = []

    class Event:
        method, path = "POST", "/"

        def __init__(self, user: str):
            body = form("/x", "hello", user=user)
            self.body, self.headers = body.encode(), signed(body)

    work = lambda cmd: ran.append(cmd) or ephemeral("hi")
    for user, admin in (("UA", True), ("UB", True), ("UC", False)):     # a bare user id in the list counts too
        assert front.handle(Event(user), work)["statusCode"] == 200
        assert ran[-1].user_id == user and ran[-1].admin is admin and ran[-1].principal == f"slack:T1:{user}"
    replayed = Event("UA")
    assert front.handle(replayed, work)["statusCode"] == 200
    assert front.handle(replayed, work)["statusCode"] == 401 and len(ran) == 4     # the replay did no work
    front.verify.checks.append(lambda event: {"statusCode": 418, "body": {}, "headers": {}})     # a check of one's own
    assert front.handle(Event("UA"), work)["statusCode"] == 418 and len(ran) == 4
