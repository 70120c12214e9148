#!/usr/bin/env python3
"""Demo profiles for Slack After Dark: synthetic portraits with names, signed up through the afterdark
function like anyone else (as api:local:demo-<name>), so `/afterdark match` has people to show.

    python dev/seed_profiles.py [--gateway URL]       # idempotent: a name that has a profile is left alone
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from portraits.synth import portrait, to_jpeg  # noqa: E402

# (name, the class the generator draws, seed): half each side, fixed so every install has the same people
PEOPLE = [("Ada", "engineer", 9001), ("Grace", "engineer", 9002), ("Linus", "engineer", 9003),
          ("Margaret", "engineer", 9004), ("Ken", "engineer", 9005), ("Barbara", "engineer", 9006),
          ("Frida", "non_engineer", 9101), ("Miles", "non_engineer", 9102), ("Zadie", "non_engineer", 9103),
          ("Bowie", "non_engineer", 9104), ("Yoko", "non_engineer", 9105), ("Basquiat", "non_engineer", 9106)]


def call(gateway: str, token: str, method: str, path: str, body: bytes | None = None,
         ctype: str = "application/json") -> tuple[int, dict]:
    req = urllib.request.Request(f"{gateway}/function/afterdark/{path}", data=body, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateway", default=os.environ.get("OPENFAAS_URL", "http://127.0.0.1:8080"))
    args = ap.parse_args(argv)
    cache = Path(os.environ.get("AFTERDARK_CACHE", Path.home() / ".cache" / "afterdark"))
    token = os.environ.get("API_TOKEN") or (cache / "api-token").read_text().strip()
    made = 0
    for name, label, seed in PEOPLE:
        user = f"demo-{name.lower()}"
        if call(args.gateway, token, "GET", f"me?user={user}")[0] == 200:
            continue
        deadline = time.time() + 60                     # a model published a moment ago loads within seconds
        while True:
            status, body = call(args.gateway, token, "POST", f"signup?user={user}&name={name}",
                                to_jpeg(portrait(seed, label)[0]), "image/jpeg")
            if status != 503 or time.time() > deadline:
                break
            time.sleep(1)
        if status != 201:
            print(f"[seed] {name}: {status} {body.get('message')}", file=sys.stderr)
            return 1
        made += 1
    print(f"[seed] demo profiles: {made} signed up, {len(PEOPLE) - made} already there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
