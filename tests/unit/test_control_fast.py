"""The fast tier: the registry's and DataOps' rules on the in-memory store (milliseconds, no services).
`make unit` runs this folder alone."""
from __future__ import annotations

import threading

import pytest

from layers.errors import BadInput, Conflict, Unavailable
from layers.events import ModelEvent, announce
from layers.registry import ModelMetadata, Policy, Registry
from layers.registry.dataops import DataOps
from tests.doubles import MemorySink, MemoryStore


def publish(reg: Registry, model: str, ok: bool = True) -> int:
    v = reg.allocate(model)
    reg.commit(ModelMetadata(model=model, version=v, parent=None, created_at="t", labels=["a", "b"], input_size=8,
                             preprocessing="", architecture={}, backbone={}, data={}, params={},
                             metrics={"holdout": {"accuracy": 0.9}}, conversion={"ok": ok}))
    return v


@pytest.fixture
def reg() -> Registry:
    return Registry(MemoryStore())


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
    assert [h["change"].split(":")[1].strip().split()[0] for h in ops.history()[:2]] == ["rollback", "route"]


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
