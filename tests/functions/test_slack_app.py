"""The AI Monkey Slack app through the gateway (the ai-monkey function), against the tests' Slack receiver on
loopback, which serves url_private to the bot token only and answers the Web API like Slack: message
shortcuts on a shared image, the correction form and its vote, the Home tab, url_verification, the checks on
every new payload type, and the trainer's vote receipts."""
from __future__ import annotations

import dataclasses
import json
import re
import time
import uuid
from urllib.parse import urlencode

import pytest

from layers.edge.auth import vote_id
from layers.images import sha256_hex
from layers.ledger import Ledger, Position, Recorded, Vote
from layers.analysis.replay import Replayer
from layers.registry import Policy, image_key
from layers.registry.dataops import DataOps
from portraits.synth import portrait, to_jpeg
from tests.conftest import audited, http, wait_until
from tests.functions.conftest import BOT_TOKEN, RECEIVER_PORT
from tests.functions.test_slack import signed
from tests.training_job.conftest import copy_version, ingest_only, read_topic
from training_job.slack_news import SlackNews

RECEIVER = f"http://127.0.0.1:{RECEIVER_PORT}"


def shared_file(receiver, seed: int, uid: str) -> tuple[dict, bytes]:
    """A photo shared in a channel: the receiver serves it as url_private (bot token only)."""
    jpeg = to_jpeg(portrait(seed)[0]) + uid.encode()          # no earlier run stored it
    name = f"F{seed}-{uid}.jpg"
    receiver.files[name] = jpeg
    return {"id": f"F{seed}{uid}", "name": name, "mimetype": "image/jpeg",
            "url_private": f"{RECEIVER}/files/{name}"}, jpeg


def interaction(payload: dict) -> str:
    return urlencode({"payload": json.dumps(payload)})


def shortcut(callback: str, files: list[dict], user: str, path: str) -> str:
    return interaction({"type": "message_action", "callback_id": callback, "trigger_id": uuid.uuid4().hex,
                        "user": {"id": user, "team_id": "T1"}, "team": {"id": "T1"}, "channel": {"id": "C1"},
                        "response_url": f"{RECEIVER}{path}", "message": {"type": "message", "files": files}})


def submission(view: dict, label: str, user: str, view_id: str) -> str:
    state = {"values": {"label": {"choose": {"type": "radio_buttons", "selected_option": {"value": label}}}}}
    return interaction({"type": "view_submission", "trigger_id": uuid.uuid4().hex, "user": {"id": user, "team_id": "T1"},
                        "team": {"id": "T1"}, "view": {**view, "id": view_id, "state": state}})


def event(kind: str, user: str, event_id: str) -> str:
    return json.dumps({"type": "event_callback", "team_id": "T1", "event_id": event_id,
                       "event": {"type": kind, "user": user, "tab": "home"}})


def post(gateway, body: str, headers: dict | None = None):
    return http("POST", f"{gateway}/function/ai-monkey", body.encode(), headers if headers is not None else signed(body))


def json_signed(body: str) -> dict:
    return {**signed(body), "Content-Type": "application/json"}


def test_the_classify_shortcut_answers_in_the_channel(served, gateway, receiver, uid):
    file, jpeg = shared_file(receiver, 31, uid)
    path = f"/shortcut/{uid}"
    status, _, body = post(gateway, shortcut("classify_image", [file], "U-sc", path))
    assert status == 200 and body in ("", None, b""), body                 # acknowledged at once
    answers = wait_until(lambda: [p for p in receiver.posts if p[1] == path], timeout_s=15)
    assert answers, "no answer reached the shortcut's response_url"
    answer = answers[0][2]
    assert answer["response_type"] == "in_channel" and re.search(r", v\d+\)", answer["text"]), answer["text"]
    assert any(label in answer["text"] for label in ("engineer", "non_engineer"))
    assert (f"/files/{file['name']}", f"Bearer {BOT_TOKEN}") in receiver.file_requests    # read with the bot token


