"""The fast tier: the registry's and DataOps' rules on the in-memory store (milliseconds, no services).
`make unit` runs this folder alone."""
from __future__ import annotations

import threading

import pytest

from layers.errors import BadInput, Conflict, Unavailable
from layers.events import ModelEvent, announce
from layers.registry import ModelMetadata, Policy, Registry
from layers.registry.dataops import DataOps
from tests.doubles import MemoryAuditLog, MemorySink, MemoryStore


def publish(reg: Registry, model: str, ok: bool = True) -> int:
    v = reg.allocate(model)
    reg.commit(ModelMetadata(model=model, version=v, parent=None, created_at="t", labels=["a", "b"], input_size=8,
                             preprocessing="", architecture={}, backbone={}, data={}, params={},
                             metrics={"holdout": {"accuracy": 0.9}}, conversion={"ok": ok}))
    return v


@pytest.fixture
def reg() -> Registry:
    return Registry(MemoryStore(), MemoryAuditLog())


def test_versions_are_allocated_once_even_by_racing_writers(reg):
    got, lock = [], threading.Lock()

    def writer():
        v = reg.allocate("m")
        with lock:
            got.append(v)
    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 9))


def test_registration_first_live_then_canary_candidate_and_retention(reg):
    versions = [publish(reg, "m") for _ in range(6)]
    for v in versions:
        reg.register("m", v, Policy(keep_recent=2))
    route = reg.control()[0].models["m"]
    assert route.live == 1 and route.mirror == [6] and route.deployed == [1, 5, 6]
    assert route.registered_through == 6


def test_dataops_edits_are_validated_conditional_and_audited(reg):
    for _ in range(3):
        reg.register("m", publish(reg, "m"))
    bad = publish(reg, "m", ok=False)
    ops = DataOps(reg, "m")
    revision = reg.control()[0].revision
    ops.canary(3, 10, "test", revision)
    assert reg.control()[0].models["m"].weights == {1: 90, 2: 0, 3: 10}
    with pytest.raises(Conflict):
        ops.promote(3, "test", revision)                            # decided on a document that moved on
    with pytest.raises(BadInput):
        ops.set_route({bad: 100}, "test")                           # failed its gates: never serves
    with pytest.raises(BadInput):
        ops.canary(1, 10, "test")                                   # the live version cannot be its own canary
    ops.rollback("test")
    assert reg.control()[0].models["m"].weights == {1: 100, 2: 0, 3: 0}
    assert [h["change"].split(":")[1].strip().split()[0] for h in ops.history()["history"][:2]] == ["rollback", "route"]


def test_the_sink_double_acknowledges_in_order_or_not_at_all():
    sink = MemorySink()
    event = lambda v: ModelEvent(event="published", model="m", version=v, created_at_ms=0)
    assert [sink.send("t", event(v))[1] for v in (1, 2, 3)] == [0, 1, 2]
    sink.down = True
    with pytest.raises(Unavailable):
        announce(sink, "m", "registered", 3)
    assert len(sink.records["t"]) == 3 and not sink.records[sink.settings.topics.model_events]


def test_a_store_that_is_down_is_unavailable_not_empty(reg):
    reg.store.down = True
    with pytest.raises(Unavailable):
        reg.versions("m")


class Refusals:
    """A RateLimiter's contract: count per (principal, action), RateLimited past the limit."""
    def __init__(self, limit: int) -> None:
        self.limit, self.hits = limit, {}

    def hit(self, principal: str, action: str = "vote") -> int:
        from layers.errors import RateLimited
        n = self.hits[(principal, action)] = self.hits.get((principal, action), 0) + 1
        if n > self.limit:
            raise RateLimited(f"too many {action}s", retry_after_s=60)
        return n


def test_refusals_never_hide_the_last_change_from_rollback_and_are_limited(reg):
    """The review's attack: 500 refused edits made `rollback` answer 'no change to roll back'. Refusals are
    rate-limited per principal, and rollback asks the log for the last APPLIED change, however many follow."""
    from layers.errors import RateLimited
    for _ in range(2):
        reg.register("m", publish(reg, "m"))
    ops = DataOps(reg, "m", refusals=Refusals(limit=600))
    ops.canary(2, 10, "admin")
    for i in range(550):
        ops.refuse("api:mallory", f"promote version={i}", "not an admin")
    ops.rollback("admin")
    assert reg.control()[0].models["m"].weights == {1: 100, 2: 0}
    limited = DataOps(reg, "m", refusals=Refusals(limit=3))
    for _ in range(3):
        limited.refuse("api:eve", "promote version=2", "not an admin")
    with pytest.raises(RateLimited):
        limited.refuse("api:eve", "promote version=2", "not an admin")
    assert sum(e.actor == "api:eve" for e in reg.trail().entries) == 3        # the 4th was not written


def test_history_pages_with_a_cursor(reg):
    reg.register("m", publish(reg, "m"))
    ops = DataOps(reg, "m")
    for i in range(7):
        ops.refuse("api:x", f"attempt {i}", "not an admin")
    seen, cursor = [], None
    while True:
        page = ops.history(limit=3, before=cursor)
        seen += [h["change"] for h in page["history"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"attempt {i}" for i in range(6, -1, -1)] + ["register m v1 (100%, first version)"]
    with pytest.raises(BadInput):
        ops.history(limit=0)


def test_a_registry_without_an_audit_log_reads_but_never_writes():
    read_only = Registry(MemoryStore())
    assert read_only.control()[0].revision == 0
    with pytest.raises(RuntimeError, match="audit log"):
        read_only.register("m", 1)


class Meddler:
    """Makes one change to the control document just before an edit's first conditional write lands, as
    another writer (a trainer registering its version, another admin) would in between."""
    def __init__(self, reg: Registry, meddle) -> None:
        self.reg, self.meddle, self.done = reg, meddle, False
        self.put = reg.store.put

    def __call__(self, key, body, **kwargs):
        if key.startswith("control/") and kwargs.get("if_match") and not self.done:
            self.done = True
            self.meddle()
        return self.put(key, body, **kwargs)


def test_an_edit_is_tried_again_when_only_another_models_route_moved(reg, monkeypatch):
    """The revision is the document's: a trainer registering another model's version between an admin's
    read and write used to make the admin's edit a 409."""
    for _ in range(2):
        reg.register("m", publish(reg, "m"))
    reg.register("other", publish(reg, "other"))
    monkeypatch.setattr(reg.store, "put", Meddler(reg, lambda: reg.register("other", publish(reg, "other"))))
    DataOps(reg, "m").canary(2, 10, "admin")
    assert reg.control()[0].models["m"].weights == {1: 90, 2: 10}


def test_an_edit_is_a_409_when_its_models_route_moved(reg, monkeypatch):
    for _ in range(3):
        reg.register("m", publish(reg, "m"))
    monkeypatch.setattr(reg.store, "put", Meddler(reg, lambda: DataOps(reg, "m").canary(3, 20, "someone else")))
    with pytest.raises(Conflict, match="route changed"):
        DataOps(reg, "m").canary(2, 10, "admin")
    assert reg.control()[0].models["m"].weights == {1: 80, 2: 0, 3: 20}       # the other admin's edit, alone
