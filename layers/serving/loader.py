"""A servable version: a head on a shared backbone (or one whole model), loaded, verified and warmed up.

Example:
    loader = Loader(registry, cache_dir="/tmp/afterdark-models", interpreters=2)
    v3 = loader.load("engineer", 3)              # metadata -> backbone + head, sha256-verified, warmed up
    probs = v3.predict(batch)                    # (N, size, size, 3) -> (N, n_labels)
    emb = v3.embed(batch); v3.head_predict(emb)  # the same, in two steps: versions with equal `shares`
                                                 # can use one embedding (rendezvous, shadow scoring)
    loader.keep({v.backbone_sha256 for v in serving})   # drop the backbones no loaded version uses

Why two parts: versions trained on one frozen backbone differ only in a small Dense head. The backbone is
published once (content-addressed by its fingerprint), each version adds a few KiB, and k versions of one
request cost one backbone pass plus k tiny heads. A version with a whole model.tflite (the portable form, see
`python -m training_job export`) is served too: its "embedding" is the input itself.

IMPORTANT: a LiteRT Interpreter is not thread-safe. Each part owns `interpreters` of them in a pool; an
invocation leases one. Backbones are shared between the versions that name the same sha256.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from layers.errors import ArtifactCorrupt
from layers.images import sha256_hex
from layers.registry import ModelMetadata, Registry
from layers.serving.litert import LiteModel


class InterpreterPool:
    """`size` interpreters over the same model bytes; `lease()` hands one out at a time."""

    def __init__(self, content: bytes, size: int) -> None:
        self._free: queue.Queue[LiteModel] = queue.Queue()
        for _ in range(max(1, size)):
            self._free.put(LiteModel(content))
        first = self._free.queue[0]
        self.input_shape, self.n_outputs = first.input_shape, first.n_outputs

    @contextmanager
    def lease(self) -> Iterator[LiteModel]:
        m = self._free.get()
        try:
            yield m
        finally:
            self._free.put(m)

    def run(self, batch: np.ndarray) -> np.ndarray:
        with self.lease() as m:
            return m.predict(batch)


@dataclass(frozen=True)
class Loaded:
    model: str
    version: int
    meta: ModelMetadata
    head: InterpreterPool                 # embedding -> probabilities (or, without a backbone, the whole model)
    sha256: str                           # of head.tflite (or model.tflite)
    loaded_at: float
    backbone: InterpreterPool | None = None
    backbone_sha256: str | None = None

    @property
    def input_size(self) -> int:
        return self.meta.input_size

    @property
    def labels(self) -> list[str]:
        return self.meta.labels

    @property
    def shares(self) -> tuple[str, int] | None:
        """Versions with the same value compute the same embedding of an image (None: shares with nobody)."""
        return (self.backbone_sha256, self.input_size) if self.backbone_sha256 else None

    def embed(self, batch: np.ndarray) -> np.ndarray:
        return self.backbone.run(batch) if self.backbone is not None else batch

    def head_predict(self, embeddings: np.ndarray) -> np.ndarray:
        return self.head.run(embeddings)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.head_predict(self.embed(batch))


class Loader:
    """Loads versions for serving, verified against their metadata, through a local file cache; holds each
    backbone once for every version that shares it."""

    def __init__(self, registry: Registry, cache_dir: str, interpreters: int = 1) -> None:
        self.registry, self.cache_dir, self.interpreters = registry, Path(cache_dir), interpreters
        self._backbones: dict[str, InterpreterPool] = {}
        self._lock = threading.Lock()

    def load(self, model: str, version: int) -> Loaded:
        meta = self.registry.metadata(model, version)
        if "head.tflite" in meta.artifacts:
            name, backbone_sha = "head.tflite", (meta.backbone.get("tflite") or {}).get("sha256")
            if not backbone_sha:
                raise ArtifactCorrupt(f"{model} v{version} has a head but its metadata names no backbone.tflite")
            backbone = self._backbone(backbone_sha, lambda: self.registry.fetch_backbone(meta))
        elif "model.tflite" in meta.artifacts:
            name, backbone_sha, backbone = "model.tflite", None, None
        else:
            raise ArtifactCorrupt(f"{model} v{version} metadata names neither head.tflite nor model.tflite")
        sha = meta.artifacts[name]["sha256"]
        content = self._cached(Path(model) / str(version) / f"{sha}.tflite", sha,
                               lambda: self.registry.fetch_artifact(model, version, name, meta))
        loaded = Loaded(model, version, meta, InterpreterPool(content, self.interpreters), sha, time.time(),
                        backbone, backbone_sha)
        self._check(loaded)
        return loaded

    def keep(self, backbone_sha256s: set[str]) -> None:
        """Forget the backbones no loaded version uses (versions being served keep their own reference)."""
        with self._lock:
            for sha in set(self._backbones) - backbone_sha256s:
                del self._backbones[sha]

    @property
    def backbones(self) -> list[str]:
        return sorted(self._backbones)

    def _backbone(self, sha: str, fetch: Callable[[], bytes]) -> InterpreterPool:
        with self._lock:
            pool = self._backbones.get(sha)
        if pool is None:
            pool = InterpreterPool(self._cached(Path("backbones") / f"{sha}.tflite", sha, fetch), self.interpreters)
            with self._lock:
                pool = self._backbones.setdefault(sha, pool)
        return pool

    def _cached(self, rel: Path, sha: str, fetch: Callable[[], bytes]) -> bytes:
        """The bytes from the local cache when they hash right, else fetched (verified) and cached."""
        path = self.cache_dir / rel
        content = path.read_bytes() if path.exists() else None
        if content is None or sha256_hex(content) != sha:
            content = fetch()
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
            tmp.write_bytes(content)
            tmp.replace(path)
        return content

    @staticmethod
    def _check(loaded: Loaded) -> None:
        """One warm-up inference: the parts fit together and give finite probabilities, one per label."""
        meta = loaded.meta
        want = (meta.input_size, meta.input_size, 3)
        first = loaded.backbone if loaded.backbone is not None else loaded.head
        if first.input_shape != want:
            raise ArtifactCorrupt(f"{meta.model} v{meta.version} takes {first.input_shape}, metadata says {want}")
        if loaded.backbone is not None and loaded.head.input_shape != (loaded.backbone.n_outputs,):
            raise ArtifactCorrupt(f"{meta.model} v{meta.version}: head takes {loaded.head.input_shape}, "
                                  f"backbone gives ({loaded.backbone.n_outputs},)")
        probs = loaded.predict(np.zeros((1, *want), np.float32))
        if probs.shape != (1, len(meta.labels)) or not np.isfinite(probs).all():
            raise ArtifactCorrupt(f"{meta.model} v{meta.version} warm-up gave {probs!r}")


def score_all(loaded: list[Loaded], inputs: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Each version's probabilities for one image, the backbone run once per (backbone, input size).
    `inputs` maps input size -> the preprocessed image (size, size, 3)."""
    embeddings: dict[tuple[str, int], np.ndarray] = {}
    out = {}
    for l in loaded:
        x = inputs[l.input_size][None, ...]
        if l.shares is None:
            out[l.version] = l.predict(x)[0]
            continue
        if l.shares not in embeddings:
            embeddings[l.shares] = l.embed(x)
        out[l.version] = l.head_predict(embeddings[l.shares])[0]
    return out
