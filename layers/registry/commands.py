"""The DataOps verbs, parsed once for Slack text and for the JSON API, authorised, run, and shown as a table.

    /models list | show N | history [before=ID] [limit=N] | compare A B    anyone authenticated
    /models voters                                                       admins only (estimated reliability)
    /models route 1=90 3=10 | canary N PCT | mirror N on|off | promote N | rollback | train   admins only
    /models auto on|off [canary=PCT] [samples=M] [alpha=X] [budget=N]      admins only (the canary policy)
    /models policy best-confidence|fastest|preferred [N]                    admins only (rendezvous default)
    /models ensemble [N M]                                                  admins only (the dating app's versions)

Example:
    cmd = from_text("canary 3 10")                  # Command("canary", {"version": 3, "percent": 10})
    cmd = from_api("POST", "/canary", {"version": 3, "percent": 10})
    result = run(ops, cmd, actor="slack:T1:U1", admin=True, revision=None, request_training=send)
    print(table(result["versions"]))                 # the same table in Slack and in the CLI

IMPORTANT: an edit by someone who is not an admin is refused (Forbidden, 403) and the refusal is written to
the audit log with their principal, before anything else happens.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from layers.errors import BadInput, Forbidden
from layers.registry.dataops import DataOps, parse_weights

READS = ("list", "show", "history", "compare", "voters")
EDITS = ("route", "canary", "mirror", "promote", "rollback", "train", "auto", "policy", "ensemble")
USAGE = ("/models list | show N | history [before=ID] | compare A B | voters | route 1=90 3=10 | canary N PCT | mirror N on|off | "
         "promote N (or deploy N) | rollback | train | auto on|off [canary=PCT] [samples=M] [alpha=X] [budget=N] | "
         "policy best-confidence|fastest|preferred [N] | ensemble [N M]")
SYNONYMS = {"deploy": "promote"}            # the seed's word for it
AUTO_OPTIONS = {"canary": "canary_percent", "samples": "min_samples", "alpha": "alpha", "budget": "max_samples"}


@dataclass(frozen=True)
class Command:
    verb: str
    args: dict = field(default_factory=dict)

    @property
    def edits(self) -> bool:
        return self.verb in EDITS

    def describe(self) -> str:
        return " ".join([self.verb, *(f"{k}={v}" for k, v in sorted(self.args.items()))])


def _int(value, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be a number, not {value!r}") from None


def _on(value, verb: str = "mirror") -> bool:
    if value in (True, "on", "true", "1", 1):
        return True
    if value in (False, "off", "false", "0", 0):
        return False
    raise BadInput(f"{verb} takes on or off, not {value!r}")


def _auto(on, options: dict) -> Command:
    args: dict = {"on": _on(on, "auto")}
    for name, value in options.items():
        key = AUTO_OPTIONS.get(name, name if name in AUTO_OPTIONS.values() else None)
        if key is None:
            raise BadInput(f"auto takes canary=PCT, samples=M, alpha=X and budget=N; not {name}")
        try:
            args[key] = float(value) if key == "alpha" else int(value)
        except (TypeError, ValueError):
            raise BadInput(f"{name} must be a number, not {value!r}") from None
    return Command("auto", args)


def from_text(text: str) -> Command:
    """A Slack command's text (also the CLI's arguments)."""
    words = text.split()
    if not words or words[0] in ("help", "-h", "--help"):
        raise BadInput(f"Usage: {USAGE}")
    verb, rest = SYNONYMS.get(words[0].lower(), words[0].lower()), words[1:]
    if verb == "history":
        if any("=" not in w or w.split("=", 1)[0] not in ("before", "limit") for w in rest):
            raise BadInput("Usage: /models history [before=ID] [limit=N]")
        options = dict(w.split("=", 1) for w in rest)
        return _history(options.get("before"), options.get("limit"))
    shapes = {"list": 0, "voters": 0, "rollback": 0, "train": 0, "show": 1, "promote": 1, "compare": 2,
              "canary": 2, "mirror": 2}
    if verb == "route":
        if not rest:
            raise BadInput("Usage: /models route 1=90 3=10")
        return Command("route", {"weights": parse_weights(rest)})
    if verb == "auto":
        if not rest or any("=" not in w for w in rest[1:]):
            raise BadInput("Usage: /models auto on|off [canary=PCT] [samples=M] [alpha=X] [budget=N]")
        return _auto(rest[0], dict(w.split("=", 1) for w in rest[1:]))
    if verb == "ensemble":
        return Command("ensemble", {"versions": [_int(v, "a version") for v in rest]})
    if verb == "policy":
        if len(rest) not in (1, 2):
            raise BadInput("Usage: /models policy best-confidence|fastest|preferred [N]")
        return Command("policy", {"name": rest[0], "preferred": _int(rest[1], "the version") if len(rest) == 2 else None})
    if verb not in shapes or len(rest) != shapes[verb]:
        raise BadInput(f"Usage: {USAGE}")
    return _build(verb, rest)


def _history(before, limit) -> Command:
    args = {}
    if before not in (None, ""):
        args["before"] = _int(before, "before")
    if limit not in (None, ""):
        args["limit"] = _int(limit, "limit")
    return Command("history", args)


def _build(verb: str, rest: list) -> Command:
    if verb in ("show", "promote"):
        return Command(verb, {"version": _int(rest[0], "the version")})
    if verb == "compare":
        return Command(verb, {"a": _int(rest[0], "A"), "b": _int(rest[1], "B")})
    if verb == "canary":
        return Command(verb, {"version": _int(rest[0], "the version"), "percent": _int(rest[1], "the percent")})
    if verb == "mirror":
        return Command(verb, {"version": _int(rest[0], "the version"), "on": _on(rest[1])})
    return Command(verb)


def from_api(method: str, path: str, body: dict, query: dict | None = None) -> Command:
    """GET /, /<n>, /history, /compare?a=&b=; POST /route, /canary, /mirror, /promote, /rollback, /train, /auto."""
    query = query or {}
    parts = [p for p in path.split("/") if p]
    verb = parts[0] if parts else "list"
    if method == "GET":
        if verb.isdigit():
            return Command("show", {"version": int(verb)})
        if verb == "compare":
            return _build("compare", [query.get("a"), query.get("b")])
        if verb == "history":
            return _history(query.get("before"), query.get("limit"))
        if verb in ("list", "voters"):
            return Command(verb)
        raise BadInput(f"GET serves list, <version>, history, voters and compare; not {verb!r}")
    if method != "POST" or verb not in EDITS:
        raise BadInput(f"POST one of {', '.join(EDITS)}")
    if verb == "route":
        return Command("route", {"weights": parse_weights(body.get("weights") or {})})
    if verb == "ensemble":
        versions = body.get("versions")
        if not isinstance(versions, list):
            raise BadInput("ensemble needs versions (a list, [] for the default) in the JSON body")
        return Command("ensemble", {"versions": [_int(v, "a version") for v in versions]})
    if verb == "policy":
        if "name" not in body:
            raise BadInput("policy needs name (and preferred, for the preferred policy) in the JSON body")
        return Command("policy", {"name": str(body["name"]),
                                  "preferred": _int(body["preferred"], "preferred") if body.get("preferred") is not None else None})
    if verb == "auto":
        if "on" not in body:
            raise BadInput("auto needs on (true or false) in the JSON body")
        return _auto(body["on"], {k: v for k, v in body.items() if k != "on"})
    keys = {"promote": ["version"], "canary": ["version", "percent"], "mirror": ["version", "on"]}.get(verb, [])
    missing = [k for k in keys if k not in body]
    if missing:
        raise BadInput(f"{verb} needs {', '.join(missing)} in the JSON body")
    return _build(verb, [body[k] for k in keys])


def run(ops: DataOps, cmd: Command, actor: str, admin: bool, revision: int | None,
        request_training: Callable[[str], None], compare: Callable[[int, int], dict] | None = None,
        voters: Callable[[], list[dict]] | None = None) -> dict:
    """Authorise and run one command. The result is JSON; `versions` (when present) is what `table` shows.
    `compare`: the full comparison (layers.analysis.comparison: replay and chart); by default the metadata figures.
    `voters`: each voter's estimated reliability (layers.ledger.VoterBoard), for admins only."""
    if (cmd.edits or cmd.verb == "voters") and not admin:
        why = f"{actor} is not an admin"
        ops.refuse(actor, cmd.describe(), why)
        raise Forbidden(f"only admins may {cmd.verb}; {why} (the attempt is in the audit log)")
    a = cmd.args
    if cmd.verb == "list":
        return {"model": ops.model, "revision": ops.control.control()[0].revision,
                "versions": [r.to_json() for r in ops.list()]}
    if cmd.verb == "show":
        return ops.show(a["version"])
    if cmd.verb == "history":
        return {"model": ops.model, **ops.history(a.get("limit", 20), a.get("before"))}
    if cmd.verb == "compare":
        return (compare or ops.compare)(a["a"], a["b"])
    if cmd.verb == "voters":
        return {"model": ops.model, "method": "dawid-skene (one-coin), with the dataset as gold",
                "voters": voters() if voters else []}
    if cmd.verb == "train":
        request_training(actor)
        return {"model": ops.model, "requested": "train",
                "next": "the trainer runs on the ledger's consensus now; watch model-events or `/models list`"}
    doc = {"route": lambda: ops.set_route(a["weights"], actor, revision),
           "canary": lambda: ops.canary(a["version"], a["percent"], actor, revision),
           "mirror": lambda: ops.mirror(a["version"], a["on"], actor, revision),
           "promote": lambda: ops.promote(a["version"], actor, revision),
           "rollback": lambda: ops.rollback(actor, revision),
           "policy": lambda: ops.policy(a["name"], a["preferred"], actor, revision),
           "ensemble": lambda: ops.ensemble(a["versions"], actor, revision),
           "auto": lambda: ops.auto(a["on"], actor, revision, a.get("canary_percent"), a.get("min_samples"),
                                    a.get("alpha"), a.get("max_samples"))}[cmd.verb]()
    return {"model": ops.model, "revision": doc.revision, "route": doc.models[ops.model].to_json(),
            "versions": [r.to_json() for r in ops.list()]}


