"""/fix through the gateway: who may vote and as whom, durable before acknowledged, one vote per request,
changed votes, the rate limit, and a clear 400 for unknown classes. Votes reach the ledger through the real
trainer (`consume` with training held off), against real MinIO, Kafka and PostgreSQL."""
from __future__ import annotations

import base64
import json
import uuid

import pytest

from layers.images import sha256_hex
from layers.ledger import Ledger
from portraits.synth import portrait, to_jpeg
from tests.conftest import http
from tests.training_job.conftest import ingest_only, read_topic, read_topic_to_end


def post_fix(gateway, doc: dict, headers: dict | None = None, **kw):
    return http("POST", f"{gateway}/function/fix", json.dumps(doc).encode(),
                {"Content-Type": "application/json", **(headers or {})}, **kw)


def b64(jpeg: bytes) -> str:
    return base64.b64encode(jpeg).decode()


def test_an_acknowledged_vote_is_in_kafka_and_in_s3(gateway, store, settings):
    jpeg = to_jpeg(portrait(1234)[0])
    user = f"U-{uuid.uuid4().hex[:6]}"
    status, _, body = post_fix(gateway, {"image_b64": b64(jpeg), "label": "engineer", "user": user})
    assert status == 201, body
    assert body["image_sha256"] == sha256_hex(jpeg) and body["label"] == "engineer" and not body["duplicate"]
    assert body["principal"] == f"api:local:{user}" and body["source"] == "api"
    assert store.get(body["image_key"]).body == jpeg
    records = read_topic(settings, settings.kafka.topics.fixes, lambda r: r["vote_id"] == body["vote_id"])
    assert len(records) == 1 and records[0]["principal"] == f"api:local:{user}"
    assert records[0]["schema"] == 2 and records[0]["image_key"] == body["image_key"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic YTpi"},
                                     {"Authorization": "Bearer "}])
def test_no_vote_without_a_valid_token(headers, gateway, store, settings):
    jpeg = to_jpeg(portrait(1240)[0])
    user = f"U-{uuid.uuid4().hex[:6]}"
    status, resp_headers, body = post_fix(gateway, {"image_b64": b64(jpeg), "label": "engineer", "user": user},
                                          headers, auth=False)
    assert status == 401 and body["error"] == "unauthorized", body
    assert {k.lower(): v for k, v in resp_headers.items()}["www-authenticate"].startswith("Bearer")
    assert not store.exists(f"images/{sha256_hex(jpeg)}")
    assert not read_topic_to_end(settings, settings.kafka.topics.fixes, lambda r: user in r.get("principal", ""))


@pytest.mark.parametrize("user", ["slack:T1:U1", "U1:admin", "../U1", "U 1", "x" * 65])
def test_an_api_client_cannot_vote_as_anyone_else(user, gateway, store):
    """The caller names only a sub-user of its own client; a Slack principal (or anything with ':') is refused."""
    jpeg = to_jpeg(portrait(1241)[0])
    status, _, body = post_fix(gateway, {"image_b64": b64(jpeg), "label": "engineer", "user": user})
    assert status == 400 and body["error"] == "bad_input" and "user" in body["message"], body
    assert not store.exists(f"images/{sha256_hex(jpeg)}")


