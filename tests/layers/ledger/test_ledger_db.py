"""The ledger, the training runs and the guards against a real PostgreSQL (the test database), and the
database seam's promise: a database that is down is a quick Unavailable, never a hang."""
from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from layers.config import DbSettings
from layers.db import Database
from layers.errors import RateLimited, Unavailable
from layers.ledger.limits import RateLimiter
from layers.slack.replay_guard import ReplayGuard
from layers.ledger import Ledger, Position, Recorded, TrainingRuns, Vote, decide


def vote(model: str, sha: str, label: str, principal: str, vid: str | None = None, offset: int = 0) -> Recorded:
    return Recorded(Vote(vote_id=vid or uuid.uuid4().hex, model=model, image_sha256=sha, image_key=f"images/{sha}",
                         label=label, principal=principal, source="api", created_at_ms=int(time.time() * 1000)),
                    Position("t", 0, offset))


def test_a_database_that_is_down_is_unavailable_at_once():
    for url in ("postgresql://u:p@127.0.0.1:1/none", None):
        db = Database(DbSettings(url=url, wait_s=1.0, connect_timeout_s=1))
        t0 = time.monotonic()
        with pytest.raises(Unavailable):
            with db.transaction() as cur:
                cur.execute("SELECT 1")
        assert time.monotonic() - t0 < 5
        assert not db.ping()
        db.close()


def test_migrations_are_idempotent(db):
    assert db.migrate() == []
    with db.transaction() as cur:
        cur.execute("SELECT max(version) FROM schema_migrations")
        assert cur.fetchone()[0] >= 1


