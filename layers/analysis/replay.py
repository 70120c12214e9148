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
from collections import OrderedDict, deque

from layers.config import Settings
from layers.events import DecoyRecord, decode, make_reader
from layers.images import preprocess
from layers.errors import NotFound
from layers.registry import Registry, decoy_key, image_key
from layers.serving.prediction import top
from layers.serving.loader import Loaded, Loader, score_all
from layers.store import BlobStore


def read_decoys(settings: Settings, topic: str, from_offset: int | None, since_ms: int | None, limit: int,
                model: str) -> list[DecoyRecord]:
    """Decoy records of `model` from one offset (or time) on, at most `limit`, in topic order."""
    from kafka import TopicPartition
    consumer = make_reader(settings.kafka)
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


class DecoyTail:
    """The newest decoy traffic of a model, read incrementally: each `read()` takes only the records that are
    new since the last one, partition by partition, and never more than `per_step` (then the OLDEST of the new
    ones are skipped, and counted: the newest traffic always wins). The images of the last `keep` records are
    kept, newest last. A first read starts `per_step` records before each partition's end.

    IMPORTANT: the consumer is assigned (no group, no commits): every analyst keeps its own place."""

    def __init__(self, settings: Settings, topic: str, model: str, per_step: int = 2000, keep: int = 2000) -> None:
        self.settings, self.topic, self.model, self.per_step = settings, topic, model, per_step
        self.next: dict[int, int] = {}                     # partition -> the next offset to read
        self.recent: deque[tuple[int, str]] = deque(maxlen=keep)    # (created_at_ms, image sha256)
        self.read_records = self.skipped = 0
        self._consumer = None

    def read(self) -> int:
        """Read what is new; returns how many of this model's records were taken."""
        from kafka import TopicPartition
        if self._consumer is None:
            self._consumer = make_reader(self.settings.kafka)
        consumer = self._consumer
        parts = [TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or [])]
        if not parts:
            return 0
        consumer.assign(parts)
        ends, begins = consumer.end_offsets(parts), consumer.beginning_offsets(parts)
        share = max(1, self.per_step // len(parts))
        for p in parts:
            start = max(self.next.get(p.partition, ends[p] - share), begins[p])
            if ends[p] - start > share:
                self.skipped += ends[p] - share - start
                start = ends[p] - share
            consumer.seek(p, start)
        taken, deadline = 0, time.time() + 30
        while time.time() < deadline and any(consumer.position(p) < ends[p] for p in parts):
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    if r.offset >= ends[tp]:
                        continue
                    self.read_records += 1
                    rec = decode(r.value, DecoyRecord)
                    if isinstance(rec, DecoyRecord) and rec.model == self.model:
                        self.recent.append((rec.created_at_ms, rec.image_sha256))
                        taken += 1
        for p in parts:
            self.next[p.partition] = min(consumer.position(p), ends[p])
        return taken

    def images(self, since_ms: int | None = None) -> list[str]:
        """The distinct images of the kept records (at or after since_ms), newest first."""
        return list(dict.fromkeys(sha for ts, sha in reversed(self.recent) if since_ms is None or ts >= since_ms))

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def decoy_window_s(settings: Settings) -> float:
    """How far back archived traffic is replayed (compare, the canary's agreement): as long as its images are
    kept (S3Settings.decoy_retention_days, DECOY_RETENTION_DAYS); an older decoy's image is gone."""
    return settings.s3.decoy_retention_days * 24 * 3600


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
        answers = self.answers(model, versions, images)
        images = [sha for sha in images if sha in answers[versions[0]]] if versions else images
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

    def answers(self, model: str, versions: list[int], images: list[str]) -> dict[int, dict[str, str]]:
        """Each version's top class for each stored image, each image read and scored once per version, ever
        (versions and images are immutable). An image that is in neither images/ nor decoys/ (an expired
        decoy, an object deleted by hand) is left out of the answer: callers judge on what could be scored."""
        loaded = [self._load(model, v) for v in versions]
        for sha in images:
            todo = [l for l in loaded if (model, l.version, sha) not in self._answers]
            data = self._image(sha) if todo else None
            if data is None:
                continue
            probs = score_all(todo, {size: preprocess(data, size) for size in {l.input_size for l in todo}})
            for l in todo:
                self._answers[(model, l.version, sha)] = top(l.labels, probs[l.version])[0]
        return {v: {sha: self._answers[(model, v, sha)] for sha in images if (model, v, sha) in self._answers}
                for v in versions}

    def _image(self, sha: str) -> bytes | None:
        """An image by its sha256: a voted one (images/, kept) or a decoy (decoys/, until it expires)."""
        for key in (image_key(sha), decoy_key(sha)):
            try:
                return self.store.get(key).body
            except NotFound:
                continue
        return None

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
