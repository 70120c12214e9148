"""The control document: which versions serve, with what weights, mirrored or in the rendezvous set; its
conditional edits and their audit log; and the pure policies of registration and retention.

Example:
    control = Registry(store, AuditLog(db))        # layers.registry: Versions and Control on one store
    doc, etag = control.control()
    control.update_control(lambda doc: "describe the edit" or None, actor="slack:T1:U1")   # CAS + audit
    control.register("engineer", 7, Policy())      # the canary candidate: 0%, mirrored, retained

IMPORTANT: the document changes only by compare-and-swap on its ETag (If-Match), and every change is then
appended to the audit log in PostgreSQL (layers.registry.audit), one entry per model whose route it moved. A
lost race is retried on the new document, never written over it. A registry opened without an audit log
reads, and refuses to change anything.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

from layers.analysis.canary import AutoPromotion
from layers.errors import Conflict, NotFound, Unavailable
from layers.registry.audit import AuditEntry, AuditTrail
from layers.registry.keys import CONTROL_KEY
from layers.registry.versions import utc_now
from layers.store import BlobStore


@dataclass
class ModelRoute:
    """Routing for one model: traffic weights (percent, summing to 100 when any), mirror and rendezvous sets.
    `registered_through` is the highest version ever registered: a committed version above it is an orphan
    that the reconciler registers; one at or below it that the route no longer names was retired."""
    weights: dict[int, int] = field(default_factory=dict)
    mirror: list[int] = field(default_factory=list)
    rendezvous: list[int] = field(default_factory=list)
    registered_through: int = 0
    auto: AutoPromotion = field(default_factory=AutoPromotion)
    ensemble: list[int] = field(default_factory=list)   # the dating app's versions ([]: the two with most traffic)
    policy: str = ""                  # the rendezvous policy by default ("": the functions' RENDEZVOUS_POLICY)
    preferred: int | None = None      # the version the `preferred` policy waits for

    @property
    def deployed(self) -> list[int]:
        return sorted(set(self.weights) | set(self.mirror) | set(self.rendezvous) | set(self.ensemble))

    @property
    def live(self) -> int | None:
        """The version with the most traffic (the newest among equals); None when nothing has traffic."""
        serving = [(w, v) for v, w in self.weights.items() if w > 0]
        return max(serving)[1] if serving else None

    def to_json(self) -> dict:
        return {"weights": {str(k): v for k, v in sorted(self.weights.items())}, "mirror": sorted(self.mirror),
                "rendezvous": sorted(self.rendezvous), "registered_through": self.registered_through,
                "auto": self.auto.to_json(), "policy": self.policy, "preferred": self.preferred,
                "ensemble": sorted(self.ensemble)}

    @classmethod
    def from_json(cls, data: dict) -> "ModelRoute":
        route = cls(weights={int(k): int(v) for k, v in (data.get("weights") or {}).items()},
                    mirror=[int(v) for v in data.get("mirror") or []],
                    rendezvous=[int(v) for v in data.get("rendezvous") or []],
                    auto=AutoPromotion.from_json(data.get("auto")), policy=str(data.get("policy") or ""),
                    ensemble=[int(v) for v in data.get("ensemble") or []],
                    preferred=int(data["preferred"]) if data.get("preferred") is not None else None)
        route.registered_through = int(data.get("registered_through") or max(route.deployed, default=0))
        return route


def retain(route: ModelRoute, keep_recent: int) -> ModelRoute:
    """The retention rule (pure): the versions with traffic or in the ensemble, plus at most `keep_recent` of
    the newest other versions the route names, stay deployed; the rest are retired (still in S3, never loaded)."""
    live = {v for v, w in route.weights.items() if w > 0} | set(route.ensemble)
    others = sorted(set(route.deployed) - live, reverse=True)[:max(0, keep_recent)]
    kept = live | set(others)
    return ModelRoute(weights={v: w for v, w in route.weights.items() if v in kept},
                      mirror=sorted(v for v in route.mirror if v in kept),
                      rendezvous=sorted(kept), registered_through=route.registered_through, auto=route.auto,
                      policy=route.policy, preferred=route.preferred if route.preferred in kept else None,
                      ensemble=list(route.ensemble))


@dataclass
class ControlDoc:
    models: dict[str, ModelRoute] = field(default_factory=dict)
    updated_at: str = ""
    updated_by: str = ""
    revision: int = 0

    def to_json(self) -> bytes:
        return json.dumps({"models": {m: r.to_json() for m, r in sorted(self.models.items())},
                           "updated_at": self.updated_at, "updated_by": self.updated_by,
                           "revision": self.revision}, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "ControlDoc":
        data = json.loads(raw)
        return cls(models={m: ModelRoute.from_json(r) for m, r in (data.get("models") or {}).items()},
                   updated_at=data.get("updated_at", ""), updated_by=data.get("updated_by", ""),
                   revision=int(data.get("revision", 0)))


DEFAULT_KEEP_RECENT = 3


@dataclass(frozen=True)
class Policy:
    """How a newly published version is registered. Default: the canary candidate: 0% of traffic, mirrored
    (shadow-scored on live requests; it replaces the previous candidate in the mirror set), in the rendezvous
    set. The very first version of a model takes 100% (there is nothing else to serve). Then `retain` keeps
    the live versions plus `keep_recent` others."""
    weight: int = 0
    rendezvous: bool = True
    mirror: bool = True
    keep_recent: int = DEFAULT_KEEP_RECENT


class Control:
    def __init__(self, store: BlobStore) -> None:
        self.store = store

    # -- the control document ---------------------------------------------------------------------------
    def control(self) -> tuple[ControlDoc, str | None]:
        """The control document and its ETag (None when it does not exist yet). A document that is not one
        (edited by hand, say) is Unavailable, like a store that is down: readers keep what they last read, and
        nobody writes over it until it is repaired."""
        try:
            blob = self.store.get(CONTROL_KEY)
        except NotFound:
            return ControlDoc(), None
        try:
            return ControlDoc.from_json(blob.body), blob.etag
        except (ValueError, TypeError, AttributeError, KeyError) as err:
            raise Unavailable(f"the control document {CONTROL_KEY} is not valid ({type(err).__name__}: {err}); "
                              f"its last good routes are in the audit log (`/models history`)") from err

    def update_control(self, change: Callable[[ControlDoc], str | None], actor: str, retries: int = 20) -> ControlDoc:
        """Apply `change` (which edits the doc in place and returns a one-line description, or None when there
        is nothing to change) with a compare-and-swap on the ETag, retrying on a lost race; append the change
        to the audit log."""
        for _ in range(retries):
            doc, etag = self.control()
            before = doc.to_json()
            what = change(doc)
            if what is None:
                return doc
            doc.revision += 1
            doc.updated_at, doc.updated_by = utc_now(), actor
            try:
                if etag is None:
                    self.store.put(CONTROL_KEY, doc.to_json(), if_none_match="*", content_type="application/json")
                else:
                    self.store.put(CONTROL_KEY, doc.to_json(), if_match=etag, content_type="application/json")
            except Conflict:
                continue
            self.trail().append(route_changes(json.loads(before), json.loads(doc.to_json()), actor, what, doc.revision))
            return doc
        raise Conflict(f"control document kept changing; gave up after {retries} tries")

    def register(self, model: str, version: int, policy: Policy = Policy(), actor: str = "training-job") -> ControlDoc:
        """Name a committed version in the control document by `policy`. Idempotent: a version the document
        names is left alone, and retention drops again a retired one (K newer versions exist). Versions may
        register out of order (two publishers); the newest is the canary candidate."""
        def change(doc: ControlDoc) -> str | None:
            before = doc.models.get(model, ModelRoute()).to_json()
            route = doc.models.setdefault(model, ModelRoute())
            if version in route.deployed:
                return None
            first = route.live is None
            route.weights[version] = 100 if first else policy.weight
            if policy.rendezvous and version not in route.rendezvous:
                route.rendezvous.append(version)
            if policy.mirror and not first and version > max(route.mirror, default=0):
                route.mirror = [version]
            route.registered_through = max(route.registered_through, version)
            doc.models[model] = retain(route, policy.keep_recent)
            if doc.models[model].to_json() == before:
                return None
            return f"register {model} v{version} ({'100%, first version' if first else f'{policy.weight}%, canary candidate'})"
        return self.update_control(change, actor)

    def live_version(self, model: str) -> int | None:
        route = self.control()[0].models.get(model)
        return route.live if route else None

    def trail(self) -> AuditTrail:
        """The audit log every change is written to (layers.registry.audit)."""
        if getattr(self, "audit_log", None) is None:
            raise RuntimeError("this registry was opened without an audit log, so it cannot change the control "
                               "document: Registry(store, AuditLog(db))")
        return self.audit_log


def route_changes(before: dict, after: dict, actor: str, what: str, revision: int) -> list[AuditEntry]:
    """One audit entry per model whose route the change moved (one with model "" when it moved none). Pure."""
    b, a = before.get("models", {}), after.get("models", {})
    moved = [m for m in sorted(set(b) | set(a)) if b.get(m) != a.get(m)]
    return [AuditEntry(model=m, actor=actor, change=what, revision=revision, before=b.get(m), after=a.get(m))
            for m in moved] or [AuditEntry(model="", actor=actor, change=what, revision=revision)]
