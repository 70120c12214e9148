"""Backbones: published once per fingerprint (weights, and backbone.tflite checked against Keras), loaded once
and kept, and fine-tuned from the root on the corrections.

Example:
    backbones = Backbones(store, registry, cfg, tracker, embedder)
    info = backbones.publish(backbone, "bootstrap: ...", sample)      # the `backbone` block of a version
    backbone, info = backbones.for_version(parent_meta)                # loaded from S3 once, kept warm
    backbone, info = backbones.tuned(examples, backbone, info, cfg, labels)   # the root, fine-tuned (or itself)

A version is its root backbone plus its data: a run with corrections fine-tunes the ROOT (never a tuned
parent), so the corrections are not tuned on again at every run. Tuned backbones come and go with versions:
the newest few stay in memory (TUNED_KEPT), with their embeddings, which are never cached in S3.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from layers.images import sha256_hex
from layers.registry import Registry, backbone_key, backbone_tflite_key, utc_now
from layers.serving.litert import LiteModel
from layers.store import BlobStore
from training_job import head as H, model as M
from training_job.config import TrainConfig
from training_job.convert import embedding_parity, to_tflite
from training_job.embeddings import Embeddings
from training_job.examples import Example
from training_job.tracking import Tracker

TUNED_KEPT = 3


class Backbones:
    def __init__(self, store: BlobStore, registry: Registry, cfg: TrainConfig, tracker: Tracker,
                 embedder: Embeddings) -> None:
        self.store, self.registry, self.cfg, self.tracker, self.embedder = store, registry, cfg, tracker, embedder
        self._held: dict[str, tuple[object, dict]] = {}    # fingerprint -> (Keras backbone, its info)
        self._tuned: list[str] = []              # fine-tuned backbones' fingerprints, oldest first

    def publish(self, backbone, source: str, sample: list[Example], training: dict | None = None) -> dict:
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
            calib = self.embedder.images(sample[:200]) if cfg.quantize == "int8" else None
            stored = self.registry.put_backbone(fp, to_tflite(backbone, cfg.quantize, calib))
            x = self.embedder.images(sample[:32])
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
        self._held[fp] = (backbone, info)
        return info

    def for_version(self, meta):
        """The frozen backbone a version was trained on, loaded from S3 once and kept."""
        cfg = TrainConfig(**{**self.cfg.params(), "base": "none", "alpha": meta.architecture["alpha"],
                             "input_size": meta.input_size})
        return self._load(meta.backbone, lambda path: M.build_backbone(cfg, weights_path=path))

    def _load(self, info: dict, build):
        """A published backbone: its weights, from S3, into the model `build(weights_path)` makes; checked
        against its fingerprint, and kept."""
        fp = info["fingerprint"]
        if info.get("tuned_from"):
            self._remember_tuned(fp)
        if fp not in self._held:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "backbone.weights.h5")
                with open(path, "wb") as f:
                    f.write(self.store.get(info["weights_key"]).body)
                backbone = build(path)
            backbone.trainable = False
            if M.fingerprint(backbone) != fp:
                raise RuntimeError(f"backbone {info['weights_key']} does not match fingerprint {fp}")
            self._held[fp] = (backbone, info)
        return self._held[fp]

    def root_of(self, backbone, info: dict):
        """The backbone a tuned backbone was fine-tuned from (itself, when it was not tuned)."""
        root = info.get("tuned_from")
        if not root:
            return backbone, info
        manifest = self.registry.backbone_manifest(root)
        if manifest is None:
            raise RuntimeError(f"backbone {info['fingerprint']} names root {root}, which is not published")
        return self._load(backbone_info(root, manifest, manifest.get("training", {}).get("source", "")),
                          lambda path: M.like(backbone, weights_path=path))

    def tuned(self, exs: list[Example], backbone, info: dict, cfg: TrainConfig, labels: list[str]):
        """The backbone a version on `exs` is trained on: the root backbone fine-tuned on the dataset's train
        split and the corrections (cfg.tune_epochs), published once per fingerprint; the root itself when there
        are no corrections or tuning is off."""
        root, root_info = self.root_of(backbone, info)
        train = [e for e in exs if e.split == "train"]
        fixes = sum(e.source == "fix" for e in train)
        if cfg.tune_epochs <= 0 or not fixes:
            return root, root_info
        t0 = time.perf_counter()
        label_idx = {l: i for i, l in enumerate(labels)}
        y = np.array([label_idx[e.label] for e in train], int)
        w = H.example_weights(y, np.array([e.source == "fix" for e in train], bool), cfg.fix_weight)
        start = H.fit_head(self.embedder.embed(root, root_info["fingerprint"], train), y, len(labels), cfg, weights=w)
        x = self.embedder.images(train)
        new = M.tune_backbone(root, x, y, w, start, cfg)
        fp = M.fingerprint(new)
        self._remember_tuned(fp)
        self.embedder.remember(fp, train, M.embed(new, x))
        del x
        return new, self.publish(new, f"{root_info['fingerprint'][:12]} fine-tuned on {fixes} corrections",
                                 train, {"source": "fine-tuned", "tuned_from": root_info["fingerprint"],
                                         "corrections": fixes, "epochs": cfg.tune_epochs,
                                         "learning_rate": cfg.tune_learning_rate,
                                         "seconds": round(time.perf_counter() - t0, 1)})

    def _remember_tuned(self, fp: str) -> None:
        """The newest TUNED_KEPT tuned backbones stay in memory, with their embeddings (volatile: never cached in
        S3, as a root backbone's are)."""
        if fp in self._tuned:
            return
        self._tuned.append(fp)
        drop, self._tuned = set(self._tuned[:-TUNED_KEPT]), self._tuned[-TUNED_KEPT:]
        self.embedder.volatile = set(self._tuned)
        if drop:
            for gone in drop:
                self._held.pop(gone, None)
            self.embedder.forget(drop)


def backbone_info(fp: str, manifest: dict, source: str) -> dict:
    """The `backbone` block of a version's metadata, from the backbone's published manifest."""
    info = {"fingerprint": fp, "source": source, "weights_key": backbone_key(fp), "frozen": True,
            "embedding_dim": manifest["embedding_dim"],
            "tflite": {k: manifest[k] for k in ("key", "sha256", "bytes", "mode")}}
    tuned_from = (manifest.get("training") or {}).get("tuned_from")
    return info | ({"tuned_from": tuned_from} if tuned_from else {})
