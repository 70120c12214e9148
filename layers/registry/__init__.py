"""The model registry in S3: immutable versions and the routing control document.

    keys.py       the S3 key layout (docs/formats.md is the reference)
    versions.py   Versions: allocate, put_artifact, commit (metadata.json last), versions, metadata, fetch_artifact;
                  shared backbones: put_backbone, commit_backbone, backbone_manifest, fetch_backbone
    control.py    Control: the control document, update_control (CAS + audit), register, live_version;
                  ModelRoute, ControlDoc, Policy and the pure retention rule `retain`
    audit.py      AuditLog: every applied change and refused attempt, in PostgreSQL (history, rollback)
    canary_state.py  CanaryBoard: the canary's evidence so far, as the trainer's analyst last judged it
    dataops.py    DataOps: the verbs' conditional, audited edits (route, canary, promote, rollback, ...)
    commands.py   the /models verbs: parsing (text, API), authorising, running, tables
    admin.py      ModelsAdmin: /models' service (the verbs, the honest comparison, the voters, `train`); it
                  composes the ledger and analysis, so this package's __init__ does not import it

Example:
    reg = Registry(store, AuditLog(db))                        # both, on one store; changes audited
    v = reg.allocate("engineer"); ...; reg.commit(meta)
    reg.register("engineer", v, Policy())
"""
from layers.registry.audit import AuditEntry, AuditLog, AuditTrail
from layers.registry.control import AutoPromotion, Control, ControlDoc, DEFAULT_KEEP_RECENT, ModelRoute, Policy, retain
from layers.registry.keys import (CLAIM, CONTROL_KEY, METADATA, artifact_key, backbone_key,
                                  backbone_manifest_key, backbone_tflite_key,
                                  decoy_key, embedding_key, embedding_pack_key, image_key, version_prefix)
from layers.registry.versions import ModelMetadata, Versions, utc_now
from layers.store import BlobStore


class Registry(Versions, Control):
    """Versions and the control document over one store; changes to the document are written to `audit`
    (without one, the registry only reads the document)."""

    def __init__(self, store: BlobStore, audit: AuditTrail | None = None) -> None:
        self.store, self.audit_log = store, audit


__all__ = ["AuditEntry", "AuditLog", "AuditTrail", "AutoPromotion", "Registry", "Versions", "Control", "ControlDoc", "ModelRoute", "Policy", "retain", "ModelMetadata",
           "DEFAULT_KEEP_RECENT", "CLAIM", "CONTROL_KEY", "METADATA", "artifact_key", "backbone_key", "backbone_manifest_key", "backbone_tflite_key",
           "decoy_key", "embedding_key", "embedding_pack_key", "image_key", "version_prefix", "utc_now"]