def test_the_correct_shortcut_opens_a_form_whose_submission_is_one_vote_in_the_ledger(
        gateway, receiver, settings, db, model_name, uid):
    file, jpeg = shared_file(receiver, 32, uid)
    user = f"U-corr-{uid}"
    before = len(receiver.calls("views.open"))
    status, _, _ = post(gateway, shortcut("correct_image", [file], user, f"/corr/{uid}"))
    assert status == 200
    assert wait_until(lambda: len(receiver.calls("views.open")) > before, timeout_s=10)
    opened, headers = receiver.calls("views.open")[-1]
    assert headers["Authorization"] == f"Bearer {BOT_TOKEN}" and opened["trigger_id"]
    view = opened["view"]
    assert view["callback_id"] == "correct_image"
    radio = next(b for b in view["blocks"] if b["type"] == "input")["element"]
    assert [o["value"] for o in radio["options"]] == list(settings.labels)
    wrong = submission(view, "", user, f"V-{uid}")                          # nothing chosen: shown in the form
    status, _, answer = post(gateway, wrong)
    assert status == 200 and answer["response_action"] == "errors" and answer["errors"]["label"]
    body = submission(view, "non_engineer", user, f"V-{uid}")
    status, _, answer = post(gateway, body)
    assert status == 200 and answer in ("", None, b"", {"response_action": "clear"}), answer
    again = submission(view, "non_engineer", user, f"V-{uid}")             # Slack delivers it again
    assert post(gateway, again)[0] == 200
    principal = f"slack:T1:{user}"
    vid = vote_id(principal, f"view:V-{uid}")
    votes = read_topic(settings, settings.kafka.topics.fixes, lambda r: r.get("principal") == principal, want=2, timeout_s=5)
    assert [v["vote_id"] for v in votes] == [vid]                           # one vote, however often delivered
    assert votes[0]["image_sha256"] == sha256_hex(jpeg) and votes[0]["label"] == "non_engineer"
    ingest_only(settings, model_name)
    assert Ledger(db).get(vid).vote.label == "non_engineer"                 # in the ledger
    told = wait_until(lambda: [b for b, _ in receiver.calls("chat.postMessage") if b.get("channel") == user], timeout_s=10)
    assert told and "non_engineer" in told[-1]["text"]


def test_a_file_outside_slacks_hosts_is_refused_and_the_token_never_leaves(gateway, receiver, image_server, uid):
    forged = {"id": "FX", "name": "x.jpg", "mimetype": "image/jpeg", "url_private": f"{image_server}/img/5.jpg"}
    path = f"/forged/{uid}"
    assert post(gateway, shortcut("classify_image", [forged], "U-forge", path))[0] == 200
    answers = wait_until(lambda: [p for p in receiver.posts if p[1] == path], timeout_s=10)
    assert answers and "only 127.0.0.1:8799 may serve this" in json.dumps(answers[0][2])


def test_the_home_tab_shows_the_callers_votes(served, gateway, receiver, settings, model_name, uid):
    user = f"U-home-{uid}"
    file, jpeg = shared_file(receiver, 33, uid)
    post(gateway, shortcut("correct_image", [file], user, f"/h/{uid}"))
    assert wait_until(lambda: any(o["view"]["private_metadata"].find(file["id"]) >= 0
                                  for o, _ in receiver.calls("views.open")), timeout_s=10)
    view = next(o["view"] for o, _ in receiver.calls("views.open") if file["id"] in o["view"]["private_metadata"])
    assert post(gateway, submission(view, "engineer", user, f"VH-{uid}"))[0] == 200
    assert wait_until(lambda: read_topic(settings, settings.kafka.topics.fixes,
                                         lambda r: r.get("principal") == f"slack:T1:{user}", timeout_s=1), timeout_s=10)
    ingest_only(settings, model_name)
    body = event("app_home_opened", user, f"Ev-{uid}")
    before = len(receiver.calls("views.publish"))
    assert post(gateway, body, json_signed(body))[0] == 200
    published = wait_until(lambda: receiver.calls("views.publish")[before:], timeout_s=10)
    assert published, "no Home tab was published"
    home, headers = published[-1]
    assert home["user_id"] == user and headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    text = json.dumps(home["view"])
    assert home["view"]["type"] == "home" and sha256_hex(jpeg)[:10] in text and "you said *engineer*" in text
    assert "hold-out images it never trained on" in text
    retry = event("app_home_opened", user, f"Ev-{uid}")              # Slack's retry: a new signature, same id
    time.sleep(1.1)
    assert post(gateway, retry, json_signed(retry))[0] == 200
    time.sleep(1.5)
    assert len(receiver.calls("views.publish")[before:]) == 1


