"""Train -> evaluate -> convert -> gate -> publish: the stages in order. Shared by `bootstrap` and the learner.
Each stage has its own module: embeddings (training_job.embeddings), backbones (training_job.backbones), the
gates (training_job.gates, pure), publishing, registering and announcing (training_job.publish).

Example:
    trainer = Trainer(store, sink, cfg)
    info = trainer.backbones.publish(backbone, "bootstrap: ...", exs)   # once per backbone: backbone.tflite
    backbone, info = trainer.backbones.for_version(parent_meta)  # loaded once, kept warm by the learner
    outcome = trainer.train_and_publish(exs, agreed, {"watermark": 42, "votes": 17, "run_id": 7}, backbone, info,
                                        parent=live_meta, seed=1, progress=lambda stage, v: ...)

A version is a head on a published backbone (layers.serving.loader). A run with corrections first
fine-tunes the root backbone on the dataset and the corrections (TrainConfig.tune_epochs; Backbones.tuned) and
publishes it once per fingerprint; a run without them stays on the root. Then it embeds only images it has
not seen (cached by backbone fingerprint and image sha256), fits the head by L-BFGS, converts the head,
checks the head's parity and the composed path's (LiteRT backbone then LiteRT head, against Keras), and
publishes a few KiB (plus the tuned backbone, 1.6 MB).

Stages, each reported to `progress` (the learner writes them to the run's row): metadata.json written
("published") -> the control document names it ("registered") -> its model-event acknowledged (the return).
A crash between any two is finished by training_job.reconcile.

IMPORTANT: publishing is idempotent on the data: if a committed version already holds exactly the same
training data (data_sha256) and seed, nothing new is published (outcome "unchanged").
"""
from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from layers.analysis.paired import wilson
from layers.events import EventSink, announce
from layers.images import sha256_hex
from layers.ledger import Consensus
from layers.registry import AuditTrail, ModelMetadata, Policy, Registry
from layers.serving.litert import LiteModel
from layers.store import BlobStore
from training_job import head as H
from training_job.backbones import Backbones
from training_job.ceiling import ceiling
from training_job.config import TrainConfig
from training_job.convert import agreement, to_tflite
from training_job.datasets import labels_of, manifest_key, parse_manifest
from training_job.embeddings import Embeddings
from training_job.evaluate import metrics
from training_job.examples import Example, data_manifest
from training_job.failpoints import failpoint
from training_job.gates import Candidate, Fitted, accuracy_reasons, gate_reasons
from training_job.publish import publish_version, register_and_announce
from training_job.tracking import Tracker

IO_THREADS = 8
PARITY_IMAGES = 64        # hold-out images the head and the composed path are checked on


@dataclass
class Outcome:
    status: str                  # published | refused | unchanged
    version: int | None
    reason: str = ""
    metadata: ModelMetadata | None = None


