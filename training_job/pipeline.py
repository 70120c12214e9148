"""Train -> evaluate -> convert -> gate -> publish. Shared by `bootstrap` and the online consumer.

Example:
    trainer = Trainer(store, sink, cfg)
    info = trainer.publish_backbone(backbone, "bootstrap: ...", exs)   # once per backbone: backbone.tflite
    backbone, info = trainer.backbone_for(parent_meta)  # loaded once, kept warm by the learner
    outcome = trainer.train_and_publish(exs, agreed, {"watermark": 42, "votes": 17, "run_id": 7}, backbone, info,
                                        parent=live_meta, seed=1, progress=lambda stage, v: ...)

A version is a head on a published backbone (layers.serving.loader). A run with corrections first
fine-tunes the root backbone on the dataset and the corrections (TrainConfig.tune_epochs; `tuned`) and
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
import json
import os
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from training_job.datasets import manifest_key, parse_manifest
from layers.errors import NotFound
from layers.analysis.paired import wilson
from layers.events import EventSink, announce
from layers.analysis.charts import training_report
from layers.images import preprocess, sha256_hex
from layers.registry import (AuditTrail, ModelMetadata, Policy, Registry, backbone_key, backbone_tflite_key,
                             embedding_key, embedding_pack_key, utc_now)
from layers.serving.litert import LiteModel
from layers.store import BlobStore
from layers.ledger import Consensus
from training_job import head as H, model as M
from training_job.config import TrainConfig
from training_job.ceiling import ceiling
from training_job.convert import agreement, embedding_parity, to_tflite
from training_job.examples import Example, data_manifest
from training_job.datasets import labels_of
from training_job.evaluate import metrics
from training_job.failpoints import failpoint
from training_job.gates import Candidate, Fitted, accuracy_reasons, gate_reasons
from training_job.tracking import Tracker

PREPROCESSING = "layers.images.preprocess: decode, EXIF orientation, RGB, JPEG draft + bilinear resize, x/127.5-1"
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
        self._backbones: dict[str, tuple[object, dict]] = {}
        self._lite: dict[str, LiteModel] = {}     # fingerprint -> the published backbone.tflite, on LiteRT
        self._dataset: tuple[str, list, str] | None = None
        self._embedded: dict[tuple[str, str], np.ndarray] = {}     # (backbone fingerprint, image sha256) -> (D,)
        self._packed: dict[str, set[str]] = {}    # fingerprint -> the images in its S3 pack (see embeddings())
        self._lite_embedded: dict[tuple[str, str], np.ndarray] = {}   # the same, from backbone.tflite
        self._tuned: list[str] = []              # fine-tuned backbones' fingerprints, oldest first (see tuned())
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

    def images(self, exs: list[Example]) -> np.ndarray:
        size = self.cfg.input_size
        arrays = list(self._pool.map(lambda e: preprocess(self.store.get(e.key).body, size), exs))
        return np.stack(arrays) if arrays else np.zeros((0, size, size, 3), np.float32)

    def embeddings(self, backbone, fp: str, exs: list[Example]) -> np.ndarray:
        """Backbone embeddings: kept in memory by this trainer, cached in S3 by (backbone fingerprint, image
        sha256), computed only for images neither holds. A warm trainer reads nothing from S3 for them; a cold
        one reads the dataset's images in one object (the pack: 1 GET instead of one per image, which cost
        4.6 s of CPU for 1200 images) and the voted images one by one."""
        if fp not in self._tuned:
            self._unpack(fp)

        def cached(e: Example):
            hit = self._embedded.get((fp, e.sha256))
            if hit is not None or fp in self._tuned:
                return hit
            try:
                return np.load(io.BytesIO(self.store.get(embedding_key(fp, e.sha256)).body))
            except NotFound:
                return None
        found = list(self._pool.map(cached, exs))
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            print(f"[train] embedding {len(missing)} new images ({len(exs) - len(missing)} cached)", flush=True)
            new = M.embed(backbone, self.images([exs[i] for i in missing]))

            def save(args):
                i, vec = args
                buf = io.BytesIO()
                np.save(buf, vec)
                self.store.put(embedding_key(fp, exs[i].sha256), buf.getvalue())
            if fp not in self._tuned:
                list(self._pool.map(save, zip(missing, new)))
            for i, vec in zip(missing, new):
                found[i] = vec
        for e, vec in zip(exs, found):
            self._embedded[(fp, e.sha256)] = vec
        if fp not in self._tuned:
            self._pack(fp, [e for e in exs if e.source == "dataset"])
        return np.stack(found).astype(np.float32) if found else np.zeros((0, 1), np.float32)

    def _unpack(self, fp: str) -> None:
        """Read the fingerprint's pack into memory, once per trainer (none yet: nothing)."""
        if fp in self._packed:
            return
        self._packed[fp] = set()
        try:
            with np.load(io.BytesIO(self.store.get(embedding_pack_key(fp)).body)) as pack:
                shas, vectors = [str(s) for s in pack["sha256"]], pack["embedding"]
        except NotFound:
            return
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as err:      # no poison pill: rewritten
            print(f"[train] the embedding pack of {fp} is unreadable ({err!r}): reading the images one by one",
                  flush=True)
            return
        for sha, vec in zip(shas, vectors):
            self._embedded.setdefault((fp, sha), vec)
        self._packed[fp] = set(shas)

    def _pack(self, fp: str, dataset: list[Example]) -> None:
        """Write the pack again when this run embedded dataset images it lacks: every dataset image this
        trainer holds. Two trainers may race; the last write wins, and either pack is right (an embedding is
        a function of the backbone and the image), at worst missing images that are then read one by one."""
        wanted = {e.sha256 for e in dataset} | self._packed[fp]
        if wanted == self._packed[fp]:
            return
        held = sorted(sha for sha in wanted if (fp, sha) in self._embedded)
        buf = io.BytesIO()
        np.savez(buf, sha256=np.array(held), embedding=np.stack([self._embedded[(fp, sha)] for sha in held]))
        self.store.put(embedding_pack_key(fp), buf.getvalue())
        self._packed[fp] = set(held)

    def lite_embeddings(self, info: dict, exs: list[Example]) -> np.ndarray:
        """Embeddings by the published backbone.tflite (what serving computes), kept in memory."""
        fp = info["fingerprint"]
        lite = self._lite.get(fp)
        if lite is None:
            data = self.store.get(info["tflite"]["key"]).body
            if sha256_hex(data) != info["tflite"]["sha256"]:
                raise RuntimeError(f"backbone {info['tflite']['key']} does not match its sha256")
            lite = self._lite[fp] = LiteModel(data)
        missing = [e for e in exs if (fp, e.sha256) not in self._lite_embedded]
        if missing:
            for e, vec in zip(missing, lite.predict(self.images(missing))):
                self._lite_embedded[(fp, e.sha256)] = vec
        return np.stack([self._lite_embedded[(fp, e.sha256)] for e in exs]) if exs else np.zeros((0, 1), np.float32)

    # -- backbone ------------------------------------------------------------------------------------
    def publish_backbone(self, backbone, source: str, sample: list[Example], training: dict | None = None) -> dict:
        """The frozen backbone's weights and its backbone.tflite, published once per fingerprint (a second
        trainer reuses the first one's), checked against Keras on `sample` images before its manifest is
        written. `training` (how it was trained here: params, per-epoch history, seconds) goes into the
        manifest. Returns the `backbone` block of a version's metadata."""
        cfg = self.cfg
        fp = M.fingerprint(backbone)
        key = backbone_key(fp)
        if not self.store.exists(key):
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "backbone.weights.h5")
                backbone.save_weights(path)
                self.store.put(key, open(path, "rb").read())
        manifest = self.registry.backbone_manifest(fp)
        if manifest is None:
            t0 = time.perf_counter()
            print(f"[train] converting backbone {fp} to TFLite ({cfg.quantize}; once per backbone)", flush=True)
            calib = self.images(sample[:200]) if cfg.quantize == "int8" else None
            stored = self.registry.put_backbone(fp, to_tflite(backbone, cfg.quantize, calib))
            x = self.images(sample[:32])
            par = embedding_parity(M.embed(backbone, x), LiteModel(stored).predict(x), cfg.quantize)
            if not par["ok"]:
                raise RuntimeError(f"backbone {fp} does not convert faithfully: {par}")
            manifest = self.registry.commit_backbone(fp, {
                "key": backbone_tflite_key(fp), "sha256": sha256_hex(stored), "bytes": len(stored),
                "mode": cfg.quantize, "input_size": cfg.input_size, "embedding_dim": int(backbone.output_shape[-1]),
                "parity": par, "convert_seconds": round(time.perf_counter() - t0, 2), "created_at": utc_now(),
                "training": training or {"source": source}})
        self.tracker.backbone(cfg.model, {"fingerprint": fp, **manifest})
        info = backbone_info(fp, manifest, source)
        self._backbones[fp] = (backbone, info)
        return info

    def backbone_for(self, meta: ModelMetadata):
        """The frozen backbone a version was trained on, loaded from S3 once and kept."""
        cfg = TrainConfig(**{**self.cfg.params(), "base": "none", "alpha": meta.architecture["alpha"],
                             "input_size": meta.input_size})
        return self._load_backbone(meta.backbone, lambda path: M.build_backbone(cfg, weights_path=path))

    def _load_backbone(self, info: dict, build):
        """A published backbone: its weights, from S3, into the model `build(weights_path)` makes; checked
        against its fingerprint, and kept."""
        fp = info["fingerprint"]
        if info.get("tuned_from"):
            self._remember_tuned(fp)
        if fp not in self._backbones:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "backbone.weights.h5")
                with open(path, "wb") as f:
                    f.write(self.store.get(info["weights_key"]).body)
                backbone = build(path)
            backbone.trainable = False
            if M.fingerprint(backbone) != fp:
                raise RuntimeError(f"backbone {info['weights_key']} does not match fingerprint {fp}")
            self._backbones[fp] = (backbone, info)
        return self._backbones[fp]

    def root_of(self, backbone, info: dict):
        """The backbone a tuned backbone was fine-tuned from (itself, when it was not tuned)."""
        root = info.get("tuned_from")
        if not root:
            return backbone, info
        manifest = self.registry.backbone_manifest(root)
        if manifest is None:
            raise RuntimeError(f"backbone {info['fingerprint']} names root {root}, which is not published")
        return self._load_backbone(backbone_info(root, manifest, manifest.get("training", {}).get("source", "")),
                                   lambda path: M.like(backbone, weights_path=path))

    def tuned(self, exs: list[Example], backbone, info: dict, cfg: TrainConfig):
        """The backbone a version on `exs` is trained on: the root backbone fine-tuned on the dataset's train
        split and the corrections (cfg.tune_epochs), published once per fingerprint; the root itself when there
        are no corrections or tuning is off. Always from the root, never from a tuned parent: a version is
        its root plus its data, so the corrections are not tuned on again at every run."""
        root, root_info = self.root_of(backbone, info)
        train = [e for e in exs if e.split == "train"]
        fixes = sum(e.source == "fix" for e in train)
        if cfg.tune_epochs <= 0 or not fixes:
            return root, root_info
        t0 = time.perf_counter()
        label_idx = {l: i for i, l in enumerate(self.labels)}
        y = np.array([label_idx[e.label] for e in train], int)
        w = H.example_weights(y, np.array([e.source == "fix" for e in train], bool), cfg.fix_weight)
        start = H.fit_head(self.embeddings(root, root_info["fingerprint"], train), y, len(self.labels), cfg, weights=w)
        x = self.images(train)
        new = M.tune_backbone(root, x, y, w, start, cfg)
        fp = M.fingerprint(new)
        self._remember_tuned(fp)
        for e, vec in zip(train, M.embed(new, x)):
            self._embedded[(fp, e.sha256)] = vec
        del x
        return new, self.publish_backbone(new, f"{root_info['fingerprint'][:12]} fine-tuned on {fixes} corrections",
                                          train, {"source": "fine-tuned", "tuned_from": root_info["fingerprint"],
                                                  "corrections": fixes, "epochs": cfg.tune_epochs,
                                                  "learning_rate": cfg.tune_learning_rate,
                                                  "seconds": round(time.perf_counter() - t0, 1)})

    def _remember_tuned(self, fp: str, kept: int = 3) -> None:
        """Tuned backbones come and go with versions: the newest `kept` stay in memory, with their embeddings,
        which are never cached in S3 (a root backbone's are)."""
        if fp in self._tuned:
            return
        self._tuned.append(fp)
        drop, self._tuned = set(self._tuned[:-kept]), self._tuned[-kept:]
        if drop:
            for gone in drop:
                self._backbones.pop(gone, None)
                self._lite.pop(gone, None)
            self._embedded = {k: v for k, v in self._embedded.items() if k[0] not in drop}
            self._lite_embedded = {k: v for k, v in self._lite_embedded.items() if k[0] not in drop}

    def train_and_publish(self, exs: list[Example], agreed: Consensus, ledger: dict, backbone,
                          backbone_info: dict, parent: ModelMetadata | None, seed: int, policy: Policy = Policy(),
                          note: str = "", progress=None) -> Outcome:
        t0 = time.perf_counter()
        progress = progress or (lambda stage, version: None)
        cfg = TrainConfig(**{**self.cfg.params(), "seed": seed})
        _, dataset_sha = self.dataset()
        exs = self.present(exs)
        if "tflite" not in backbone_info:       # a backbone from before versions were heads: publish it once
            backbone_info = self.publish_backbone(backbone, backbone_info["source"], exs)
        data = data_manifest(cfg.dataset, dataset_sha, exs, agreed, ledger)
        same = self._published_with(cfg.model, data["data_sha256"], seed)
        if same is not None:
            print(f"[train] v{same.version} already holds exactly this data; nothing to publish", flush=True)
            return Outcome("unchanged", same.version, f"same data as v{same.version}", same)
        backbone, backbone_info = self.tuned(exs, backbone, backbone_info, cfg)
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
        meta = self._publish(cand, cfg, data, agreed, backbone_info, parent, note, time.perf_counter() - t0)
        progress("published", meta.version)
        failpoint("after-publish")
        doc = self.registry.register(cfg.model, meta.version, policy)
        progress("registered", meta.version)
        failpoint("after-register")
        self.emit("registered", meta.version, None, route=doc.models[cfg.model].to_json(), run_id=ledger.get("run_id"))
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
        emb = self.embeddings(backbone, fp, exs)
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
        backbone, fp = self.backbone_for(parent)[0], parent.backbone["fingerprint"]   # the parent's own, tuned or not
        watermark = int((parent.data.get("ledger") or {}).get("watermark") or 0)
        seen = self.registry.trained_fixes(parent.model, parent.version)
        fresh = [e for e in exs if e.source == "fix" and e.sha256 not in seen
                 and agreed.accepted[e.sha256].get("first_seq", 0) > watermark]
        arrays = np.load(io.BytesIO(self.registry.fetch_artifact(parent.model, parent.version, "head.npz", parent)))
        head = H.Head(arrays["kernel"], arrays["bias"])
        label_idx = {l: i for i, l in enumerate(self.labels)}
        probs = head.predict(self.embeddings(backbone, fp, fresh)) if fresh else np.zeros((0, len(self.labels)))
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
        emb = self.embeddings(backbone, info["fingerprint"], sample)
        keras_p = np.asarray(head_keras(emb), np.float32) if len(emb) else np.zeros((0, len(self.labels)), np.float32)
        lite_head = LiteModel(tflite)
        head_par = agreement(keras_p, lite_head.predict(emb), "fp32")
        composed = agreement(keras_p, lite_head.predict(self.lite_embeddings(info, sample)), info["tflite"]["mode"])
        par = {"ok": head_par["ok"] and composed["ok"], "head": head_par, "composed": composed,
               "backbone_sha256": info["tflite"]["sha256"]}
        seconds = {**fitted.seconds, "convert": round(t1 - t0, 2), "parity": round(time.perf_counter() - t1, 2)}
        cand = Candidate(fitted=fitted, tflite=tflite, parity=par, seconds=seconds)
        print(f"[train] parity: head max|dp|={head_par['max_abs_diff']:.2e}, composed max|dp|="
              f"{composed['max_abs_diff']:.2e} top1={composed['top1_agreement']:.3f}; seconds {seconds}", flush=True)
        return cand

    def _publish(self, cand: "Candidate", cfg: TrainConfig, data: dict, agreed: Consensus,
                 backbone_info: dict, parent: ModelMetadata | None, note: str, seconds: float) -> ModelMetadata:
        version = self.registry.allocate(cfg.model, owner=f"training-job pid {os.getpid()}")
        buf = io.BytesIO()
        np.savez(buf, **cand.fitted.head.arrays())
        fitted = cand.fitted
        confidence = fitted.hold_probs.max(axis=1) if len(fitted.hold_probs) else np.zeros(0)
        report = training_report(fitted.holdout["confusion"], self.labels, confidence.tolist(),
                                 (fitted.hold_probs.argmax(axis=1) == fitted.hold_true).tolist(),
                                 f"{cfg.model} v{version}: hold-out accuracy {cand.accuracy:.3f}")
        put = lambda name, body: self.registry.put_artifact(cfg.model, version, name, body)
        artifacts = {
            "head.tflite": put("head.tflite", cand.tflite),
            "head.npz": put("head.npz", buf.getvalue()),
            "data.json": put("data.json", json.dumps(data, indent=1, sort_keys=True).encode()),
            "report.png": put("report.png", report),
        }
        meta = ModelMetadata(
            model=cfg.model, version=version, parent=parent.version if parent else None, created_at=utc_now(),
            labels=self.labels, input_size=cfg.input_size, preprocessing=PREPROCESSING,
            architecture={"name": "MobileNetV2", "alpha": cfg.alpha, "pooling": "avg",
                          "head": "Dense softmax (multinomial logistic regression, L-BFGS)"},
            backbone=backbone_info,
            data={k: data[k] for k in ("data_sha256", "dataset", "dataset_manifest_sha256", "counts", "ledger")}
                 | {"quarantined": sorted(agreed.quarantined), "note": note},
            params=cfg.params(),
            metrics={"holdout": cand.holdout, "fixes": cand.fixes, "evaluation": fitted.evaluation,
                     "parent_prequential": fitted.parent_prequential, "ceiling": fitted.ceiling,
                     "train_seconds": round(seconds, 2),
                     "stage_seconds": cand.seconds, "head_iterations": fitted.head.iterations},
            conversion=cand.parity,
            sizes={"head.tflite": len(cand.tflite), "backbone.tflite": backbone_info["tflite"]["bytes"],
                   "head.npz": artifacts["head.npz"]["bytes"]},
            artifacts=artifacts,
        )
        self.registry.commit(meta)
        self.emit("published", version, None, parent=meta.parent, data_sha256=data["data_sha256"],
                  holdout_accuracy=cand.accuracy, fixes=len(agreed.accepted), quarantined=list(agreed.quarantined),
                  head_bytes=len(cand.tflite), run_id=data["ledger"].get("run_id"))
        return meta


def backbone_info(fp: str, manifest: dict, source: str) -> dict:
    """The `backbone` block of a version's metadata, from the backbone's published manifest."""
    info = {"fingerprint": fp, "source": source, "weights_key": backbone_key(fp), "frozen": True,
            "embedding_dim": manifest["embedding_dim"],
            "tflite": {k: manifest[k] for k in ("key", "sha256", "bytes", "mode")}}
    tuned_from = (manifest.get("training") or {}).get("tuned_from")
    return info | ({"tuned_from": tuned_from} if tuned_from else {})


def honest(y: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict:
    """Accuracy on images a model never trained on, with its count and 95% Wilson interval."""
    right = int((probs.argmax(axis=1) == y).sum()) if len(y) else 0
    return {"n": int(len(y)), "right": right, "accuracy": round(right / len(y), 4) if len(y) else None,
            "ci95": wilson(right, int(len(y)))}


