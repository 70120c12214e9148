"""Datasets in S3: synthetic portraits are deterministic, and a folder of real photos uploaded as
datasets/<name>/<label>/... becomes a dataset with `scan`."""
from training_job.datasets import load_manifest, scan, split_for
from layers.images import sha256_hex
from portraits.synth import demo_profiles, portrait, samples, to_jpeg


def test_synthetic_portraits_are_deterministic_and_balanced():
    a, b = samples(20, seed=3), samples(20, seed=3)
    assert [s.jpeg for s in a] == [s.jpeg for s in b]
    assert sum(s.label == "engineer" for s in a) == 10
    assert samples(4, seed=4)[0].jpeg != a[0].jpeg
    names = [p.name for p in demo_profiles()]
    assert len(names) == len(set(names)) >= 16
    assert {p.label for p in demo_profiles()} == {"engineer", "non_engineer"}


def test_scan_builds_a_manifest_from_uploaded_photos(store, uid):
    name = f"scan-{uid}"
    uploaded = {}
    for i, label in enumerate(["engineer", "non_engineer", "engineer"]):
        jpeg = to_jpeg(portrait(700 + i, label)[0])
        key = f"datasets/{name}/{label}/photo{i}.jpg"
        store.put(key, jpeg)
        uploaded[key] = (sha256_hex(jpeg), label)
    items = scan(store, name)
    assert {i.key: (i.sha256, i.label) for i in items} == uploaded
    assert all(i.split == split_for(i.sha256) for i in items)
    assert load_manifest(store, name) == sorted(items, key=lambda i: i.key)
