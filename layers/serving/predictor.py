"""The /predict service: validated image bytes in, a Prediction out; decoy and shadow work off the hot path.

Example:
    predictor = Predictor(runtime, store, sink, settings)
    p = predictor.predict(jpeg_bytes, user="U123", request_id="r-1")
    p.label, p.confidence, p.version, p.unconfident

Hot path: route (sticky by user) -> preprocess (the shared function) -> invoke -> reply.
Off the hot path (layers.serving.offpath, bounded; a slow or dead Kafka/S3 only drops and counts):
  * decoy: a DecoyRecord on predict-decoy carrying the raw input (the IMAGE_HEADER header), published
           without waiting: the decoy archiver stores it at decoys/<sha256>, so no S3 write is made per request.
           An unconfident answer's image is stored here first (a review post and its buttons show it at once),
           then handed to `on_unconfident` (the review channel, which queues the post on its own OffPath: a
           slow Slack never holds up a decoy), as is one too large to ride in a record;
  * shadow: every mirror-set version scores the same input (one backbone pass for the versions that share
            it); PredictionRecords go to predictions.
"""
from __future__ import annotations

import time
from typing import Callable

from layers import logs, metrics
from layers.config import Settings
from layers.errors import Unavailable
from layers.events import IMAGE_HEADER, DecoyRecord, EventSink, PredictionRecord, now_ms
from layers.images import decode, preprocess, sha256_hex, to_input
from layers.registry import decoy_key
from layers.serving.cache import PredictionCache
from layers.serving.offpath import OffPath
from layers.serving.prediction import Prediction, top
from layers.serving.routing import choose
from layers.serving.runtime import ModelRuntime, Snapshot
from layers.serving.loader import score_all
from layers.store import BlobStore


class Predictor:
    def __init__(self, runtime: ModelRuntime, store: BlobStore, sink: EventSink, settings: Settings,
                 offpath: OffPath | None = None, on_unconfident: Callable[[Prediction], None] | None = None) -> None:
        self.runtime, self.store, self.sink, self.settings = runtime, store, sink, settings
        self.on_unconfident = on_unconfident      # e.g. the review channel; called once the image is stored
        self.topics = settings.kafka.topics
        self.offpath = offpath or OffPath(settings.serving.offpath_queue, workers=settings.serving.offpath_workers,
                                          max_bytes=settings.serving.offpath_max_bytes)
        self.cache = PredictionCache(settings.serving.cache_entries)

    def status(self) -> dict:
        """The runtime (ready versions, route, failures), the off-path counters and the cache, for a caller with
        a token."""
        return {**self.runtime.status(), "offpath": self.offpath.stats(), "cache": self.cache.stats()}

    def up(self) -> bool:
        """Whether any version is ready to answer: all that anyone may ask."""
        return bool(self.runtime.snapshot().versions)

    def predict(self, data: bytes, user: str | None, request_id: str) -> Prediction:
        t0 = time.perf_counter()
        snap = self.runtime.snapshot()
        version = choose(snap.route, user or request_id, snap.ready)
        if version is None:
            raise Unavailable(f"no version of model '{self.runtime.model}' is ready to serve yet",
                              failed=self.runtime.status()["failed"] or None)
        loaded = snap.versions[version]
        sha = sha256_hex(data)
        cached = self.cache.get(sha, loaded.model, version)
        seen = cached is not None                  # answered recently: an image stored then is very likely there
        if cached is None:
            img = decode(data, draft_size=loaded.input_size, max_pixels=self.settings.serving.max_pixels)
            cached = top(loaded.labels, loaded.predict(to_input(img, loaded.input_size)[None, ...])[0])
            self.cache.put(sha, loaded.model, version, cached)
        label, confidence, probs = cached
        p = Prediction(request_id=request_id, model=loaded.model, version=version, label=label,
                       confidence=round(confidence, 6),
                       unconfident=confidence < self.settings.serving.unconfident_below,
                       probabilities=probs, latency_ms=round((time.perf_counter() - t0) * 1000, 2), user=user,
                       image_sha256=sha)
        version_label = str(version)
        logs.bind(model=p.model, version=version)
        metrics.PREDICTION_SECONDS.labels(p.model, version_label).observe(p.latency_ms / 1000)
        metrics.PREDICTION_CONFIDENCE.labels(p.model, version_label).observe(p.confidence)
        if p.unconfident:
            metrics.UNCONFIDENT.labels(p.model, version_label).inc()
        self.offpath.submit("decoy", lambda: self._decoy(data, sha, p, seen), nbytes=len(data))
        if snap.route.mirror:
            self.offpath.submit("shadow", lambda: self._shadow(snap, data, p), nbytes=len(data))
        return p

    # -- off the hot path ----------------------------------------------------------------------------
    def _decoy(self, data: bytes, sha: str, p: Prediction, seen: bool) -> None:
        key = decoy_key(sha)                          # expires after DECOY_RETENTION_DAYS; a vote copies it
        inline = not p.unconfident and len(data) <= self.settings.serving.decoy_inline_bytes
        if not inline:
            if seen:
                self.store.put_if_absent(key, data)   # a repeat: ask first rather than upload the body again
            else:
                self.store.create(key, data)          # a new image: one conditional PUT
        if p.unconfident and self.on_unconfident is not None:
            self.on_unconfident(p)          # must return at once (the review channel queues its own work)
        self.sink.publish(self.topics.predict_decoy, DecoyRecord(
            request_id=p.request_id, image_sha256=sha, image_key=key, user=p.user, created_at_ms=now_ms(),
            model=p.model, version=p.version, label=p.label, confidence=p.confidence), key=p.request_id,
            on_failure=lambda err: self.offpath.count("decoy.unacknowledged"),
            headers={IMAGE_HEADER: data} if inline else None)

    def _shadow(self, snap: Snapshot, data: bytes, p: Prediction) -> None:
        """Every mirror version scores the same bytes, preprocessed at ITS input size by the one function
        training uses (a mirror version may take another size than the version that answered); versions on
        one backbone share its pass. `latency_ms` is the time for the whole mirror set."""
        mirror = [snap.versions[v] for v in sorted(snap.route.mirror) if v in snap.versions and v != p.version]
        if not mirror:
            return
        t0 = time.perf_counter()
        probs = score_all(mirror, {size: preprocess(data, size) for size in {l.input_size for l in mirror}})
        ms = round((time.perf_counter() - t0) * 1000, 3)
        for loaded in mirror:
            label, confidence, _ = top(loaded.labels, probs[loaded.version])
            self.sink.publish(self.topics.predictions, PredictionRecord(
                request_id=p.request_id, model=p.model, version=loaded.version, label=label,
                confidence=round(confidence, 6), latency_ms=ms, created_at_ms=now_ms()), key=p.request_id,
                on_failure=lambda err: self.offpath.count("shadow.unacknowledged"))
