"""Slack interactivity through the gateway: vote buttons under unconfident answers (the fix function), the
review channel (chat.postMessage to a Web API receiver on loopback), and the dating app's buttons."""
from __future__ import annotations

import json
import time
import uuid
from urllib.parse import urlencode

import pytest

from layers.edge.auth import vote_id
from layers.images import preprocess, sha256_hex
from layers.ledger import Ledger
from layers.registry import Registry
from layers.serving.loader import Loader
from tests.conftest import http, wait_until
from tests.functions.conftest import RECEIVER_PORT
from tests.functions.test_slack import assert_valid_blocks, form, signed
from tests.training_job.conftest import ingest_only, read_topic
from portraits.synth import portrait, to_jpeg


def click_body(action_id: str, value: str, trigger_id: str, user: str = "U-click", path: str | None = None,
               blocks: list | None = None) -> str:
    payload = {"type": "block_actions", "user": {"id": user, "team_id": "T1"}, "team": {"id": "T1"},
               "trigger_id": trigger_id, "response_url": f"http://127.0.0.1:{RECEIVER_PORT}{path or '/actions/x'}",
               "actions": [{"action_id": action_id, "value": value, "type": "button"}],
               "message": {"blocks": blocks or []}}
    return urlencode({"payload": json.dumps(payload)})


@pytest.fixture(scope="module")
def unsure(served, store, tmp_path_factory):
    """A portrait that v1 (the live version) is unsure about, and its sha256."""
    v1 = Loader(Registry(store), str(tmp_path_factory.mktemp("models"))).load(served, 1)
    for seed in range(200, 600):
        jpeg = to_jpeg(portrait(seed)[0])
        if v1.predict(preprocess(jpeg, v1.input_size)[None])[0].max() < 0.75:
            return seed, jpeg, sha256_hex(jpeg)
    pytest.fail("no portrait that v1 is unsure about among 400")


def test_an_unconfident_slack_answer_has_vote_buttons_and_goes_to_the_review_channel(
        unsure, gateway, image_server, receiver):
    seed, jpeg, sha = unsure
    body = form("/predict", f"{image_server}/img/{seed}.jpg")
    status, _, reply = http("POST", f"{gateway}/function/predict", body.encode(), signed(body))
    assert status == 200, reply
    actions = [b for b in reply["blocks"] if b["type"] == "actions"]
    assert actions and {e["action_id"] for e in actions[0]["elements"]} == {"vote:engineer", "vote:non_engineer"}
    assert json.loads(actions[0]["elements"][0]["value"])["sha"] == sha
    assert_valid_blocks(reply)
    posts = wait_until(lambda: [p for p in receiver.posts if p[1] == "/api/chat.postMessage"
                                and sha in json.dumps(p[2])], timeout_s=10)
    assert posts, "nothing reached the review channel"
    post = posts[0][2]
    assert post["channel"] == "C-REVIEW" and any(b["type"] == "actions" for b in post["blocks"])


def test_a_click_is_exactly_one_vote_retried_or_not(unsure, gateway, store, settings, db, receiver, served):
    _, jpeg, sha = unsure
    http("POST", f"{gateway}/function/predict", jpeg, {"Content-Type": "image/jpeg"})   # stores decoys/<sha>
    assert wait_until(lambda: store.exists(f"decoys/{sha}"), timeout_s=10)     # a decoy: it expires
    trigger, user = uuid.uuid4().hex, f"U{uuid.uuid4().hex[:6]}"
    value = json.dumps({"sha": sha, "model": served})
    path = f"/actions/{uuid.uuid4().hex}"
    blocks = [{"type": "section", "block_id": "answer", "text": {"type": "mrkdwn", "text": "the answer"}},
              {"type": "actions", "block_id": "vote", "elements": []}]
    body = click_body("vote:non_engineer", value, trigger, user=user, path=path, blocks=blocks)
    status, _, ack = http("POST", f"{gateway}/function/fix", body.encode(), signed(body))
    assert status == 200 and ack in (b"", "", {}), ack                 # acknowledged at once, no body
    time.sleep(1.1)                                                   # Slack's retry: same payload, a new signature
    status, _, _ = http("POST", f"{gateway}/function/fix", body.encode(), signed(body))
    assert status == 200
    updates = wait_until(lambda: (lambda got: len(got) == 2 and got)([p for p in receiver.posts if p[1] == path]), 15)
    assert updates, [p for p in receiver.posts if p[1] == path]
    first, second = updates[0][2], updates[1][2]
    assert first["replace_original"] is True and "non_engineer 1" in first["text"]
    assert [b.get("block_id") for b in first["blocks"]] == ["answer", "vote", "tally"]
    assert "non_engineer 1" in second["text"]                          # one person, one vote, however delivered
    vid = vote_id(f"slack:T1:{user}", f"trigger:{trigger}")
    records = read_topic(settings, settings.kafka.topics.fixes, lambda r: r.get("vote_id") == vid, want=2, timeout_s=5)
    assert records and {(r["vote_id"], r["source"], r["image_sha256"]) for r in records} == {(vid, "button", sha)}
    ingest_only(settings, served)
    row = Ledger(db).get(vid)
    assert row is not None and (row.vote.label, row.vote.source) == ("non_engineer", "button")
    assert store.get(f"images/{sha}").body == jpeg                  # a vote's image is kept
    with db.transaction() as cur:                                      # the ledger holds it once
        cur.execute("SELECT count(*) FROM votes WHERE vote_id = %s", (vid,))
        assert cur.fetchone()[0] == 1
    assert Ledger(db).tally(served, sha).get("non_engineer", 0) >= 1
    third = click_body("vote:non_engineer", value, trigger, user=user, path=path, blocks=blocks)   # after ingest
    assert http("POST", f"{gateway}/function/fix", third.encode(), signed(third))[0] == 200
    later = wait_until(lambda: (lambda got: len(got) == 3 and got)([p for p in receiver.posts if p[1] == path]), 15)
    assert later and "already counted" in json.dumps(later[2][2]["blocks"])


