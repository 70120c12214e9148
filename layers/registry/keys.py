"""The S3 key layout of the registry and of the content-addressed stores (docs/formats.md is the reference).

    models/<model>/<n>/.claim           create-only marker that allocates version n (If-None-Match: *)
    models/<model>/<n>/<artifact>       head.tflite, head.npz, data.json, report.png: create-only
    models/<model>/<n>/metadata.json    written LAST: a version exists for readers only once this exists
    backbones/<fingerprint>/backbone.weights.h5   frozen base weights (training only)
    backbones/<fingerprint>/backbone.tflite       the same backbone for LiteRT, shared by every version on it
    backbones/<fingerprint>/backbone.json         its sha256, size and parity, written after it (create-only)
    cache/embeddings/<fingerprint>/<image sha256>.npy
    cache/embeddings/<fingerprint>/dataset.npz   the dataset images' embeddings in one object (a cold trainer's read)
    images/<sha256>                     content-addressed images people voted on: kept
    decoys/<sha256>                     /predict's images, for replay: expire after DECOY_RETENTION_DAYS
    control/routing.json                the control document (If-Match writes only)
"""
from __future__ import annotations

CONTROL_KEY = "control/routing.json"
DECOY_PREFIX = "decoys/"
METADATA = "metadata.json"
CLAIM = ".claim"


def version_prefix(model: str, version: int) -> str:
    return f"models/{model}/{version}/"


def artifact_key(model: str, version: int, name: str) -> str:
    return f"{version_prefix(model, version)}{name}"


def backbone_key(fingerprint: str) -> str:
    return f"backbones/{fingerprint}/backbone.weights.h5"


def backbone_tflite_key(fingerprint: str) -> str:
    return f"backbones/{fingerprint}/backbone.tflite"


def backbone_manifest_key(fingerprint: str) -> str:
    return f"backbones/{fingerprint}/backbone.json"


def embedding_key(fingerprint: str, image_sha256: str) -> str:
    return f"cache/embeddings/{fingerprint}/{image_sha256}.npy"


def embedding_pack_key(fingerprint: str) -> str:
    return f"cache/embeddings/{fingerprint}/dataset.npz"


def decoy_key(image_sha256: str) -> str:
    return f"{DECOY_PREFIX}{image_sha256}"


def image_key(image_sha256: str) -> str:
    return f"images/{image_sha256}"
