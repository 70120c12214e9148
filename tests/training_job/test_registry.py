"""Registry invariants on the real MinIO: unique version keys under concurrency, verified artifacts,
control-document compare-and-swap with an audit trail."""
from concurrent.futures import ThreadPoolExecutor

import pytest

from layers.errors import ArtifactCorrupt, Conflict
from layers.registry import ModelMetadata, Policy, Registry, artifact_key
from layers.store import BlobStore
from tests.conftest import audited


def test_concurrent_publishers_never_share_a_version_key(settings, uid):
    model = f"alloc-{uid}"

    def allocate(i):
        reg = Registry(BlobStore(settings.s3))     # a client of its own, like another trainer process
        return [reg.allocate(model, owner=f"w{i}") for _ in range(4)]

    with ThreadPoolExecutor(6) as pool:
        got = [v for vs in pool.map(allocate, range(6)) for v in vs]
    assert len(got) == 24
    assert sorted(got) == list(range(1, 25))


def _meta(model, version, artifacts):
    return ModelMetadata(model=model, version=version, parent=None, created_at="t", labels=["a", "b"], input_size=8,
                         preprocessing="p", architecture={}, backbone={}, data={}, params={}, metrics={},
                         conversion={}, artifacts=artifacts)


def test_artifacts_are_immutable_and_verified(store, uid):
    reg = audited(store)
    model = f"verify-{uid}"
    v = reg.allocate(model)
    art = {"model.tflite": reg.put_artifact(model, v, "model.tflite", b"model-bytes")}
    assert reg.versions(model) == []                       # not visible before metadata.json
    reg.commit(_meta(model, v, art))
    assert reg.versions(model) == [v]
    assert reg.fetch_artifact(model, v, "model.tflite") == b"model-bytes"
    with pytest.raises(Conflict):                          # immutable: no second write of the same key
        reg.put_artifact(model, v, "model.tflite", b"other")
    store.put(artifact_key(model, v, "model.tflite"), b"tampered")   # bypassing the registry
    with pytest.raises(ArtifactCorrupt):
        reg.fetch_artifact(model, v, "model.tflite")


def test_control_document_cas_and_audit(store, uid):
    reg = audited(store)
    model = f"route-{uid}"
    reg.register(model, 1)
    reg.register(model, 2, Policy())
    doc, etag = reg.control()
    route = doc.models[model]
    assert route.weights == {1: 100, 2: 0} and route.rendezvous == [1, 2] and route.mirror == [2]
    # two writers register concurrently: both edits land (one retries on the new ETag), nothing is lost
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda v: audited(BlobStore(store.settings)).register(model, v, Policy()), [3, 4]))
    doc, _ = reg.control()
    route = doc.models[model]
    assert {3, 4} <= set(route.rendezvous) and route.registered_through == 4
    assert route.mirror == [4]                                        # the newest is the canary candidate
    entries = reg.trail().page(model, limit=10)                      # in PostgreSQL, newest first
    assert len(entries) == 4 and all(e.refused is None and e.before != e.after for e in entries)
    assert len({e.revision for e in entries}) == 4 and [e.id for e in entries] == sorted((e.id for e in entries), reverse=True)
    assert entries[-1].before is None and entries[-1].after["weights"] == {"1": 100}
