"""The store's contract, against the real MinIO and against the in-memory double (tests/doubles.py) alike:
round trip and the conditional requests the registry relies on."""
import pytest

from layers.errors import Conflict, NotFound
from tests.doubles import MemoryStore


@pytest.fixture(params=["minio", "memory"])
def store(request, settings):
    if request.param == "memory":
        return MemoryStore()
    from layers.store import BlobStore
    return BlobStore(settings.s3)


def test_round_trip(store, uid):
    key = f"test/{uid}/blob.bin"
    data = bytes(range(256)) * 100
    etag = store.put(key, data)
    blob = store.get(key)
    assert blob.body == data
    assert blob.etag == etag
    assert store.exists(key)
    assert key in list(store.keys(f"test/{uid}/"))
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(NotFound):
        store.get(key)


def test_create_only_put_rejects_the_second_writer(store, uid):
    key = f"test/{uid}/version"
    store.put(key, b"first", if_none_match="*")
    with pytest.raises(Conflict):
        store.put(key, b"second", if_none_match="*")
    assert store.get(key).body == b"first"


def test_conditional_get_is_304_while_unchanged(store, uid):
    key = f"test/{uid}/control.json"
    etag = store.put(key, b'{"v": 1}')
    assert store.get(key, if_none_match=etag) is None          # 304: nothing transferred
    new_etag = store.put(key, b'{"v": 2}')
    changed = store.get(key, if_none_match=etag)
    assert changed is not None and changed.body == b'{"v": 2}' and changed.etag == new_etag


def test_if_match_put_is_a_compare_and_swap(store, uid):
    key = f"test/{uid}/doc.json"
    etag = store.put(key, b"a")
    store.put(key, b"b", if_match=etag)
    with pytest.raises(Conflict):
        store.put(key, b"c", if_match=etag)                    # stale ETag: the edit is refused, not lost
    assert store.get(key).body == b"b"


def test_a_missing_key_is_not_found_and_a_cas_on_it_is_refused(store, uid):
    with pytest.raises(NotFound):
        store.get(f"test/{uid}/nothing")
    with pytest.raises((NotFound, Conflict)):
        store.put(f"test/{uid}/nothing", b"x", if_match="0" * 32)
    assert store.put_if_absent(f"test/{uid}/once", b"a") and not store.put_if_absent(f"test/{uid}/once", b"b")
    assert store.create(f"test/{uid}/one-trip", b"a") and not store.create(f"test/{uid}/one-trip", b"b")
    assert store.get(f"test/{uid}/one-trip").body == b"a"                 # the second writer changed nothing
    assert store.get(f"test/{uid}/once").body == b"a"


def test_decoys_expire_by_a_lifecycle_rule_and_by_the_sweep(settings, uid):
    """/predict's images (decoys/) expire after DECOY_RETENTION_DAYS: MinIO keeps the lifecycle rule that
    `python -m layers.store ensure-bucket` sets, and the trainer's sweep deletes what is older elsewhere."""
    import dataclasses
    import time
    from layers.store import BlobStore
    bucket = BlobStore(dataclasses.replace(settings.s3, bucket=f"retention-{uid}"))
    bucket.ensure_bucket()
    try:
        other = {"ID": "an-operator-rule", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 1}}
        bucket._s3.put_bucket_lifecycle_configuration(Bucket=bucket.bucket, LifecycleConfiguration={"Rules": [other]})
        assert bucket.expire("decoys/", 9) and bucket.expire("decoys/", 7)    # set twice: one rule, the last days
        rules = bucket._s3.get_bucket_lifecycle_configuration(Bucket=bucket.bucket)["Rules"]
        assert sorted((r["Filter"]["Prefix"], r["Expiration"]["Days"], r["Status"]) for r in rules) == [
            ("decoys/", 7, "Enabled"), ("tmp/", 1, "Enabled")]                  # the bucket's other rules stay
        bucket.put("decoys/old", b"x")
        bucket.put("images/voted", b"x")
        assert bucket.delete_older_than("decoys/", 3600) == 0                      # young: kept
        assert bucket.delete_older_than("decoys/", 3600, now=time.time() + 7200) == 1
        assert not bucket.exists("decoys/old") and bucket.exists("images/voted")   # voted images are never swept
    finally:
        for key in bucket.keys(""):
            bucket.delete(key)
        bucket._s3.delete_bucket(Bucket=bucket.bucket)


def test_a_one_trip_create_against_a_store_that_is_down_is_unavailable():
    from layers.config import S3Settings
    from layers.errors import Unavailable
    from layers.store import BlobStore
    down = BlobStore(S3Settings(endpoint="http://127.0.0.1:1", access_key="a", secret_key="b", connect_timeout_s=1))
    with pytest.raises(Unavailable):
        down.create("decoys/" + "0" * 64, b"x")
