#!/usr/bin/env python3
"""The whole learning loop, live, against a running stack (make run; `make demo` runs it again):

  1. /predict scores new portraits; the live version gets a few of them wrong (the generator knows what it
     drew), or, when it gets too few wrong, is least sure about them;
  2. people vote what those portraits are (/fix, two votes each, from different people);
  3. the trainer learns them (a new version), the canary policy gives it some traffic, replays the recent
     traffic against the votes, and promotes it;
  4. /predict answers again, now from the new version.

    python dev/demo_loop.py [--gateway URL] [--images 4] [--timeout 120] [--json]

The canary policy is turned on for the model if it is off (`/models auto on samples=N`: N = the images voted
on). Exits 1 if no new version is promoted within the timeout. --json prints a summary for the tests.
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
from training_job.synth import portrait, to_jpeg  # noqa: E402


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

    def models(self, path: str = "", body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        return self.call("POST" if body is not None else "GET", f"models{path}", data,
                         {"Content-Type": "application/json"})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateway", default=os.environ.get("OPENFAAS_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    cache = Path(os.environ.get("AFTERDARK_CACHE", Path.home() / ".cache" / "afterdark"))
    api = Api(args.gateway, os.environ.get("API_TOKEN") or (cache / "api-token").read_text().strip())
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else (lambda *a: print(*a, flush=True))

    listing = api.models()
    before = {r["version"] for r in listing["versions"]}
    live = next(r["version"] for r in listing["versions"] if r["role"] == "live")
    route = api.call("GET", "predict/status")["desired_route"]
    if not route.get("auto", {}).get("enabled") or route["auto"].get("min_samples") != args.images:
        api.models("/auto", {"on": True, "min_samples": args.images})
        say(f"[demo] canary policy on: a new version gets {route.get('auto', {}).get('canary_percent', 10)}% of "
            f"traffic, and is promoted once {args.images} voted images show it is better")

    run = int(time.time() * 1000) % 10_000_000
    pool = [portrait(run * 100 + i) for i in range(20 * args.images)]
    scored = [(api.predict(to_jpeg(img), f"demo-{run}-{i}"), to_jpeg(img), i, truth)
              for i, (img, truth, _) in enumerate(pool)]
    # the answers the live version gets wrong, least sure first, then the right ones it is least sure about
    wrong = sorted((s for s in scored if s[0]["label"] != s[3]), key=lambda s: s[0]["confidence"])
    right = sorted((s for s in scored if s[0]["label"] == s[3]), key=lambda s: s[0]["confidence"])
    unsure = (wrong + right)[:args.images]
    say(f"[demo] 1. /predict on {len(pool)} new portraits: live v{live} gets {len(wrong)} wrong; people will "
        f"correct these {len(unsure)}:")
    for p, _, i, truth in unsure:
        say(f"         portrait {i:2d}: {p['label']:<12} {p['confidence']:.3f} (v{p['version']}), "
            f"drawn as {truth}")
    t0 = time.time()
    for p, jpeg, i, truth in unsure:
        for who in ("ana", "bo"):
            api.fix(jpeg, truth, f"demo-{who}-{run}")
    say(f"[demo] 2. {2 * len(unsure)} votes (/fix, 2 people each) say what they are")

    seen: dict[int, str] = {}
    promoted = None
    while time.time() - t0 < args.timeout and promoted is None:
        for r in api.models()["versions"]:
            if r["version"] in before:
                continue
            if seen.get(r["version"]) != r["role"]:
                seen[r["version"]] = r["role"]
                say(f"[demo] 3. {time.time() - t0:5.1f} s: v{r['version']} is {r['role']} ({r['weight']}% of traffic, "
                    f"hold-out accuracy {r['accuracy'] or 0:.3f})")
            if r["role"] == "live":
                promoted = r["version"]
        time.sleep(0.3)
    if promoted is None:
        say(f"[demo] no new version was promoted within {args.timeout:.0f} s; see `dev/models.py history` and "
            f"the trainer's log")
        return 1
    history = [h for h in api.models("/history")["history"] if h["actor"] == "system:auto-promotion"]
    if history:
        say(f"[demo]    the audit log says: {history[0]['change']}")
    deadline = time.time() + 15                          # the functions poll the control document (1 s)
    while time.time() < deadline and api.call("GET", "predict/status")["route"]["weights"].get(str(promoted)) != 100:
        time.sleep(0.2)
    after = [(api.predict(jpeg, f"demo-{run}-{i}"), p) for p, jpeg, i, _ in unsure]
    say("[demo] 4. /predict on the same portraits now:")
    for (now, was), (_, _, i, _) in zip(after, unsure):
        say(f"         portrait {i:2d}: {now['label']:<12} {now['confidence']:.3f} (v{now['version']}); "
            f"was {was['label']} {was['confidence']:.3f} (v{was['version']})")
    if args.json:
        print(json.dumps({"live_before": live, "promoted": promoted, "seconds": round(time.time() - t0, 2),
                          "roles_seen": seen, "before": [p for p, _, _, _ in unsure], "after": [a for a, _ in after],
                          "voted": [truth for _, _, _, truth in unsure]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
