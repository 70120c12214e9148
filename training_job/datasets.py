"""Labelled image datasets in S3, in a layout real users can fill with their own photos.

    datasets/<name>/<label>/<sha256>.jpg     one prefix per class
    datasets/<name>/manifest.json            [{"key", "sha256", "label", "split", "cues"}], split = train | holdout
                                             cues: what the synthetic generator drew (absent for real photos)

Example:
    publish_synthetic(store, "synthetic", n=600, seed=1)
    items = load_manifest(store, "synthetic")
    items = scan(store, "my-photos")     # a folder of <label>/<file> uploaded by hand: manifest built from keys

The split is a pure function of the image's sha256 (20% hold-out), so adding photos never moves an old one
between train and hold-out.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from layers.errors import NotFound
from layers.images import sha256_hex
from layers.store import BlobStore
from portraits.synth import LABELS, samples

HOLDOUT_PERCENT = 20


@dataclass(frozen=True)
class Item:
    key: str
    sha256: str
    label: str
    split: str
    cues: tuple[str, ...] | None = None      # the generator's cues (synthetic data only): the ceiling's features


def split_for(sha256: str) -> str:
    return "holdout" if int(sha256[:8], 16) % 100 < HOLDOUT_PERCENT else "train"


def manifest_key(name: str) -> str:
    return f"datasets/{name}/manifest.json"


def save_manifest(store: BlobStore, name: str, items: list[Item]) -> str:
    rows = [{k: v for k, v in asdict(i).items() if v is not None} for i in sorted(items, key=lambda i: i.key)]
    body = json.dumps(rows, indent=1).encode()
    store.put(manifest_key(name), body, content_type="application/json")
    return sha256_hex(body)


def publish_synthetic(store: BlobStore, name: str, n: int, seed: int) -> list[Item]:
    items = []
    for s in samples(n, seed):
        sha = sha256_hex(s.jpeg)
        key = f"datasets/{name}/{s.label}/{sha}.jpg"
        store.put(key, s.jpeg, content_type="image/jpeg")
        items.append(Item(key=key, sha256=sha, label=s.label, split=split_for(sha), cues=s.cues))
    save_manifest(store, name, items)
    return items


def labels_of(items: list[Item]) -> list[str]:
    """The dataset's classes: its items' labels, sorted (the order of a head's outputs)."""
    return sorted({i.label for i in items})


def load_manifest(store: BlobStore, name: str) -> list[Item]:
    return parse_manifest(store.get(manifest_key(name)).body)


def parse_manifest(body: bytes) -> list[Item]:
    return [Item(**{**d, "cues": tuple(d["cues"]) if "cues" in d else None}) for d in json.loads(body)]


def scan(store: BlobStore, name: str, labels: tuple[str, ...] = LABELS) -> list[Item]:
    """Build (and save) the manifest of datasets/<name>/<label>/* uploaded by hand."""
    items = []
    for label in labels:
        for key in store.keys(f"datasets/{name}/{label}/"):
            sha = sha256_hex(store.get(key).body)
            items.append(Item(key=key, sha256=sha, label=label, split=split_for(sha)))
    save_manifest(store, name, items)
    return items


def has_cues(store: BlobStore, name: str) -> bool:
    """Whether the dataset's manifest records the generator's cues (a synthetic dataset published before
    manifests did can be published again: the same seed draws the same images, under the same keys)."""
    return any(i.cues is not None for i in load_manifest(store, name))


def exists(store: BlobStore, name: str) -> bool:
    try:
        store.get(manifest_key(name))
        return True
    except NotFound:
        return False
