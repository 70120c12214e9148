#!/usr/bin/env python3
"""The DataOps CLI: the same verbs as Slack's /models, over HTTP to the `models` function, with a token.

    python dev/models.py list
    python dev/models.py show 3
    python dev/models.py canary 3 10          # admins: a token with the admin scope
    python dev/models.py route 1=90 3=10
    python dev/models.py mirror 3 on | promote 3 | rollback | history | train | compare 1 3

OPENFAAS_URL (default http://127.0.0.1:8080) and API_TOKEN (default: the local token make run made, in
~/.cache/afterdark/api-token) say where and as whom. `--if-match REVISION` pins the control document
revision that an edit was decided on. Prints the same table as Slack; exits 1 on an error answer.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from layers.registry.commands import compare_table, from_text, table  # noqa: E402


def call(gateway: str, token: str, method: str, path: str, body: dict | None, revision: int | None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if revision is not None:
        headers["If-Match"] = str(revision)
    req = urllib.request.Request(f"{gateway}/function/models{path}", method=method, headers=headers,
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def request_for(words: list[str]) -> tuple[str, str, dict | None]:
    cmd = from_text(" ".join(words))                    # the same parser as Slack: same usage errors
    a = cmd.args
    if cmd.verb == "list":
        return "GET", "", None
    if cmd.verb == "show":
        return "GET", f"/{a['version']}", None
    if cmd.verb == "history":
        query = "&".join(f"{k}={v}" for k, v in sorted(a.items()))
        return "GET", "/history" + (f"?{query}" if query else ""), None
    if cmd.verb == "compare":
        return "GET", f"/compare?a={a['a']}&b={a['b']}", None
    if cmd.verb == "route":
        return "POST", "/route", {"weights": {str(v): w for v, w in a["weights"].items()}}
    return "POST", f"/{cmd.verb}", a


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateway", default=os.environ.get("OPENFAAS_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--if-match", type=int, default=None, help="the control document revision the edit assumes")
    ap.add_argument("words", nargs="+")
    args = ap.parse_args(argv)
    cache = Path(os.environ.get("AFTERDARK_CACHE", Path.home() / ".cache" / "afterdark"))
    token = os.environ.get("API_TOKEN") or (cache / "api-token").read_text().strip()
    try:
        method, path, body = request_for(args.words)
    except Exception as err:                            # a usage error, from the shared parser
        print(getattr(err, "message", str(err)), file=sys.stderr)
        return 2
    status, result = call(args.gateway, token, method, path, body, args.if_match)
    if status >= 400:
        print(f"{status} {result.get('error')}: {result.get('message')}", file=sys.stderr)
        return 1
    if "versions" in result:
        print(f"{result['model']}, control revision {result['revision']}")
        print(table(result["versions"]))
    elif "delta" in result:                              # compare: the same table as Slack's
        text, note = compare_table(result)
        print(f"{text}\n{note}" + (f"\nchart: {result['chart_url']}" if result.get("chart_url") else ""))
    else:
        print(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
