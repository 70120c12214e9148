"""The model registry in S3: immutable versions and the routing control document.

    keys.py       the S3 key layout (docs/formats.md is the reference)
    versions.py   Versions: allocate, put_artifact, commit (metadata.json last), versions, metadata, fetch_artifact;
                  shared backbones: put_backbone, commit_backbone, backbone_manifest, fetch_backbone
    control.py    Control: the control document, update_control (CAS + audit), register, live_version;
                  ModelRoute, ControlDoc, Policy and the pure retention rule `retain`

Example:
    reg = Registry(store)                                      # both, on one store
    v = reg.allocate("engineer"); ...; reg.commit(meta)
    reg.register("engineer", v, Policy())
"""
from layers.registry.control import AutoPromotion, Control, ControlDoc, DEFAULT_KEEP_RECENT, ModelRoute, Policy, retain
from layers.registry.keys import (AUDIT_PREFIX, CLAIM, CONTROL_KEY, METADATA, artifact_key, backbone_key,
                                  backbone_manifest_key, backbone_tflite_key,
                                  embedding_key, image_key, version_prefix)
from layers.registry.versions import ModelMetadata, Versions, utc_now
from layers.store import BlobStore


class Registry(Versions, Control):
    """Versions and the control document over one store."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store


__all__ = ["AutoPromotion", "Registry", "Versions", "Control", "ControlDoc", "ModelRoute", "Policy", "retain", "ModelMetadata",
           "DEFAULT_KEEP_RECENT", "AUDIT_PREFIX", "CLAIM", "CONTROL_KEY", "METADATA", "artifact_key", "backbone_key", "backbone_manifest_key", "backbone_tflite_key",
           "embedding_key", "image_key", "version_prefix", "utc_now"]
