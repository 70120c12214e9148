"""Immutable model versions: allocation, create-only artifacts, metadata.json written last, verified reads.

Example:
    versions = Versions(store)
    v = versions.allocate("engineer")                               # 1, 2, ... never the same twice
    versions.put_artifact("engineer", v, "model.tflite", tflite_bytes)
    versions.commit(ModelMetadata(...))                             # sha256s of the artifacts are recorded
    data = versions.fetch_artifact("engineer", v, "head.tflite")    # verified: ArtifactCorrupt on mismatch
    backbone = versions.fetch_backbone(meta)                        # the shared backbone, verified the same way

A version is a head (head.tflite: embedding -> probabilities) on a backbone (backbones/<fingerprint>/
backbone.tflite: image -> embedding) that every version trained on it shares; metadata.backbone["tflite"]
names the backbone's key and sha256. A version may instead carry one whole model.tflite (the portable form).

IMPORTANT: versions and backbones are immutable: every artifact key is written with a create-only PUT.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from layers.errors import ArtifactCorrupt, Conflict, NotFound, VersionNotFound
from layers.images import sha256_hex
from layers.registry.keys import CLAIM, METADATA, artifact_key, backbone_manifest_key, backbone_tflite_key
from layers.store import BlobStore


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())



@dataclass
class ModelMetadata:
    """Everything needed to trust, reproduce and compare one version (docs/formats.md, "metadata.json")."""
    model: str
    version: int
    parent: int | None
    created_at: str
    labels: list[str]
    input_size: int
    preprocessing: str
    architecture: dict[str, Any]
    backbone: dict[str, Any]
    data: dict[str, Any]
    params: dict[str, Any]
    metrics: dict[str, Any]
    conversion: dict[str, Any]
    sizes: dict[str, int] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "ModelMetadata":
        return cls(**json.loads(raw))


def trained_fixes_of(data: dict) -> set[str]:
    """The voted images a version's data.json says it trained on (its fixes in the train split)."""
    return {e["sha256"] for e in data.get("examples", []) if e.get("source") == "fix" and e.get("split") == "train"}


class Versions:
    def __init__(self, store: BlobStore) -> None:
        self.store = store

    # -- versions ---------------------------------------------------------------------------------------
    def _numbers(self, model: str) -> set[int]:
        out = set()
        for key in self.store.keys(f"models/{model}/"):
            part = key[len(f"models/{model}/"):].split("/", 1)[0]
            if part.isdigit():
                out.add(int(part))
        return out

    def allocate(self, model: str, owner: str = "") -> int:
        """A fresh version number, claimed with a create-only PUT: two writers never get the same one."""
        n = max(self._numbers(model), default=0) + 1
        while True:
            try:
                self.store.put(artifact_key(model, n, CLAIM), json.dumps({"owner": owner, "at": utc_now()}).encode(),
                               if_none_match="*")
                return n
            except Conflict:
                n += 1

    def put_artifact(self, model: str, version: int, name: str, data: bytes) -> dict[str, Any]:
        self.store.put(artifact_key(model, version, name), data, if_none_match="*")
        return {"sha256": sha256_hex(data), "bytes": len(data)}

    def commit(self, meta: ModelMetadata) -> None:
        """Write metadata.json last (create-only): from now on the version exists for readers."""
        self.store.put(artifact_key(meta.model, meta.version, METADATA), meta.to_json(), if_none_match="*",
                       content_type="application/json")

    def versions(self, model: str) -> list[int]:
        """Committed versions (metadata.json present), ascending."""
        return sorted(n for n in self._numbers(model) if self.store.exists(artifact_key(model, n, METADATA)))

    def metadata(self, model: str, version: int) -> ModelMetadata:
        try:
            return ModelMetadata.from_json(self.store.get(artifact_key(model, version, METADATA)).body)
        except NotFound as err:
            raise VersionNotFound(f"{model} v{version} does not exist (no metadata.json)", model=model, version=version) from err

    def fetch_artifact(self, model: str, version: int, name: str, meta: ModelMetadata | None = None) -> bytes:
        """The artifact's bytes, verified against the sha256 in metadata.json."""
        meta = meta or self.metadata(model, version)
        expected = meta.artifacts.get(name)
        if expected is None:
            raise ArtifactCorrupt(f"{model} v{version} has no artifact {name} in its metadata")
        try:
            data = self.store.get(artifact_key(model, version, name)).body
        except NotFound as err:
            raise ArtifactCorrupt(f"{model} v{version}: {name} is missing") from err
        if sha256_hex(data) != expected["sha256"]:
            raise ArtifactCorrupt(f"{model} v{version}: {name} sha256 mismatch", expected=expected["sha256"],
                                  actual=sha256_hex(data))
        return data

    # -- backbones (content-addressed by fingerprint, shared by versions) ------------------------------------
    def trained_fixes(self, model: str, version: int) -> set[str]:
        """The voted images a version was trained on: its data.json's fixes in the train split."""
        return trained_fixes_of(json.loads(self.fetch_artifact(model, version, "data.json")))

    def fetch_backbone(self, meta: ModelMetadata) -> bytes:
        """The version's backbone.tflite, verified against the sha256 its metadata records."""
        ref = meta.backbone.get("tflite") or {}
        if not ref.get("sha256") or not ref.get("key"):
            raise ArtifactCorrupt(f"{meta.model} v{meta.version} metadata names no backbone.tflite")
        try:
            data = self.store.get(ref["key"]).body
        except NotFound as err:
            raise ArtifactCorrupt(f"{meta.model} v{meta.version}: backbone {ref['key']} is missing") from err
        if sha256_hex(data) != ref["sha256"]:
            raise ArtifactCorrupt(f"{meta.model} v{meta.version}: backbone {ref['key']} sha256 mismatch",
                                  expected=ref["sha256"], actual=sha256_hex(data))
        return data

    def backbone_manifest(self, fingerprint: str) -> dict[str, Any] | None:
        """The published backbone's manifest (key, sha256, bytes, parity), or None when it is not published."""
        try:
            return json.loads(self.store.get(backbone_manifest_key(fingerprint)).body)
        except NotFound:
            return None

    def put_backbone(self, fingerprint: str, tflite: bytes) -> bytes:
        """Store backbone.tflite create-only; the bytes that are stored (another writer's, when it was first)."""
        key = backbone_tflite_key(fingerprint)
        try:
            self.store.put(key, tflite, if_none_match="*")
            return tflite
        except Conflict:
            return self.store.get(key).body

    def commit_backbone(self, fingerprint: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """Write the manifest create-only, after the bytes were checked; the manifest that is stored."""
        try:
            self.store.put(backbone_manifest_key(fingerprint), json.dumps(manifest, sort_keys=True).encode(),
                           if_none_match="*", content_type="application/json")
            return manifest
        except Conflict:
            return self.backbone_manifest(fingerprint) or manifest
