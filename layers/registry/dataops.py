"""DataOps on one model: the versions with their metrics and roles, one version in detail, and the audited,
conditional edits of the control document (route, canary, mirror, promote, rollback), with their history.

Example:
    ops = DataOps(Registry(store), "engineer")
    ops.list()                                   # [VersionRow(version=1, role="live", weight=100, ...), ...]
    ops.route({1: 90, 3: 10}, actor="api:ci")    # validated, one If-Match write, audited
    ops.rollback(actor="slack:T1:U1")            # the route as it was before this model's last change

Roles: `live` (the most traffic), `canary` (some traffic), `mirror` (no traffic, shadow-scored), `standby`
(loaded for rendezvous only), `new` (committed, not registered yet: the trainer or the reconciler is about to),
`rejected` (taken back out by the canary policy), `retired` (committed, named nowhere, never loaded).

IMPORTANT:
  * Every edit is ONE compare-and-swap on the document it was decided on: if someone else changed it in
    between, the edit fails with Conflict (409) and nothing is written. The caller re-reads and decides again;
    no edit is ever lost or applied to a document its author did not see.
  * Nothing routes traffic to a version that is not committed or failed its gates (metadata.conversion.ok).
  * Who may edit is the caller's decision (the `models` function: admin scope, or the Slack admin list);
    `refuse` writes a refused attempt to the audit log with its principal, as edits are.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from layers.errors import BadInput, Conflict, VersionNotFound
from layers.registry.control import DEFAULT_KEEP_RECENT, Control, ControlDoc, ModelRoute, retain
from layers.registry.audit import AuditEntry
from layers.registry.versions import ModelMetadata, Versions

if TYPE_CHECKING:
    from layers.ledger.limits import RateLimiter

RENDEZVOUS_POLICIES = ("best-confidence", "fastest", "preferred")      # layers.serving.rendezvous.POLICIES
ROLES = ("live", "canary", "mirror", "standby", "new", "rejected", "retired")
HISTORY_MAX = 200         # entries on one page of `history`
EDIT_RETRIES = 10         # compare-and-swap tries of one edit while its model's route stays as it was


@dataclass(frozen=True)
class VersionRow:
    version: int
    role: str
    weight: int
    accuracy: float | None           # hold-out accuracy
    ceiling: float | None            # what the data allows: a classifier on the generator's cues (synthetic data)
    fix_accuracy: float | None       # accuracy on the images people voted on
    fixes: int                       # voted images it trained on
    parent: int | None
    created_at: str

    def to_json(self) -> dict:
        return asdict(self)


def role_of(route: ModelRoute, version: int) -> str:
    weight = route.weights.get(version, 0)
    if weight > 0:
        return "live" if version == route.live else "canary"
    if version in route.mirror:
        return "mirror"
    if version in route.auto.rejected:            # rolled back or superseded by the canary policy
        return "rejected"
    if version in route.deployed:
        return "standby"
    if version > route.registered_through:
        return "new"
    return "retired"


def parse_weights(spec: list[str] | dict) -> dict[int, int]:
    """{"1": 90, "3": 10} or ["1=90", "3=10"] -> {1: 90, 3: 10}; BadInput otherwise."""
    pairs = spec.items() if isinstance(spec, dict) else (s.split("=", 1) if "=" in s else (s, "") for s in spec)
    out: dict[int, int] = {}
    for v, w in pairs:
        try:
            version, weight = int(v), int(w)
        except (TypeError, ValueError):
            raise BadInput(f"weights are VERSION=PERCENT pairs, such as 1=90 3=10; not {v}={w}") from None
        if not 0 <= weight <= 100 or version < 1:
            raise BadInput(f"v{version}={weight}: a weight is a percentage from 0 to 100")
        out[version] = weight
    if sum(out.values()) != 100:
        raise BadInput(f"the weights add up to {sum(out.values())}, not 100")
    return out


class DataOps:
    def __init__(self, registry, model: str, keep_recent: int = DEFAULT_KEEP_RECENT,
                 refusals: "RateLimiter | None" = None) -> None:
        """`refusals`: counts each principal's refused attempts; past its limit a refusal is a 429 and is not
        written (anyone who can call /models can be refused, and must not be able to flood the log)."""
        self.versions: Versions = registry
        self.control: Control = registry
        self.model, self.keep_recent, self.refusals = model, keep_recent, refusals
        self._meta: dict[int, ModelMetadata] = {}        # versions are immutable: their metadata is cached

    # -- reading -----------------------------------------------------------------------------------------
    def metadata(self, version: int) -> ModelMetadata:
        if version not in self._meta:
            self._meta[version] = self.versions.metadata(self.model, version)
        return self._meta[version]

    def route(self) -> ModelRoute:
        return self.control.control()[0].models.get(self.model, ModelRoute())

    def list(self) -> list[VersionRow]:
        route = self.route()
        rows = []
        for v in self.versions.versions(self.model):
            m = self.metadata(v)
            rows.append(VersionRow(version=v, role=role_of(route, v), weight=route.weights.get(v, 0),
                                   accuracy=m.metrics.get("holdout", {}).get("accuracy"),
                                   ceiling=(m.metrics.get("ceiling") or {}).get("accuracy"),
                                   fix_accuracy=m.metrics.get("fixes", {}).get("accuracy"),
                                   fixes=int(m.data.get("counts", {}).get("fixes", 0)), parent=m.parent,
                                   created_at=m.created_at))
        return rows

    def show(self, version: int) -> dict:
        m = self.metadata(version)
        lineage, seen, parent = [], {version}, m.parent
        while parent is not None and parent not in seen:           # the chain of parents, newest first
            seen.add(parent)
            lineage.append(parent)
            try:
                parent = self.metadata(parent).parent
            except VersionNotFound:
                break
        return {"version": version, "role": role_of(self.route(), version), "lineage": lineage,
                "metrics": m.metrics, "data": m.data, "params": m.params, "conversion": m.conversion,
                "backbone": m.backbone, "artifacts": m.artifacts, "created_at": m.created_at}

    def history(self, limit: int = 20, before: int | None = None) -> dict:
        """This model's audit entries, newest first (edits and refused attempts), a page at a time: `before`
        is the previous page's `next` cursor."""
        if not 1 <= limit <= HISTORY_MAX:
            raise BadInput(f"limit is 1 to {HISTORY_MAX}")
        entries = self.control.trail().page(self.model, limit + 1, before)
        shown = entries[:limit]
        return {"history": [e.summary() for e in shown],
                "next": shown[-1].id if len(entries) > limit else None}

    def compare(self, a: int, b: int) -> dict:
        ma, mb = self.metadata(a), self.metadata(b)

        def figures(m: ModelMetadata) -> dict:
            hold, fixes = m.metrics.get("holdout", {}), m.metrics.get("fixes", {})
            ev = m.metrics.get("evaluation") or {}
            return {"version": m.version, "accuracy": hold.get("accuracy"), "n": hold.get("n"),
                    "evaluation_accuracy": ev.get("accuracy"), "evaluation_n": ev.get("n"), "evaluation_ci95": ev.get("ci95"),
                    "parent_prequential": m.metrics.get("parent_prequential"),
                    # accuracy on the voted images it TRAINED on: whether it learnt them, not how good it is
                    "fix_accuracy": fixes.get("accuracy"), "fix_n": fixes.get("n"), "per_class": hold.get("per_class"),
                    "parent": m.parent, "data_sha256": m.data.get("data_sha256"),
                    "watermark": (m.data.get("ledger") or {}).get("watermark")}
        fa, fb = figures(ma), figures(mb)
        delta = lambda k: (None if fa[k] is None or fb[k] is None else round(fb[k] - fa[k], 4))
        return {"a": fa, "b": fb, "delta": {"accuracy": delta("accuracy"), "fix_accuracy": delta("fix_accuracy")}}

    # -- editing (one conditional write each) --------------------------------------------------------------
    # `revision`: the document revision the caller decided on (the API's If-Match); another one is a Conflict.

    def set_route(self, weights: dict[int, int], actor: str, revision: int | None = None) -> ControlDoc:
        self._servable(weights)
        return self._edit(lambda route: self._weigh(route, weights), actor, revision)

    def canary(self, version: int, percent: int, actor: str, revision: int | None = None, why: str = "") -> ControlDoc:
        if not 1 <= percent <= 99:
            raise BadInput("a canary takes 1 to 99 percent")
        self._servable({version: percent})

        def change(route: ModelRoute) -> str:
            live = route.live
            if live is None or live == version:
                raise BadInput(f"v{version} cannot be the canary: "
                               f"{'it is the live version' if live == version else 'nothing is live'}")
            return self._weigh(route, {live: 100 - percent, version: percent}) + (f": {why}" if why else "")
        return self._edit(change, actor, revision)

    def promote(self, version: int, actor: str, revision: int | None = None, why: str = "") -> ControlDoc:
        self._servable({version: 100})
        return self._edit(lambda route: f"promote v{version}{': ' + why if why else ''} "
                                        f"({self._weigh(route, {version: 100})})", actor, revision)

    def mirror(self, version: int, on: bool, actor: str, revision: int | None = None) -> ControlDoc:
        if on:
            self._servable({version: 0})

        def change(route: ModelRoute) -> str:
            mirrored = set(route.mirror)
            (mirrored.add if on else mirrored.discard)(version)
            route.mirror = sorted(mirrored)
            route.rendezvous = sorted(set(route.rendezvous) | ({version} if on else set()))
            return f"mirror v{version} {'on' if on else 'off'}"
        return self._edit(change, actor, revision)

    def rollback(self, actor: str, revision: int | None = None) -> ControlDoc:
        """Restore this model's route as it was before its last applied change (a rollback of a rollback
        redoes). Refused attempts are never undone, however many there are."""
        last = self.control.trail().last_applied(self.model)
        if last is None:
            raise BadInput(f"{self.model} has no change to roll back")
        before, undone = ModelRoute.from_json(last.before or {}), last.revision

        def change(route: ModelRoute) -> str:
            route.weights, route.mirror, route.rendezvous = before.weights, before.mirror, before.rendezvous
            route.auto, route.policy, route.preferred = before.auto, before.policy, before.preferred
            route.ensemble = before.ensemble
            return f"rollback: the route before revision {undone}"
        return self._edit(change, actor, revision, keep=False)

    def auto(self, enabled: bool, actor: str, revision: int | None = None, canary_percent: int | None = None,
             min_samples: int | None = None, alpha: float | None = None,
             max_samples: int | None = None) -> ControlDoc:
        """Turn the canary policy (AutoPromotion) on or off, optionally with new settings."""
        if canary_percent is not None and not 1 <= canary_percent <= 99:
            raise BadInput("the canary takes 1 to 99 percent")
        if min_samples is not None and not 1 <= min_samples <= 100_000:
            raise BadInput("samples is a count from 1 to 100000")
        if alpha is not None and not 0 < alpha < 0.5:
            raise BadInput("alpha is the error rate of the canary's test: above 0 and below 0.5")
        if max_samples is not None and not 1 <= max_samples <= 1_000_000:
            raise BadInput("budget is a count of images from 1 to 1000000")

        def change(route: ModelRoute) -> str:
            a = route.auto
            a.enabled = enabled
            a.canary_percent = a.canary_percent if canary_percent is None else canary_percent
            a.min_samples = a.min_samples if min_samples is None else min_samples
            a.alpha = a.alpha if alpha is None else alpha
            a.max_samples = a.max_samples if max_samples is None else max_samples
            return (f"auto-promotion {'on' if enabled else 'off'}: canary {a.canary_percent}%, at least "
                    f"{a.min_samples} honest images, alpha {a.alpha}, budget {a.max_samples} images")
        return self._edit(change, actor, revision)

    def policy(self, name: str, preferred: int | None, actor: str, revision: int | None = None) -> ControlDoc:
        """The rendezvous policy by default (best-confidence | fastest | preferred, with the version it prefers)."""
        if name not in RENDEZVOUS_POLICIES:
            raise BadInput(f"the policy is one of {', '.join(RENDEZVOUS_POLICIES)}, not {name!r}")
        if (name == "preferred") != (preferred is not None):
            raise BadInput("preferred takes a version (policy preferred N); the other policies take none")

        def change(route: ModelRoute) -> str:
            if preferred is not None and preferred not in route.rendezvous:
                raise BadInput(f"v{preferred} is not in the rendezvous set {sorted(route.rendezvous)}")
            route.policy, route.preferred = name, preferred
            return f"rendezvous policy {name}" + (f" (v{preferred})" if preferred is not None else "")
        return self._edit(change, actor, revision)

    def ensemble(self, versions: list[int], actor: str, revision: int | None = None) -> ControlDoc:
        """The versions the dating app averages ([]: the two with the most traffic)."""
        if len(set(versions)) != len(versions) or len(versions) == 1 or len(versions) > 4:
            raise BadInput("an ensemble is 2 to 4 different versions (none: the two with the most traffic)")
        self._servable({v: 0 for v in versions})

        def change(route: ModelRoute) -> str:
            route.ensemble = sorted(versions)
            return "ensemble " + (" ".join(f"v{v}" for v in sorted(versions)) or "the two with the most traffic")
        return self._edit(change, actor, revision)

    def reject(self, version: int, actor: str, why: str, revision: int | None = None) -> ControlDoc:
        """Take a canary back out: no traffic, not mirrored, and never made a canary automatically again."""
        def change(route: ModelRoute) -> str:
            live = route.live
            if live is None or live == version:
                raise BadInput(f"v{version} is the live version; promote another one instead")
            route.weights = {v: (100 if v == live else 0) for v in set(route.weights) | {live}}
            route.mirror = [v for v in route.mirror if v != version]
            route.auto.rejected = sorted(set(route.auto.rejected) | {version})
            return f"reject v{version}: {why}"
        return self._edit(change, actor, revision)

    def refuse(self, actor: str, what: str, why: str) -> None:
        """Record a refused attempt in the audit log, with the principal that tried; past the principal's
        limit of refusals, RateLimited (429) instead, and nothing is written."""
        if self.refusals is not None:
            self.refusals.hit(actor, "refused-edit")
        doc, _ = self.control.control()
        self.control.trail().append([AuditEntry(model=self.model, actor=actor, change=what, revision=doc.revision,
                                                refused=why)])

    # -- helpers -----------------------------------------------------------------------------------------
    @staticmethod
    def _weigh(route: ModelRoute, weights: dict[int, int]) -> str:
        """Give these versions these weights and every other version 0 (still deployed)."""
        route.weights = {v: weights.get(v, 0) for v in set(route.weights) | set(weights)}
        route.rendezvous = sorted(set(route.rendezvous) | set(weights))
        route.mirror = [v for v in route.mirror if weights.get(v, 0) == 0]
        return "route " + " ".join(f"v{v}={w}" for v, w in sorted(weights.items()))

    def _servable(self, weights: dict[int, int]) -> None:
        for v in weights:
            meta = self.metadata(v)                       # VersionNotFound (404) when not committed
            if not meta.conversion.get("ok"):
                raise BadInput(f"v{v} did not pass its gates (parity); it never serves")

    def _edit(self, change, actor: str, revision: int | None, keep: bool = True) -> ControlDoc:
        """Apply `change` to this model's route with a compare-and-swap on the document. A lost swap is tried
        again while this model's route is still what the first try saw: the document's revision also moves when
        ANOTHER model's route changes (a trainer registering its version), which is no conflict for this edit.
        A changed route of this model, or a `revision` the document is no longer at, is a 409."""
        seen: dict | None = None               # this model's route as the first try saw it

        def apply(doc: ControlDoc) -> str | None:
            nonlocal seen
            if revision is not None and doc.revision != revision:
                raise Conflict(f"the control document is at revision {doc.revision}, not {revision}: someone changed "
                               f"it since you looked; nothing was written", revision=doc.revision)
            route = doc.models.setdefault(self.model, ModelRoute())
            if seen is None:
                seen = route.to_json()
            elif route.to_json() != seen:
                raise Conflict(f"{self.model}'s route changed while this edit was being made; nothing was "
                               f"written. Look again (list) and repeat it if it still makes sense",
                               revision=doc.revision)
            what = change(route)
            if keep:
                doc.models[self.model] = retain(route, self.keep_recent)
            return f"{self.model}: {what}"
        return self.control.update_control(apply, actor, retries=EDIT_RETRIES)