class Trainer:
    def __init__(self, store: BlobStore, sink: EventSink | None, cfg: TrainConfig, tracker: Tracker | None = None,
                 audit: AuditTrail | None = None) -> None:
        self.store, self.sink, self.cfg = store, sink, cfg
        self.tracker = tracker or Tracker(None)      # MLflow, off the training path (training_job/tracking.py)
        self.registry = Registry(store, audit)       # without an audit log it trains and publishes, never registers
        self.labels: list[str] = []              # the dataset manifest's classes (read with the dataset)
        self._pool = ThreadPoolExecutor(IO_THREADS)
        self.embedder = Embeddings(store, cfg.input_size, self._pool)
        self.backbones = Backbones(store, self.registry, cfg, self.tracker, self.embedder)
        self._dataset: tuple[str, list, str] | None = None
        self._stored: set[str] = set()           # voted images' keys seen in S3 (see present())

    # -- events --------------------------------------------------------------------------------------
    def emit(self, event: str, version: int | None, reason: str | None = None, **details) -> None:
        if self.sink is not None:
            announce(self.sink, self.cfg.model, event, version, reason, **details)

    # -- data ----------------------------------------------------------------------------------------
    def dataset(self) -> tuple[list, str]:
        """The dataset's items and its manifest's sha256; re-read only when the manifest changed (304)."""
        etag = self._dataset[0] if self._dataset else None
        blob = self.store.get(manifest_key(self.cfg.dataset), if_none_match=etag)
        if blob is not None:
            items = parse_manifest(blob.body)
            self._dataset = (blob.etag, items, sha256_hex(blob.body))
            self.labels = labels_of(items)
        return self._dataset[1], self._dataset[2]

    def present(self, exs: list[Example]) -> list[Example]:
        """The examples whose image is in S3. A voted image can be gone (an operator deleted it, or a ledger row
        names an object that never landed): its votes stay in the ledger, and the run trains on the rest instead
        of failing at every retry. Images are content-addressed and a voted one never expires, so each key is
        looked up once per trainer."""
        unknown = [e for e in exs if e.source == "fix" and e.key not in self._stored]
        gone = set()
        for e, found in zip(unknown, self._pool.map(lambda e: self.store.exists(e.key), unknown)):
            if found:
                self._stored.add(e.key)
            else:
                gone.add(e.sha256)
        if gone:
            print(f"[train] {len(gone)} voted images are not in S3 and are left out: "
                  f"{', '.join(sorted(s[:12] for s in gone))}", flush=True)
        return [e for e in exs if e.sha256 not in gone]

    def train_and_publish(self, exs: list[Example], agreed: Consensus, ledger: dict, backbone,
                          backbone_info: dict, parent: ModelMetadata | None, seed: int, policy: Policy = Policy(),
                          note: str = "", progress=None) -> Outcome:
        t0 = time.perf_counter()
        progress = progress or (lambda stage, version: None)
        cfg = TrainConfig(**{**self.cfg.params(), "seed": seed})
        _, dataset_sha = self.dataset()
        exs = self.present(exs)
        if "tflite" not in backbone_info:       # a backbone from before versions were heads: publish it once
            backbone_info = self.backbones.publish(backbone, backbone_info["source"], exs)
        data = data_manifest(cfg.dataset, dataset_sha, exs, agreed, ledger)
        same = self._published_with(cfg.model, data["data_sha256"], seed)
        if same is not None:
            print(f"[train] v{same.version} already holds exactly this data; nothing to publish", flush=True)
            return Outcome("unchanged", same.version, f"same data as v{same.version}", same)
        backbone, backbone_info = self.backbones.tuned(exs, backbone, backbone_info, cfg, self.labels)
        fitted = self._fit(exs, backbone, backbone_info["fingerprint"], cfg)
        fitted.parent_prequential = self._prequential(parent, exs, agreed)
        reasons = accuracy_reasons(fitted.accuracy, cfg, parent)        # refuse before paying for a conversion
        cand = None
        if not reasons:
            cand = self._convert(fitted, backbone, backbone_info)
            reasons = gate_reasons(cand, cfg, parent)
        if reasons:
            self.emit("refused", None, "; ".join(reasons), parent=parent.version if parent else None,
                      data_sha256=data["data_sha256"], holdout_accuracy=fitted.accuracy,
                      parity=cand.parity if cand else None, quarantined=list(agreed.quarantined))
            self.tracker.refused(cfg.model, cfg.params(), {"holdout": fitted.holdout, "parity": cand.parity if cand else {},
                                                           "seconds": cand.seconds if cand else fitted.seconds}, reasons)
            return Outcome("refused", None, "; ".join(reasons))
        meta = publish_version(self.registry, self.emit, cand, cfg, self.labels, data, agreed, backbone_info, parent,
                               note, time.perf_counter() - t0)
        progress("published", meta.version)
        failpoint("after-publish")

        def registered() -> None:
            progress("registered", meta.version)
            failpoint("after-register")
        register_and_announce(self.registry, self.emit, cfg.model, meta.version, policy, ledger.get("run_id"),
                              registered=registered)
        self.tracker.published(meta)
        return Outcome("published", meta.version, "", meta)

    def _published_with(self, model: str, data_sha256: str, seed: int) -> ModelMetadata | None:
        for v in reversed(self.registry.versions(model)):
            meta = self.registry.metadata(model, v)
            if meta.data.get("data_sha256") == data_sha256 and meta.params.get("seed") == seed:
                return meta
        return None

    def _fit(self, exs: list[Example], backbone, fp: str, cfg: TrainConfig) -> "Fitted":
        """The head, fitted on cached embeddings, and its metrics (no conversion yet)."""
        t0 = time.perf_counter()
        label_idx = {l: i for i, l in enumerate(self.labels)}
        unknown = sorted({e.label for e in exs} - set(label_idx))
        if unknown:
            raise ValueError(f"labels {unknown} are not classes of dataset '{cfg.dataset}' ({self.labels})")
        train = [e for e in exs if e.split == "train"]
        hold = [e for e in exs if e.split == "holdout"]
        fixes = [e for e in train if e.source == "fix"]           # what it trained on: a figure of fit, not skill
        evaluation = [e for e in exs if e.split == "evaluation"]  # voted, never trained on: the honest figure
        emb = self.embedder.embed(backbone, fp, exs)
        index = {e.sha256: i for i, e in enumerate(exs)}

        def pick(part: list[Example]) -> tuple[np.ndarray, np.ndarray]:
            return emb[[index[e.sha256] for e in part]], np.array([label_idx[e.label] for e in part], int)

        (xtr, ytr), (xho, yho), (xfx, yfx), (xev, yev) = pick(train), pick(hold), pick(fixes), pick(evaluation)
        cues = {i.sha256: i.cues for i in self.dataset()[0] if i.cues is not None}
        with_cues = lambda part: [(cues[e.sha256], e.label) for e in part if e.source == "dataset" and e.sha256 in cues]
        best = ceiling(with_cues(train), with_cues(hold))
        t1 = time.perf_counter()
        head = H.fit_head(xtr, ytr, len(self.labels), cfg,
                          weights=H.example_weights(ytr, np.array([e.source == "fix" for e in train], bool),
                                                    cfg.fix_weight))
        t2 = time.perf_counter()
        hold_probs = head.predict(xho) if len(xho) else np.zeros((0, len(self.labels)), np.float32)
        fix_probs = head.predict(xfx) if len(xfx) else np.zeros((0, len(self.labels)), np.float32)
        ev_probs = head.predict(xev) if len(xev) else np.zeros((0, len(self.labels)), np.float32)
        fitted = Fitted(head=head, holdout=metrics(yho, hold_probs, self.labels), fixes=metrics(yfx, fix_probs, self.labels),
                        evaluation=honest(yev, ev_probs, self.labels),
                        hold_probs=hold_probs, hold_true=yho, train=train, hold=hold, ceiling=best,
                        seconds={"embeddings": round(t1 - t0, 2), "head": round(t2 - t1, 2)})
        print(f"[train] hold-out accuracy {fitted.accuracy:.3f}" + (f" (the data's ceiling: {best['accuracy']:.3f})"
              if best else "") + f", evaluation-split votes {fitted.evaluation['accuracy']} on {fitted.evaluation['n']}"
              f", training fixes {fitted.fixes['accuracy']}", flush=True)
        return fitted

    def _prequential(self, parent: ModelMetadata | None, exs: list[Example], agreed: Consensus) -> dict | None:
        """Test first, train later: the parent's accuracy on the voted images whose consensus votes all came
        after the ledger watermark it was trained at, and that it did not train on, before this run trains on
        them."""
        if parent is None or "head.npz" not in parent.artifacts:
            return None
        backbone, fp = self.backbones.for_version(parent)[0], parent.backbone["fingerprint"]   # the parent's own, tuned or not
        watermark = int((parent.data.get("ledger") or {}).get("watermark") or 0)
        seen = self.registry.trained_fixes(parent.model, parent.version)
        fresh = [e for e in exs if e.source == "fix" and e.sha256 not in seen
                 and agreed.accepted[e.sha256].get("first_seq", 0) > watermark]
        arrays = np.load(io.BytesIO(self.registry.fetch_artifact(parent.model, parent.version, "head.npz", parent)))
        head = H.Head(arrays["kernel"], arrays["bias"])
        label_idx = {l: i for i, l in enumerate(self.labels)}
        probs = head.predict(self.embedder.embed(backbone, fp, fresh)) if fresh else np.zeros((0, len(self.labels)))
        return {"version": parent.version, "after_watermark": watermark,
                **honest(np.array([label_idx[e.label] for e in fresh], int), probs, self.labels)}

    def _convert(self, fitted: "Fitted", backbone, info: dict) -> "Candidate":
        """The head alone as TFLite, its parity with Keras on hold-out embeddings, and the parity of the
        composed path that serving runs (backbone.tflite then head.tflite) with the Keras model."""
        t0 = time.perf_counter()
        head_keras = H.head_model(fitted.head)
        tflite = to_tflite(head_keras, "fp32")
        t1 = time.perf_counter()
        sample = fitted.hold[:PARITY_IMAGES]
        emb = self.embedder.embed(backbone, info["fingerprint"], sample)
        keras_p = np.asarray(head_keras(emb), np.float32) if len(emb) else np.zeros((0, len(self.labels)), np.float32)
        lite_head = LiteModel(tflite)
        head_par = agreement(keras_p, lite_head.predict(emb), "fp32")
        composed = agreement(keras_p, lite_head.predict(self.embedder.lite(info, sample)), info["tflite"]["mode"])
        par = {"ok": head_par["ok"] and composed["ok"], "head": head_par, "composed": composed,
               "backbone_sha256": info["tflite"]["sha256"]}
        seconds = {**fitted.seconds, "convert": round(t1 - t0, 2), "parity": round(time.perf_counter() - t1, 2)}
        cand = Candidate(fitted=fitted, tflite=tflite, parity=par, seconds=seconds)
        print(f"[train] parity: head max|dp|={head_par['max_abs_diff']:.2e}, composed max|dp|="
              f"{composed['max_abs_diff']:.2e} top1={composed['top1_agreement']:.3f}; seconds {seconds}", flush=True)
        return cand

def honest(y: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict:
    """Accuracy on images a model never trained on, with its count and 95% Wilson interval."""
    right = int((probs.argmax(axis=1) == y).sum()) if len(y) else 0
    return {"n": int(len(y)), "right": right, "accuracy": round(right / len(y), 4) if len(y) else None,
            "ci95": wilson(right, int(len(y)))}