def test_url_verification_answers_the_challenge_only_when_signed(gateway):
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "x"})
    status, _, answer = post(gateway, body, json_signed(body))
    assert status == 200 and answer == {"challenge": "c-123"}
    status, _, _ = post(gateway, body, {"Content-Type": "application/json"})
    assert status == 401


PAYLOADS = {
    "message_action": lambda: shortcut("classify_image", [], "U-bad", "/bad"),
    "view_submission": lambda: submission({"callback_id": "correct_image", "private_metadata": "{}"}, "engineer",
                                          "U-bad", "V-bad"),
    "event_callback": lambda: event("app_home_opened", "U-bad", f"Ev-bad-{uuid.uuid4().hex}"),
}


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
@pytest.mark.parametrize("case", ["bad-signature", "tampered", "replayed"])
def test_every_new_payload_type_is_refused_with_a_bad_signature_a_tampered_body_or_a_replay(
        kind, case, gateway, receiver):
    body = PAYLOADS[kind]()
    headers = json_signed(body) if kind == "event_callback" else signed(body)
    calls = len(receiver.posts)
    if case == "bad-signature":
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
    elif case == "tampered":
        body = body.replace("U-bad", "U-evil")
    else:
        assert post(gateway, body, headers)[0] in (200, 400)           # the first one is Slack's...
        time.sleep(1.5)                                                 # ...and its work is done
        calls = len(receiver.posts)
    status, _, answer = post(gateway, body, headers)
    assert status == 401, answer
    time.sleep(0.5)
    assert len(receiver.posts) == calls, "a refused request did some work"


def test_a_promotion_sends_each_slack_voter_one_receipt(bootstrapped, store, settings, db, receiver, uid):
    """A version whose data.json says it trained on two Slack voters' votes (and an API client's) becomes
    live: each Slack voter gets one message, once, however often the trainer looks or restarts."""
    reg, model = audited(store), f"rcpt-{uid}"
    v1 = copy_version(reg, bootstrapped, 1, model)
    ledger, votes, fixes, examples = Ledger(db), [], {}, []
    for i, who in enumerate((f"slack:T1:U-r1-{uid}", f"slack:T1:U-r2-{uid}", f"api:bench-{uid}")):
        jpeg = to_jpeg(portrait(700 + i)[0]) + uid.encode()
        sha = sha256_hex(jpeg)
        store.put(image_key(sha), jpeg)
        vote = Vote(vote_id=vote_id(who, f"k{i}"), model=model, image_sha256=sha, image_key=image_key(sha),
                    label="engineer", principal=who, source="slack" if who.startswith("slack") else "api",
                    created_at_ms=int(time.time() * 1000))
        votes.append(Recorded(vote, Position("test", 0, i)))
        fixes[sha] = {"label": "engineer", "posterior": 0.9, "votes": 1, "vote_ids": [vote.vote_id]}
        examples.append({"sha256": sha, "label": "engineer", "split": "train", "source": "fix"})
    ledger.record(votes)
    v2 = copy_version(reg, bootstrapped, 1, model, parent=v1, data={"examples": examples, "fixes": fixes,
                                                                      "ledger": {"watermark": 0}})
    reg.register(model, v1, Policy())
    reg.register(model, v2, Policy())
    DataOps(reg, model).promote(v2, "test")
    mine = dataclasses.replace(settings, model=model)
    before = len(receiver.calls("chat.postMessage"))
    news = SlackNews(mine, reg, ledger, db, Replayer(mine, store))
    assert news.receipts(model) == 2 and news.receipts(model) == 0
    assert SlackNews(mine, reg, ledger, db, Replayer(mine, store)).receipts(model) == 0    # a restarted trainer
    sent = receiver.calls("chat.postMessage")[before:]
    assert sorted(b["channel"] for b, _ in sent) == sorted([f"U-r1-{uid}", f"U-r2-{uid}"])
    assert all(f"v{v2} is live" in b["text"] and h["Authorization"] == f"Bearer {BOT_TOKEN}" for b, h in sent)
    assert all(f"v{v1} said" in json.dumps(b["blocks"]) for b, _ in sent)