def table(rows: list[dict]) -> str:
    """Versions as a fixed-width text table (Slack shows it in a code block; the CLI prints it)."""
    fmt = lambda x: "-" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))
    head = ("version", "role", "weight", "accuracy", "ceiling", "fix acc", "fixes", "parent", "created")
    cells = [head] + [(fmt(r["version"]), r["role"], f"{r['weight']}%", fmt(r["accuracy"]), fmt(r.get("ceiling")),
                       fmt(r["fix_accuracy"]),
                       fmt(r["fixes"]), fmt(r["parent"]), r["created_at"]) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    return "\n".join("  ".join(c[i].ljust(widths[i]) for i in range(len(head))).rstrip() for c in cells)


def compare_table(r: dict) -> tuple[str, str]:
    """`compare A B` (layers.analysis.comparison) as a fixed-width table, and one line on the replay."""
    a, b, replay = r["a"], r["b"], r.get("replay") or {}
    pct = lambda x: "-" if x is None else f"{x:.1%}"
    acc = replay.get("accuracy") or {}
    rows = [("", f"v{a['version']}", f"v{b['version']}"),
            ("hold-out accuracy", pct(a["accuracy"]), pct(b["accuracy"])),
            ("its training fixes", pct(a["fix_accuracy"]), pct(b["fix_accuracy"])),
            ("live traffic, voted", pct(acc.get(str(a["version"]))), pct(acc.get(str(b["version"])))),
            ("parent", str(a["parent"] or "-"), str(b["parent"] or "-"))]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    text = "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
    if "error" in replay:
        note = f"no replay of live traffic now: {replay['error']}"
    else:
        note = (f"replayed {replay.get('images', 0)} live images: the versions agree on "
                f"{pct(replay.get('agreement'))}; {replay.get('labelled', 0)} of them have people's votes")
    return text, note
