"""Replay: re-score archived live traffic (the `predict-decoy` topic) with any versions, and compare them: how
often they agree, and how accurate each is on the images that have a consensus label in the ledger. The canary
analysis (training_job/canary.py), `/models compare` and `python -m training_job replay` read these numbers.

Example:
    replayer = Replayer(settings)            # kept by its user: answers are remembered
    report = replayer.report("engineer", [1, 3], agreed, since_ms=t)
    report["agreement"], report["versions"]["3"]["accuracy"], report["labelled"]

IMPORTANT: it loads the versions with serving's own loader (verified artifacts, LiteRT, one backbone pass for
the versions that share it) and the one preprocessing function (no TensorFlow); each stored image is read
once, and one image seen many times in the traffic counts once.
"""
from __future__ import annotations

import tempfile
import time
from collections import OrderedDict

from layers.config import Settings
from layers.events import DecoyRecord, decode
from layers.images import preprocess
from layers.registry import Registry, image_key
from layers.serving.prediction import top
from layers.serving.servable import Loaded, Loader, score_all
from layers.store import BlobStore


def read_decoys(settings: Settings, topic: str, from_offset: int | None, since_ms: int | None, limit: int,
                model: str) -> list[DecoyRecord]:
    """Decoy records of `model` from one offset (or time) on, at most `limit`, in topic order."""
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False, group_id=None)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(parts)
        ends = consumer.end_offsets(parts)
        starts = consumer.offsets_for_times({p: since_ms for p in parts}) if since_ms is not None else {}
        for p in parts:
            if since_ms is not None:          # nothing at or after since_ms in this partition: nothing to read
                start = starts[p].offset if starts.get(p) else ends[p]
            else:
                start = from_offset or 0
            consumer.seek(p, min(start, ends[p]))
        out: list[DecoyRecord] = []
        deadline = time.time() + 30
        while len(out) < limit and time.time() < deadline and any(consumer.position(p) < ends[p] for p in parts):
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    rec = decode(r.value, DecoyRecord)
                    if isinstance(rec, DecoyRecord) and rec.model == model and len(out) < limit:
                        out.append(rec)
        return out
    finally:
        consumer.close()


class Replayer:
    """Scores archived traffic with any versions, remembering each (version, image) answer: versions and
    images are immutable, so a canary analysis that replays every few seconds reads and scores only what is new.
    It holds the `keep` versions used most recently (and their answers); older ones are let go, so a
    long-running trainer or models function does not keep every version it ever compared."""

    def __init__(self, settings: Settings, store: BlobStore | None = None, keep: int = 4) -> None:
        self.settings = settings
        self.store = store or BlobStore(settings.s3)
        self._cache = tempfile.TemporaryDirectory(prefix="afterdark-replay-")
        self.loader = Loader(Registry(self.store), self._cache.name)
        self.keep = keep
        self._loaded: OrderedDict[tuple[str, int], Loaded] = OrderedDict()     # least recently used first
        self._answers: dict[tuple[str, int, str], str] = {}

    def report(self, model: str, versions: list[int], agreed: dict, from_offset: int | None = 0,
               since_ms: int | None = None, limit: int = 500, topic: str | None = None) -> dict:
        """Agreement between `versions` on the decoy traffic, and each one's accuracy on the images with a
        consensus label (`agreed`: image sha256 -> {"label", ...}, the ledger's accepted consensus)."""
        decoys = read_decoys(self.settings, topic or self.settings.kafka.topics.predict_decoy, from_offset, since_ms,
                             limit, model)
        images = list(dict.fromkeys(d.image_sha256 for d in decoys))       # each image once, in traffic order
        loaded = [self._load(model, v) for v in versions]
        for sha in images:
            todo = [l for l in loaded if (model, l.version, sha) not in self._answers]
            if not todo:
                continue
            data = self.store.get(image_key(sha)).body
            probs = score_all(todo, {size: preprocess(data, size) for size in {l.input_size for l in todo}})
            for l in todo:
                self._answers[(model, l.version, sha)] = top(l.labels, probs[l.version])[0]
        answers = {v: {sha: self._answers[(model, v, sha)] for sha in images} for v in versions}
        agree = sum(len({answers[v][sha] for v in versions}) == 1 for sha in images)
        labelled = [sha for sha in images if sha in agreed]
        report = {"model": model, "records": len(decoys), "images": len(images), "labelled": len(labelled),
                  "agreement": round(agree / len(images), 4) if images else None, "versions": {}}
        for v in versions:
            right = sum(answers[v][sha] == agreed[sha]["label"] for sha in labelled)
            report["versions"][str(v)] = {"labelled": len(labelled),
                                          "accuracy": round(right / len(labelled), 4) if labelled else None,
                                          "labels": dict(sorted(answers[v].items()))}
        return report

    def _load(self, model: str, version: int) -> Loaded:
        key = (model, version)
        if key not in self._loaded:
            self._loaded[key] = self.loader.load(model, version)
        self._loaded.move_to_end(key)
        while len(self._loaded) > max(self.keep, 1):
            (old_model, old_version), _ = self._loaded.popitem(last=False)
            self._answers = {k: v for k, v in self._answers.items() if k[:2] != (old_model, old_version)}
            self.loader.keep({l.backbone_sha256 for l in self._loaded.values() if l.backbone_sha256})
        return self._loaded[key]
