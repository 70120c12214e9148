"""Known answers: the dataset's images and their labels, which check the voters (layers.ledger.consensus).

Example:
    gold = GoldAnswers(store)
    gold.answers("synthetic")         # {"ab12…": "engineer", …}; {} when the dataset has no manifest

Reads datasets/<name>/manifest.json (docs/formats.md, "Dataset manifest"), again only when it changed (ETag).
"""
from __future__ import annotations

import json

from layers.errors import NotFound
from layers.store import BlobStore


class GoldAnswers:
    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self._cache: dict[str, tuple[str, dict[str, str]]] = {}

    def answers(self, dataset: str) -> dict[str, str]:
        etag = self._cache.get(dataset, (None, {}))[0]
        try:
            blob = self.store.get(f"datasets/{dataset}/manifest.json", if_none_match=etag)
        except NotFound:
            return {}
        if blob is not None:
            self._cache[dataset] = (blob.etag, {row["sha256"]: row["label"] for row in json.loads(blob.body)})
        return self._cache[dataset][1]