@pytest.mark.parametrize("attack", ["tampered", "replayed", "unsigned"])
def test_a_tampered_replayed_or_unsigned_click_is_refused(attack, unsure, gateway, served):
    _, _, sha = unsure
    body = click_body("vote:engineer", json.dumps({"sha": sha, "model": served}), uuid.uuid4().hex)
    headers = signed(body)
    if attack == "tampered":
        body = body.replace("engineer", "non_engineer", 1)
    elif attack == "replayed":
        assert http("POST", f"{gateway}/function/fix", body.encode(), headers)[0] == 200
    else:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert http("POST", f"{gateway}/function/fix", body.encode(), headers)[0] == 401


def test_a_click_that_is_not_a_vote_on_this_model_is_refused_with_a_message(gateway, receiver, served):
    path = f"/actions/{uuid.uuid4().hex}"
    body = click_body("vote:engineer", json.dumps({"sha": "0" * 64, "model": "another"}), uuid.uuid4().hex, path=path)
    assert http("POST", f"{gateway}/function/fix", body.encode(), signed(body))[0] == 200
    got = wait_until(lambda: [p for p in receiver.posts if p[1] == path], 10)
    assert got and got[0][2]["response_type"] == "ephemeral" and "not a vote on this model" in json.dumps(got[0][2])
    body = click_body("dance", "{}", uuid.uuid4().hex)
    assert http("POST", f"{gateway}/function/fix", body.encode(), signed(body))[0] == 400


def test_the_dating_apps_buttons_confirm_a_side_and_show_the_next_match(served, gateway, receiver, image_server):
    from layers.images import profile_jpeg
    user = f"U{uuid.uuid4().hex[:8]}"
    body = form("/afterdark", f"signup {image_server}/img/81.jpg Hal", user=user)
    assert wait_until(lambda: (lambda r: r[0] == 200 and "Welcome" in json.dumps(r[2]))(
        http("POST", f"{gateway}/function/afterdark", body.encode(), signed(body))), 60)
    sha = sha256_hex(profile_jpeg(to_jpeg(portrait(81)[0])))               # the stored photo, as the app keeps it
    path = f"/actions/{uuid.uuid4().hex}"
    side = click_body("side:non_engineer", json.dumps({"sha": sha}), uuid.uuid4().hex, user=user, path=path)
    assert http("POST", f"{gateway}/function/afterdark", side.encode(), signed(side))[0] == 200
    got = wait_until(lambda: [p for p in receiver.posts if p[1] == path], 10)
    assert got and "Your side is *non_engineer*" in json.dumps(got[0][2]) and got[0][2]["replace_original"]
    stale = click_body("side:engineer", json.dumps({"sha": "f" * 64}), uuid.uuid4().hex, user=user, path=path + "s")
    assert http("POST", f"{gateway}/function/afterdark", stale.encode(), signed(stale))[0] == 200
    got = wait_until(lambda: [p for p in receiver.posts if p[1] == path + "s"], 10)
    assert got and "replaced by a newer sign-up" in json.dumps(got[0][2])             # a button of an old photo
    path = f"/actions/{uuid.uuid4().hex}"
    nxt = click_body("next", "{}", uuid.uuid4().hex, user=user, path=path)
    assert http("POST", f"{gateway}/function/afterdark", nxt.encode(), signed(nxt))[0] == 200
    got = wait_until(lambda: [p for p in receiver.posts if p[1] == path], 10)
    assert got and got[0][2]["text"].startswith(("your match: ", ":tada:", ":crystal_ball:")), got[0][2]