def test_the_home_tab_shows_the_canarys_evidence_so_far(db, uid):
    from layers.ledger import VoterBoard
    from layers.ledger.standing import Standing
    from layers.registry import Registry
    from layers.registry.canary_state import CanaryBoard
    from layers.slack.home import AppHome
    from layers.store import BlobStore
    from layers.config import Settings
    model = f"home-{uid}"
    registry = Registry(BlobStore(Settings.from_env().s3))
    board = CanaryBoard(db)
    home = AppHome(registry, Standing(Ledger(db), registry), VoterBoard(db), board, model)
    assert "No canary is being judged" in json.dumps(home.view("slack:T1:U1"))
    board.save(model, canary=7, live=6, evidence={"action": "waiting", "n": 12, "canary_only": 5, "live_only": 1,
                                                  "lr_better": 3.2, "p_better": 0.31, "reason": "not yet decided"})
    text = json.dumps(home.view("slack:T1:U1"))
    assert "Canary v7* against live v6: 12 honest images" in text and "p = 0.31" in text
    assert "no live version yet" in text and "You have not voted yet" in text


def test_questions_to_the_crowd_keep_to_the_budget_and_never_repeat_an_image_in_a_day(store, settings, db,
                                                                                        receiver, uid):
    from layers.ledger import Consensus
    model = f"ask-{uid}"
    mine = dataclasses.replace(settings, model=model,
                               slack=dataclasses.replace(settings.slack, questions_per_hour=2))
    assert mine.slack.review_channel == "C-REVIEW"
    shas = [sha256_hex(f"{uid}-{i}".encode()) for i in range(3)]
    agreed = Consensus(quarantined={sha: {"label": "engineer", "votes": 3 - i, "reason": "tied"}
                                    for i, sha in enumerate(shas)})
    registry = audited(store)
    before = len(receiver.calls("chat.postMessage"))
    news = SlackNews(mine, registry, Ledger(db), db, Replayer(mine, store))
    t0 = time.time()
    assert news.questions(model, lambda: agreed, [], now=t0) == 2                  # the hour's budget
    assert news.questions(model, lambda: agreed, [], now=t0 + 1) == 0              # at most once a minute
    assert news.questions(model, lambda: agreed, [shas[0]], now=t0 + 61) == 0      # the budget is spent
    again = SlackNews(mine, registry, Ledger(db), db, Replayer(mine, store))   # another trainer
    assert again.questions(model, lambda: agreed, [], now=t0 + 120) == 0
    posted = [b for b, _ in receiver.calls("chat.postMessage")[before:] if "Which is it?" in json.dumps(b)]
    assert len(posted) == 2 and all(b["channel"] == "C-REVIEW" for b in posted)
    asked = [next(e["value"] for blk in b["blocks"] if blk["type"] == "actions" for e in blk["elements"]) for b in posted]
    assert [json.loads(v)["sha"] for v in asked] == shas[:2]               # the most voted first, each once
