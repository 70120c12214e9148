#!/usr/bin/env python3
"""The whole learning loop, live, against a running stack (make run; `make demo` runs it again). It shows the
drift the crowd is there for: a look the bootstrap never saw (site crews in hard hats and high-visibility
vests, who are not engineers; portraits.synth.drifted).

  1. /predict scores new portraits of that kind: the live version gets most of them wrong;
  2. six people vote what they are, three on each portrait (/fix, one principal each through the delegating
     token);
  3. the trainer learns them (a new version, trained only on the train split) and the canary policy gives it
     some traffic; people keep voting on NEW portraits of the kind as they arrive, and the policy judges the
     canary against live on the voted images neither was trained on (the evaluation split and the votes that
     came after the canary's watermark), with the paired sequential test: n, the discordant pairs, p;
  4. once it is promoted, /predict answers OTHER portraits of the kind, which nobody voted on.

    python dev/demo_loop.py [--gateway URL] [--images 10] [--timeout 300] [--budget 40] [--json]

The canary policy is turned on for the model if it is off. Exits 1 if no new version is promoted within the
timeout. --json prints a summary for the tests.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from portraits.synth import drifted, to_jpeg  # noqa: E402

VOTERS = (("ana", "bo", "cy"), ("dee", "eli", "fay"))   # two groups of 3: a portrait gets one group's votes
VOTE_EVERY_S = 3.25      # two new portraits each time, one per group: 18.5 votes a minute per voter, under the
                         # tests' limit (20); 111 a minute for the client, under its 300


class Api:
    def __init__(self, gateway: str, token: str) -> None:
        self.gateway, self.token = gateway, token

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> dict:
        req = urllib.request.Request(f"{self.gateway}/function/{path}", data=body, method=method,
                                     headers={"Authorization": f"Bearer {self.token}", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            raise SystemExit(f"{method} {path}: {err.code} {err.read()[:300]!r}") from None

    def predict(self, jpeg: bytes, user: str) -> dict:
        return self.call("POST", "predict", jpeg, {"Content-Type": "image/jpeg", "X-User-Id": user})

    def fix(self, jpeg: bytes, label: str, user: str) -> dict:
        return self.call("POST", f"fix?label={label}&user={user}", jpeg,
                         {"Content-Type": "image/jpeg", "Idempotency-Key": uuid.uuid4().hex})

    def history(self) -> list[dict]:
        """This model's whole audit log, newest first, page by page (a page holds at most 200 entries; the
        trainer's registrations and canary steps fill it quickly)."""
        entries, cursor = [], ""
        while True:
            page = self.models(f"/history?limit=200{cursor}")
            entries += page["history"]
            if not page.get("next"):
                return entries
            cursor = f"&before={page['next']}"

    def models(self, path: str = "", body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        return self.call("POST" if body is not None else "GET", f"models{path}", data,
                         {"Content-Type": "application/json"})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateway", default=os.environ.get("OPENFAAS_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--images", type=int, default=10, help="portraits voted on before the first version (10: "
                                                           "30 votes, the trainer's min_votes, so it trains at once)")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--budget", type=int, default=40, help="honest images the canary gets before an undecided "
                                                               "test rolls it back")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    cache = Path(os.environ.get("AFTERDARK_CACHE", Path.home() / ".cache" / "afterdark"))
    api = Api(args.gateway, os.environ.get("API_TOKEN") or (cache / "api-token").read_text().strip())
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else (lambda *a: print(*a, flush=True))

    listing = api.models()
    before = {r["version"]: r["role"] for r in listing["versions"]}     # a canary may be under way already
    live = next(r["version"] for r in listing["versions"] if r["role"] == "live")
    hold_before = next(r["accuracy"] for r in listing["versions"] if r["version"] == live)
    route = api.call("GET", "predict/status")["desired_route"]
    if not route.get("auto", {}).get("enabled") or route["auto"].get("max_samples") != args.budget:
        api.models("/auto", {"on": True, "max_samples": args.budget})
        say(f"[demo] canary policy on: a new version gets {route.get('auto', {}).get('canary_percent', 10)}% of "
            f"traffic, and is promoted once the paired test on images it never trained on says it is better (alpha 0.05)")

    run = int(time.time() * 1000) % 10_000_000
    counter = iter(range(10 ** 9))

    def portrait() -> tuple[bytes, str]:
        img, truth, _ = drifted(run * 1000 + next(counter))
        return to_jpeg(img), truth

    def vote_on(n: int) -> list[tuple[dict, bytes, str]]:
        out = []
        for i in range(n):
            jpeg, truth = portrait()
            out.append((api.predict(jpeg, f"demo-{run}"), jpeg, truth))
            for who in VOTERS[i % len(VOTERS)]:
                api.fix(jpeg, truth, f"demo-{who}-{run}")
        return out

    unseen = [portrait() for _ in range(6)]           # nobody votes on these: they show what was learnt
    was = [api.predict(jpeg, f"demo-{run}") for jpeg, _ in unseen]
    first = vote_on(args.images)
    wrong = sum(p["label"] != truth for p, _, truth in first)
    say(f"[demo] 1. a new look (site crews: hard hat, hi-vis vest; not engineers): live v{live} gets {wrong} of "
        f"{len(first)} new portraits wrong")
    people, each = sum(map(len, VOTERS)), len(VOTERS[0])
    say(f"[demo] 2. {people} people vote what they are, {each} on each portrait ({each * len(first)} votes through /fix)")

    def superseded(version: int) -> bool:
        """A canary rolled back for a newer one, trained on more votes: the loop goes on with that one."""
        return any(f"reject v{version}: superseded" in h["change"] for h in api.history())

    t0 = time.time()
    seen: dict[int, str] = {}
    promoted, extra, decision, last_vote = None, 0, None, 0.0
    while time.time() - t0 < args.timeout and promoted is None:
        for r in api.models()["versions"]:
            if r["version"] <= live:
                continue
            if seen.get(r["version"]) != r["role"]:
                seen[r["version"]] = r["role"]
                say(f"[demo] 3. {time.time() - t0:5.1f} s: v{r['version']} is {r['role']} ({r['weight']}% of traffic, "
                    f"hold-out accuracy {r['accuracy'] or 0:.3f})")
            if r["role"] == before.get(r["version"]):
                continue                               # a decision from before this demo
            if r["role"] == "live" or (r["role"] == "rejected" and not superseded(r["version"])):
                promoted, decision = r["version"], r["role"]
        if promoted is None and "canary" in seen.values() and time.time() - last_vote >= VOTE_EVERY_S:
            vote_on(2)                                 # new portraits keep arriving, and people keep voting
            extra, last_vote = extra + 2, time.time()
        time.sleep(0.3)
    if promoted is None:
        say(f"[demo] no canary was decided within {args.timeout:.0f} s; see `dev/models.py history` and "
            f"the trainer's log")
        return 1
    say(f"[demo]    meanwhile people voted on {extra} more new portraits, tested on both versions before any "
        f"version trained on them")
    def decision_entry() -> str:
        """The decision itself in the audit log, not a later canary step. The audit row follows the control
        document's write (layers.registry.control), so it may lag the route the loop above saw: wait for it."""
        history = [h for h in api.history() if h["actor"] == "system:auto-promotion"]
        return next((h["change"] for h in history
                     if f"promote v{promoted}:" in h["change"] or f"reject v{promoted}:" in h["change"]), "")
    evidence, waited = decision_entry(), time.time() + 15
    while not evidence and time.time() < waited:
        time.sleep(0.3)
        evidence = decision_entry()
    if evidence:
        say(f"[demo]    the audit log says: {evidence}")
    deadline = time.time() + 15                          # the functions poll the control document (1 s)
    while decision == "live" and time.time() < deadline and \
            api.call("GET", "predict/status")["route"]["weights"].get(str(promoted)) != 100:
        time.sleep(0.2)
    if decision == "rejected":
        say(f"[demo]    v{promoted} was rolled back: the honest evidence did not show it better within the budget")
    hold_after = next(r["accuracy"] for r in api.models()["versions"] if r["version"] == promoted)
    now = [api.predict(jpeg, f"demo-{run}") for jpeg, _ in unseen]
    say(f"[demo] 4. {len(unseen)} other portraits of the new kind, which nobody voted on (hold-out accuracy "
        f"{hold_before:.3f} -> {hold_after:.3f}):")
    for (_, truth), b, a in zip(unseen, was, now):
        say(f"         {a['label']:<12} {a['confidence']:.3f} (v{a['version']}); was {b['label']} "
            f"{b['confidence']:.3f} (v{b['version']}); drawn as {truth}")
    if args.json:
        print(json.dumps({"live_before": live, "decided": promoted, "decision": decision, "seconds": round(time.time() - t0, 2),
                          "roles_seen": seen, "before": was, "after": now, "truth": [t for _, t in unseen],
                          "evidence": evidence, "holdout": [hold_before, hold_after], "extra_votes": extra}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