def test_a_retried_request_is_one_vote_and_a_changed_vote_counts(gateway, settings, db, model_name, uid):
    """A -> B -> A by one user is three votes, and the latest (A) counts; a retry with the same
    Idempotency-Key is one vote, also when it reaches Kafka twice; the same key for another vote is a 409."""
    jpeg = to_jpeg(portrait(1250)[0])
    sha = sha256_hex(jpeg)
    user = f"U-{uid}"
    ids = []
    for i, label in enumerate(["engineer", "non_engineer", "engineer"]):
        status, _, body = post_fix(gateway, {"image_b64": b64(jpeg), "label": label, "user": user},
                                   {"Idempotency-Key": f"{uid}-{i}"})
        assert status == 201, body
        ids.append(body["vote_id"])
    status, _, retry = post_fix(gateway, {"image_b64": b64(jpeg), "label": "engineer", "user": user},
                                {"Idempotency-Key": f"{uid}-2"})
    assert status == 200 and retry["duplicate"] and retry["vote_id"] == ids[2]   # bound at the ack, not at ingestion
    assert len(set(ids)) == 3
    ingest_only(settings, model_name)
    ledger = Ledger(db)
    assert all(ledger.get(v) is not None for v in ids)
    assert ledger.tally(model_name, sha) == {"engineer": 1}        # one principal, latest vote
    status, _, again = post_fix(gateway, {"image_b64": b64(jpeg), "label": "engineer", "user": user},
                                {"Idempotency-Key": f"{uid}-2"})
    assert status == 200 and again["duplicate"] and again["vote_id"] == ids[2]
    status, _, conflict = post_fix(gateway, {"image_b64": b64(jpeg), "label": "non_engineer", "user": user},
                                   {"Idempotency-Key": f"{uid}-2"})
    assert status == 409 and conflict["error"] == "conflict", conflict
    assert ledger.tally(model_name, sha) == {"engineer": 1}


def test_one_key_for_two_votes_at_once_records_one_and_refuses_the_other(gateway, settings, db, model_name, uid):
    """The key is bound when the vote is acknowledged: two requests at the same moment with one key and
    different images get one 201 and one 409, and the ledger holds the acknowledged one. (It used to answer
    201 to both, and the trainer dropped the second as 'already there'.)"""
    from concurrent.futures import ThreadPoolExecutor
    jpegs = [to_jpeg(portrait(1280 + i)[0]) for i in range(2)]
    user, key = f"U-{uid}", f"race-{uid}"
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda j: post_fix(gateway, {"image_b64": b64(j), "label": "engineer", "user": user},
                                                   {"Idempotency-Key": key}), jpegs))
    assert sorted(a[0] for a in answers) == [201, 409], [a[2] for a in answers]
    won = next(a[2] for a in answers if a[0] == 201)
    assert next(a[2] for a in answers if a[0] == 409)["error"] == "conflict"
    # the same request again is the original receipt; the other image with the key is still refused
    again = post_fix(gateway, {"image_b64": b64(next(j for j in jpegs if sha256_hex(j) == won["image_sha256"])),
                               "label": "engineer", "user": user}, {"Idempotency-Key": key})
    assert again[0] == 200 and again[2]["duplicate"] and again[2]["vote_id"] == won["vote_id"]
    ingest_only(settings, model_name)
    assert Ledger(db).get(won["vote_id"]).vote.image_sha256 == won["image_sha256"]


def test_concurrent_writers_with_retries_record_each_vote_once(gateway, settings, db, model_name, uid):
    """4 writers send the same 5 people's votes on one image, each request with that person's Idempotency-Key
    (as retrying clients do): the ledger holds exactly 5 votes."""
    import threading
    jpeg = to_jpeg(portrait(1270)[0])
    users = [f"U-{uid}-{i}" for i in range(5)]
    statuses: list[int] = []

    def writer():
        for user in users:
            statuses.append(post_fix(gateway, {"image_b64": b64(jpeg), "label": "non_engineer", "user": user},
                                     {"Idempotency-Key": f"vote-{user}"})[0])

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(statuses) == 20 and set(statuses) <= {200, 201}
    ingest_only(settings, model_name)
    with db.transaction() as cur:
        cur.execute("SELECT count(*), count(DISTINCT vote_id) FROM votes WHERE principal = ANY(%s)",
                    ([f"api:local:{u}" for u in users],))
        assert cur.fetchone() == (5, 5)
    assert Ledger(db).tally(model_name, sha256_hex(jpeg)) == {"non_engineer": 5}


