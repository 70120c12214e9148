"""Two trainers for one model: one is active, the other a standby. When the active one is SIGKILLed just after
publishing a version, the standby takes over within 10 s: no vote lost, no version published twice, and the
half-finished version registered (the real CLI, Kafka, MinIO and PostgreSQL)."""
from __future__ import annotations

import time

from layers.events import EventSink
from layers.ledger import Ledger
from layers.registry import Registry
from tests.conftest import wait_until
from tests.training_job.conftest import consume_args, start_trainer
from tests.training_job.test_ledger import cast, holding, topic  # noqa: F401  (the fixture)


def test_a_standby_takes_over_within_10_s_and_loses_or_duplicates_nothing(own_model, store, settings, db, topic,
                                                                          uid, tmp_path):
    reg = Registry(store)
    args = consume_args(own_model, topic, "--min-votes", "3", "--max-wait-s", "1000000")
    logs = {name: (tmp_path / f"{name}.log") for name in ("a", "b")}
    text = lambda name: logs[name].read_text()
    with logs["a"].open("w") as la, logs["b"].open("w") as lb:
        a = start_trainer(args, la, TRAINER_FAILPOINT="after-publish")
        assert wait_until(lambda: "active trainer" in text("a"), 60), text("a")[-2000:]
        b = start_trainer(args, lb)
        try:
            assert wait_until(lambda: "standby for" in text("b"), 60), text("b")[-2000:]
            assert "active trainer" not in text("b")                        # exactly one is active
            before = reg.versions(own_model)
            sink = EventSink(settings.kafka)
            votes = [cast(store, sink, topic, own_model, 64_000 + i, "non_engineer", f"api:t:{uid}{i}") for i in range(3)]
            assert a.wait(timeout=180) == -9 and "[failpoint] after-publish" in text("a"), text("a")[-3000:]
            died = time.time()
            assert wait_until(lambda: "active trainer" in text("b"), 15), text("b")[-3000:]
            assert time.time() - died < 10                                  # the standby took over within 10 s
            new = [v for v in reg.versions(own_model) if v not in before]
            assert len(new) == 1, new                                       # what A published, once
            assert wait_until(lambda: new[0] in reg.control()[0].models[own_model].deployed, 30), text("b")[-3000:]
            time.sleep(3)                                                   # B had time to train again: it must not
            assert [v for v in reg.versions(own_model) if v not in before] == new, text("b")[-3000:]
            ledger = Ledger(db)
            assert all(ledger.get(v.vote_id) is not None for v in votes)    # no vote lost
            assert all(holding(store, own_model, v.image_sha256) == new for v in votes)
        finally:
            b.terminate()
            b.wait(timeout=30)
            if a.poll() is None:
                a.kill()
