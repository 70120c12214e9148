"""Slack After Dark through the gateway, with real PostgreSQL, MinIO, Kafka and the served model: sign-up by
JSON and by Slack, the ensemble against its versions, matching until nobody is left, concurrent sign-ups,
deletion, and usage and errors."""
from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from layers.images import preprocess
from layers.registry import Registry, image_key
from layers.serving.loader import Loader
from tests.conftest import http, wait_until
from tests.functions.test_slack import assert_valid_blocks, form, signed
from portraits.synth import portrait, to_jpeg

JPEG = {"Content-Type": "image/jpeg"}


def signup(gateway, user: str, jpeg: bytes, name: str | None = None):
    q = f"?user={user}" + (f"&name={name}" if name else "")
    return http("POST", f"{gateway}/function/afterdark/signup{q}", jpeg, JPEG)


def call(gateway, method: str, verb: str, user: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    return http(method, f"{gateway}/function/afterdark/{verb}?user={user}", data, {"Content-Type": "application/json"})


@pytest.fixture(scope="module")
def ready(served, gateway):
    """The afterdark function has loaded the model (it polls the control document like predict)."""
    jpeg = to_jpeg(portrait(3)[0])
    assert wait_until(lambda: signup(gateway, "warmup", jpeg)[0] == 201, timeout_s=60)
    return served


def test_json_signup_scores_with_the_average_of_two_versions(ready, gateway, store, tmp_path):
    user = f"ada-{uuid.uuid4().hex[:6]}"
    status, _, body = signup(gateway, user, to_jpeg(portrait(21)[0]), "Ada")
    assert status == 201, body
    profile, ensemble = body["profile"], body["ensemble"]
    assert profile["principal"] == f"api:local:{user}" and profile["name"] == "Ada"
    assert ensemble["versions"] == [1, 2] and ensemble["weights"] == {"1": 0.5, "2": 0.5}
    link = profile["photo_url"]                        # a signed media link to the stored photo
    assert link and "/function/media/profiles/" in link
    status, headers, jpeg = http("GET", link, auth=False)
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    loader = Loader(Registry(store), str(tmp_path))
    x = preprocess(jpeg, 96)[None]
    for v in (1, 2):                                   # each version's own answer, as served
        mine = loader.load(ready, v).predict(x)[0]
        assert abs(ensemble["each"][str(v)]["engineer"] - mine[0]) < 1e-5
    mean = (ensemble["each"]["1"]["engineer"] + ensemble["each"]["2"]["engineer"]) / 2
    assert abs(ensemble["average"]["engineer"] - mean) < 1e-5 and abs(profile["score_engineer"] - mean) < 1e-5
    assert profile["label"] == max(ensemble["average"], key=ensemble["average"].get)
    status, _, me = call(gateway, "GET", "me", user)
    assert status == 200 and me["versions"] == [1, 2] and me["label"] == profile["label"]


def test_slack_signup_then_match_shows_a_card_of_the_other_side(ready, gateway, image_server, receiver):
    user = f"U{uuid.uuid4().hex[:8]}"
    # some people to meet, one confirmed on each side: Fay meets someone whatever the model makes of her
    # (which side each portrait falls on is the test model's call, not the test's)
    for seed, name, side in ((31, "Cy", "engineer"), (32, "Di", "non_engineer"), (33, "Ed", None)):
        assert signup(gateway, f"demo-{name}-{user}", to_jpeg(portrait(seed)[0]), name)[0] == 201
        if side:
            assert call(gateway, "POST", "confirm", f"demo-{name}-{user}", {"label": side})[0] == 200
    body = form("/afterdark", f"signup {image_server}/img/34.jpg Fay", user=user)
    status, _, reply = http("POST", f"{gateway}/function/afterdark", body.encode(), signed(body))
    assert status == 200, reply
    if "Working" in reply["text"]:
        reply = wait_until(lambda: [p for p in receiver.posts if p[2].get("text", "").startswith("welcome")], 20)[-1][2]
    assert "Welcome, Fay" in json.dumps(reply["blocks"]) and reply["response_type"] == "ephemeral"
    assert_valid_blocks(reply)
    body = form("/afterdark", "match", user=user)
    status, _, card = http("POST", f"{gateway}/function/afterdark", body.encode(), signed(body))
    assert status == 200 and card["text"].startswith("your match: "), card
    assert "opposites attract" in json.dumps(card["blocks"]) and "Next match" in json.dumps(card["blocks"])
    assert_valid_blocks(card)


def test_slack_signup_without_a_url_uses_the_slack_profile_photo(ready, gateway, receiver):
    user = f"U{uuid.uuid4().hex[:8]}"
    receiver.avatars[user] = to_jpeg(portrait(35)[0])
    body = form("/afterdark", "signup Hal", user=user)
    status, _, reply = http("POST", f"{gateway}/function/afterdark", body.encode(), signed(body))
    assert status == 200, reply
    if "Working" in reply["text"]:
        reply = wait_until(lambda: [p for p in receiver.posts if p[2].get("text", "").startswith("welcome")], 20)[-1][2]
    assert "Welcome, Hal" in json.dumps(reply["blocks"]), reply
    asked = [(b, h) for b, h in receiver.calls("users.profile.get") if b.get("user") == user]
    assert asked and asked[0][1]["Authorization"] == "Bearer xoxb-test"             # scope users.profile:read
    assert (f"/avatars/{user}.jpg", None) in receiver.file_requests                  # no token to the photo host
    nobody = f"U{uuid.uuid4().hex[:8]}"                                               # no photo: a clear answer
    body = form("/afterdark", "signup", user=nobody)
    status, _, reply = http("POST", f"{gateway}/function/afterdark", body.encode(), signed(body))
    assert status == 200 and "did not work" in json.dumps(reply) or "Working" in reply["text"], reply


def test_match_never_repeats_anyone_until_nobody_is_left(ready, gateway, db):
    user = f"gus-{uuid.uuid4().hex[:6]}"
    assert signup(gateway, user, to_jpeg(portrait(41)[0]), "Gus")[0] == 201
    with db.transaction() as cur:      # the test database keeps the profiles of earlier sessions too
        cur.execute("SELECT count(*) FROM profiles")
        everyone = cur.fetchone()[0]
    seen = []
    for _ in range(everyone + 1):
        status, _, body = call(gateway, "GET", "match", user)
        assert status == 200, body
        if body["match"] is None:
            assert body["why"] in ("nobody-left", "nobody-opposite")
            break
        assert body["match"]["label"] != body["you"]["label"] and body["match"]["id"] != body["you"]["id"]
        assert "principal" not in body["match"]                  # another user's id is opaque: no Slack user id
        seen.append(body["match"]["id"])
        assert 0 <= body["match"]["affinity"] <= 1
        if len(seen) == 1 and body["match"]["photo_url"]:        # their photo's link works for minutes, not days
            exp = int(body["match"]["photo_url"].split("exp=")[1].split("&")[0])
            assert 0 < exp - time.time() <= 600 + 5
    assert len(seen) == len(set(seen)) and body["match"] is None


def test_eight_concurrent_sign_ups_lose_and_duplicate_nothing(ready, gateway, db):
    run = uuid.uuid4().hex[:6]
    users = [f"c{i}-{run}" for i in range(8)]
    results = []

    def go(u, seed):
        results.append(signup(gateway, u, to_jpeg(portrait(seed)[0]))[0])
    threads = [threading.Thread(target=go, args=(u, 50 + i)) for i, u in enumerate(users)]
    threads += [threading.Thread(target=go, args=(users[0], 60))]          # the same person twice at once
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(201) == 9, results
    with db.transaction() as cur:
        cur.execute("SELECT principal, count(*) FROM profiles WHERE principal LIKE %s GROUP BY principal",
                    (f"api:local:c%-{run}",))
        rows = dict(cur.fetchall())
    assert rows == {f"api:local:{u}": 1 for u in users}


def test_delete_removes_the_profile_its_matches_and_photo_and_nothing_else(ready, gateway, store, db):
    run = uuid.uuid4().hex[:6]
    x, y, z = f"x-{run}", f"y-{run}", f"z-{run}"
    same = to_jpeg(portrait(71)[0])
    assert signup(gateway, x, same)[0] == 201
    assert signup(gateway, y, same)[0] == 201                              # the same photo, another person
    assert signup(gateway, z, to_jpeg(portrait(72)[0]))[0] == 201
    me = call(gateway, "GET", "me", x)[2]
    key = me["photo_url"].split("/function/media/")[1].split("?")[0]
    sha = key.removeprefix("profiles/").removesuffix(".jpg")
    status, _, confirmed = call(gateway, "POST", "confirm", x, {"label": me["label"]})
    assert status == 200 and confirmed["profile"]["confirmed"] and confirmed["vote"]["source"] == "button"
    assert store.exists(image_key(sha))                                    # the vote's copy of the photo
    call(gateway, "GET", "match", x)
    call(gateway, "GET", "match", z)
    status, _, gone = call(gateway, "DELETE", "me", x)
    assert status == 200 and gone == {"principal": f"api:local:{x}", "profile": True,
                                      "photo": "kept: another profile uses it", "vote_copy": "kept: it is a vote"}
    with db.transaction() as cur:
        cur.execute("SELECT count(*) FROM matches_shown WHERE viewer = %s OR shown = %s", (f"api:local:{x}",) * 2)
        assert cur.fetchone()[0] == 0
    assert call(gateway, "GET", "me", x)[0] == 404 and store.exists(key)
    assert call(gateway, "GET", "me", z)[0] == 200                          # nothing else
    assert call(gateway, "DELETE", "me", y)[2]["photo"] == "deleted" and not store.exists(key)
    assert store.exists(image_key(sha))                                    # a vote is never deleted
    assert call(gateway, "DELETE", "me", y)[2]["profile"] is False


@pytest.mark.parametrize("how, status, code", [
    ("no-token", 401, "unauthorized"), ("not-an-image", 415, "not_an_image"), ("bad-name", 400, "bad_input"),
    ("no-profile", 404, "not_found"), ("bad-verb", 404, "not_found"), ("bad-side", 400, "bad_input"),
])
def test_errors(how, status, code, ready, gateway):
    user = f"err-{uuid.uuid4().hex[:6]}"
    if how == "no-token":
        got = http("POST", f"{gateway}/function/afterdark/signup", to_jpeg(portrait(1)[0]), JPEG, auth=False)
    elif how == "not-an-image":
        got = signup(gateway, user, b"hello")
    elif how == "bad-name":
        got = signup(gateway, user, to_jpeg(portrait(1)[0]), "<!channel>")
    elif how == "no-profile":
        got = call(gateway, "GET", "match", user)
    elif how == "bad-verb":
        got = call(gateway, "GET", "dance", user)
    else:
        signup(gateway, user, to_jpeg(portrait(1)[0]))
        got = call(gateway, "POST", "confirm", user, {"label": "astronaut"})
    assert got[0] == status and got[2]["error"] == code, got


def test_slack_usage_and_errors_are_ephemeral_help(ready, gateway):
    for text, words in (("", "Usage"), ("dance", "Usage"), ("me", "no profile")):
        body = form("/afterdark", text, user=f"U{uuid.uuid4().hex[:8]}")
        status, _, reply = http("POST", f"{gateway}/function/afterdark", body.encode(), signed(body))
        assert status == 200 and reply["response_type"] == "ephemeral" and words in json.dumps(reply), (text, reply)


def test_sign_ups_are_rate_limited_per_person(ready, gateway):
    """dev/test.sh: 20 per 60 s; past it, 429 with Retry-After, and nothing is written."""
    user = f"rl-{uuid.uuid4().hex[:6]}"
    jpeg = to_jpeg(portrait(90)[0])
    statuses = [signup(gateway, user, jpeg)[0] for _ in range(21)]
    assert statuses[:20] == [201] * 20 and statuses[20] == 429, statuses
    status, headers, body = signup(gateway, user, jpeg)
    assert status == 429 and body["error"] == "rate_limited" and int(headers["Retry-After"]) >= 1


def test_without_delegate_a_client_cannot_act_for_another_user(gateway):
    """A token that does not vouch for its users is one user in the dating app too: naming anyone else, to
    read or delete their profile, is refused."""
    import os
    viewer = {"Authorization": f"Bearer {os.environ['API_TOKEN_VIEWER']}"}
    for method, verb in (("GET", "me"), ("DELETE", "me"), ("GET", "match")):
        status, _, body = http(method, f"{gateway}/function/afterdark/{verb}?user=someone-else", None, viewer)
        assert status == 403 and "delegate" in body["message"], (verb, body)