def test_votes_are_rate_limited_per_principal(gateway, store):
    import os
    jpeg = to_jpeg(portrait(1260)[0])
    user = f"U-{uuid.uuid4().hex[:6]}"
    limit = int(os.environ.get("VOTE_RATE_LIMIT", "20"))
    statuses = [post_fix(gateway, {"image_b64": b64(jpeg), "label": "engineer", "user": user})[0] for _ in range(limit)]
    assert statuses == [201] * limit
    status, headers, body = post_fix(gateway, {"image_b64": b64(jpeg), "label": "engineer", "user": user})
    assert status == 429 and body["error"] == "rate_limited", body
    assert 1 <= int(headers["Retry-After"]) <= 60
    other = post_fix(gateway, {"image_b64": b64(jpeg), "label": "engineer", "user": user + "-other"})
    assert other[0] == 201                                          # another principal is not affected


def test_raw_bytes_with_query_label_and_url_input(gateway, store, image_server, uid):
    jpeg = to_jpeg(portrait(4321)[0])
    status, _, body = http("POST", f"{gateway}/function/fix?label=non_engineer&user=U-raw-{uid}", jpeg, {"Content-Type": "image/jpeg"})
    assert status == 201 and body["label"] == "non_engineer"
    status, _, body = post_fix(gateway, {"image_url": f"{image_server}/img/77.jpg", "label": "engineer", "user": f"U-url-{uid}"})
    assert status == 201 and store.exists(body["image_key"])
    status, _, body = http("POST", f"{gateway}/function/fix?label=engineer", jpeg, {"Content-Type": "image/jpeg"})
    assert status == 201 and body["principal"] == "api:local"       # no sub-user: the client itself votes


def test_unknown_class_is_400_and_lists_the_valid_ones(gateway):
    status, _, body = post_fix(gateway, {"image_b64": base64.b64encode(b"x").decode(), "label": "astronaut", "user": "U"})
    assert status == 400
    assert body["error"] == "bad_input" and body["valid_labels"] == ["engineer", "non_engineer"]
    assert "engineer" in body["message"]


def test_a_client_without_delegate_is_one_voter_whatever_users_it_names(gateway, store):
    """The attack from the review: 30 votes as user=a hit 429, then user=b was accepted. Without the delegate
    scope a user claim is refused, and the client's votes all count as one principal, with one rate limit."""
    import os
    viewer = {"Authorization": f"Bearer {os.environ['API_TOKEN_VIEWER']}"}       # scopes predict, vote
    jpeg = to_jpeg(portrait(1290)[0])
    for user in ("a", "b"):
        status, _, body = post_fix(gateway, {"image_b64": b64(jpeg), "label": "engineer", "user": user}, viewer)
        assert status == 403 and body["error"] == "forbidden" and "delegate" in body["message"], body
    status, _, body = post_fix(gateway, {"image_b64": b64(jpeg), "label": "engineer"}, viewer)
    assert status == 201 and body["principal"] == "api:viewer", body
    status, _, body = http("POST", f"{gateway}/function/fix?label=engineer", jpeg,
                           {"Content-Type": "image/jpeg", "X-User-Id": "c", **viewer})
    assert status == 403, body


def test_a_delegating_client_has_a_limit_over_all_its_users(db, uid):
    """Per principal and, on top, per API client: a delegating client cannot outrun its own limit by naming
    more users. Against the real rate-limit table (the recorder's admission step, before any work)."""
    from layers.config import Settings
    from layers.errors import RateLimited
    from layers.ledger.recorder import VoteRecorder
    from layers.ledger.limits import RateLimiter
    recorder = VoteRecorder(None, None, None, RateLimiter(db, 5, 60), Settings(),
                            client_limiter=RateLimiter(db, 3, 60))
    client = f"api:bot-{uid}"
    for user in ("a", "b", "c"):
        assert recorder.admit(f"{client}:{user}", "engineer", client=client) == "engineer"
    with pytest.raises(RateLimited):
        recorder.admit(f"{client}:d", "engineer", client=client)
    assert recorder.admit(f"api:other-{uid}", "engineer", client=f"api:other-{uid}") == "engineer"