def test_an_idempotency_key_is_bound_once_even_under_a_race(db, uid):
    ledger, answers = Ledger(db), []
    barrier = threading.Barrier(8)

    def bind(i: int):
        barrier.wait()
        answers.append((i, ledger.bind_key(f"k-{uid}", f"fp-{i % 2}")))

    threads = [threading.Thread(target=bind, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, b in answers if b.state == "new"]
    assert len(winners) == 1
    same = [b.state for i, b in answers if i % 2 == winners[0] % 2 and i != winners[0]]
    other = [b.state for i, b in answers if i % 2 != winners[0] % 2]
    assert set(same) == {"same"} and set(other) == {"conflict"} and len(same) + len(other) == 7
    assert not ledger.bind_key(f"k-{uid}", f"fp-{winners[0] % 2}").sent
    ledger.key_sent(f"k-{uid}")
    assert ledger.bind_key(f"k-{uid}", f"fp-{winners[0] % 2}").sent


def test_concurrent_writers_record_each_vote_once(db, uid):
    model = f"m-{uid}"
    votes = [vote(model, f"{i % 5:064x}", "engineer" if i % 3 else "non_engineer", f"api:t:{i}", offset=i)
             for i in range(40)]
    ledger, inserted, errors = Ledger(db), [], []

    def writer(seed: int):
        mine = votes[:]
        random.Random(seed).shuffle(mine)
        try:
            for chunk in range(0, len(mine), 7):              # retried batches, overlapping the others
                inserted.append(ledger.record(mine[chunk:chunk + 7]))
        except Exception as err:                              # a deadlock or a lost insert fails the test
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sum(inserted) == 40
    snap = ledger.snapshot(model)
    assert snap.votes == 40 and len(snap.latest) == 40
    agreed = decide(snap.latest)
    assert sum(sum(x["votes"].values()) for x in [*agreed.accepted.values(), *agreed.quarantined.values()]) == 40


def test_each_principals_latest_vote_counts(db, uid):
    model, sha = f"m-{uid}", "ab" * 32
    ledger = Ledger(db)
    ledger.record([vote(model, sha, "engineer", "slack:T:U1")])
    ledger.record([vote(model, sha, "non_engineer", "slack:T:U1")])
    ledger.record([vote(model, sha, "engineer", "slack:T:U1"), vote(model, sha, "non_engineer", "slack:T:U2")])
    assert ledger.tally(model, sha) == {"engineer": 1, "non_engineer": 1}          # A -> B -> A, and U2's B
    snap = ledger.snapshot(model)
    assert snap.votes == 4 and snap.watermark == ledger.watermark(model)
    assert sha in decide(snap.latest).quarantined
    n, age = ledger.pending(model, 0)
    assert n == 4 and age is not None and age >= 0
    assert ledger.pending(model, snap.watermark) == (0, None)


def test_training_runs_record_stages_and_the_trained_watermark(db, uid):
    model, runs = f"m-{uid}", TrainingRuns(db)
    assert runs.trained_watermark(model) == 0
    refused = runs.start(model, "votes", watermark=5, votes=5, parent=1)
    runs.finish(refused, "refused", "hold-out accuracy 0.7 < minimum 0.75")
    assert runs.trained_watermark(model) == 0                                    # a refusal trains nothing
    ok = runs.start(model, "retry", watermark=7, votes=7, parent=1)
    runs.advance(ok, "published", version=3)
    assert [r.run_id for r in runs.unfinished(model)] == [ok]
    runs.advance(ok, "registered")
    runs.finish(ok, "published", version=3)
    run = runs.get(ok)
    assert (run.stage, run.outcome, run.version, run.parent) == ("announced", "published", 3, 1)
    assert runs.trained_watermark(model) == 7 and runs.unfinished(model) == []


def test_the_rate_limit_holds_across_limiters(db, uid):
    a, b = RateLimiter(db, limit=3, window_s=60), RateLimiter(db, limit=3, window_s=60)   # two replicas
    principal = f"api:t:{uid}"
    assert [a.hit(principal), b.hit(principal), a.hit(principal)] == [1, 2, 3]
    with pytest.raises(RateLimited) as err:
        b.hit(principal)
    assert 1 <= err.value.retry_after_s <= 60 and err.value.headers["Retry-After"] == str(err.value.retry_after_s)
    assert a.hit(principal + "-other") == 1


def test_the_rate_limit_holds_over_any_window_not_a_clock_fixed_one(db, uid):
    """Limit 3 per 2 s: however the requests fall around the clock's seconds, a 4th within 2 s of the 1st is
    refused, and it is accepted once the 1st has left the window. (Windows fixed to the clock let a burst that
    straddled a window's end through at twice the limit.)"""
    limiter, principal = RateLimiter(db, limit=3, window_s=2), f"api:t:{uid}"
    first = time.monotonic()
    assert limiter.hit(principal) == 1
    time.sleep(1.2)
    assert [limiter.hit(principal), limiter.hit(principal)] == [2, 3]
    with pytest.raises(RateLimited) as err:
        limiter.hit(principal)                               # 3 in the last 2 s, whatever the clock's seconds
    assert err.value.retry_after_s == 1                      # the 1st leaves the window within a second
    time.sleep(max(0.0, first + 2.1 - time.monotonic()))
    assert limiter.hit(principal) == 3                       # the 1st has left: 2 remain, and this one
    with pytest.raises(RateLimited):
        limiter.hit(principal)


def test_racing_requests_of_one_principal_get_exactly_the_limit(db, uid):
    """12 requests at once, on 4 replicas' limiters, limit 5: exactly 5 are accepted (each takes its turn on the
    principal's row), and the log holds 5 times."""
    limiters = [RateLimiter(db, limit=5, window_s=60) for _ in range(4)]
    principal = f"api:race:{uid}"

    def request(i: int) -> str:
        try:
            limiters[i % 4].hit(principal)
            return "accepted"
        except RateLimited:
            return "refused"
    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(request, range(12)))
    assert sorted(outcomes) == ["accepted"] * 5 + ["refused"] * 7
    with db.transaction() as cur:
        cur.execute("SELECT cardinality(hits) FROM rate_log WHERE principal = %s AND action = 'vote'", (principal,))
        assert cur.fetchone()[0] == 5


def test_a_slack_signature_is_accepted_once_across_replicas(db, uid):
    one, two = ReplayGuard(db), ReplayGuard(db)
    key = f"{int(time.time())}:v0={uid}"
    assert one.first_time(key) and not two.first_time(key) and not one.first_time(key)
