"""Backbone embeddings of images, the trainer's main cost, computed once per (backbone, image).

Example:
    embedder = Embeddings(store, input_size=96, pool=ThreadPoolExecutor(8))
    x = embedder.embed(backbone, fingerprint, examples)      # (N, D): memory, then S3, then the backbone
    y = embedder.lite(backbone_info, examples)               # the same by backbone.tflite, as serving computes

A root backbone's embeddings are cached in S3 by (fingerprint, image sha256), and its dataset images in one
pack per fingerprint (1 GET instead of one per image, which cost 4.6 s of CPU for 1200 images). A fine-tuned
backbone's are `volatile`: kept in memory only, since tuned backbones come and go with versions.
"""
from __future__ import annotations

import io
import zipfile
from concurrent.futures import Executor

import numpy as np

from layers.errors import NotFound
from layers.images import preprocess, sha256_hex
from layers.registry import embedding_key, embedding_pack_key
from layers.serving.litert import LiteModel
from layers.store import BlobStore
from training_job import model as M
from training_job.examples import Example


class Embeddings:
    def __init__(self, store: BlobStore, input_size: int, pool: Executor) -> None:
        self.store, self.input_size, self._pool = store, input_size, pool
        self.volatile: set[str] = set()          # fingerprints whose embeddings stay in memory only (tuned)
        self._embedded: dict[tuple[str, str], np.ndarray] = {}     # (backbone fingerprint, image sha256) -> (D,)
        self._packed: dict[str, set[str]] = {}    # fingerprint -> the images in its S3 pack
        self._lite: dict[str, LiteModel] = {}     # fingerprint -> the published backbone.tflite, on LiteRT
        self._lite_embedded: dict[tuple[str, str], np.ndarray] = {}   # the same, from backbone.tflite

    def images(self, exs: list[Example]) -> np.ndarray:
        size = self.input_size
        arrays = list(self._pool.map(lambda e: preprocess(self.store.get(e.key).body, size), exs))
        return np.stack(arrays) if arrays else np.zeros((0, size, size, 3), np.float32)

    def embed(self, backbone, fp: str, exs: list[Example]) -> np.ndarray:
        """Embeddings kept in memory, cached in S3 (a root backbone's), computed only for images neither holds.
        A warm trainer reads nothing from S3 for them; a cold one reads the dataset's images in one pack and the
        voted images one by one."""
        volatile = fp in self.volatile
        if not volatile:
            self._unpack(fp)

        def cached(e: Example):
            hit = self._embedded.get((fp, e.sha256))
            if hit is not None or volatile:
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
            if not volatile:
                list(self._pool.map(save, zip(missing, new)))
            for i, vec in zip(missing, new):
                found[i] = vec
        self.remember(fp, exs, found)
        if not volatile:
            self._pack(fp, [e for e in exs if e.source == "dataset"])
        return np.stack(found).astype(np.float32) if found else np.zeros((0, 1), np.float32)

    def remember(self, fp: str, exs: list[Example], vectors) -> None:
        """Embeddings computed elsewhere (while fine-tuning), kept in memory."""
        for e, vec in zip(exs, vectors):
            self._embedded[(fp, e.sha256)] = vec

    def lite(self, info: dict, exs: list[Example]) -> np.ndarray:
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

    def forget(self, fps: set[str]) -> None:
        """Everything held for these backbones (gone from memory)."""
        for fp in fps:
            self._lite.pop(fp, None)
        self._embedded = {k: v for k, v in self._embedded.items() if k[0] not in fps}
        self._lite_embedded = {k: v for k, v in self._lite_embedded.items() if k[0] not in fps}

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
