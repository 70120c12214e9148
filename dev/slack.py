#!/usr/bin/env python3
"""Slack without Slack, for local try-outs and for generating the app manifests.

    python dev/slack.py listen [--port 8799]                 # a response_url and Web API receiver: prints what arrives
    python dev/slack.py send /predict IMAGE_URL [--gateway URL] [--response-url URL]
    python dev/slack.py send /fix IMAGE_URL engineer
    python dev/slack.py send /afterdark signup IMAGE_URL Ada
    python dev/slack.py click fix 'vote:engineer' '{"sha": "<sha256>", "model": "engineer"}'   # a button click
    python dev/slack.py manifest --gateway https://gateway.example.com [--out slack/]

`send` signs the form body exactly as Slack does (v0, HMAC-SHA256 with SLACK_SIGNING_SECRET, via slack-sdk)
and POSTs it to /function/<name> on the gateway; the inline answer is printed, and a slow answer arrives at
the receiver. `click` sends a signed block_actions payload, as Slack does for a button. `listen` also answers
Web API calls under /api/ (chat.postMessage: the review channel) the way Slack does. `manifest` writes the two
apps' manifests with request URLs made from the gateway URL (slash commands and the interactivity URL); a
command is listed only when its function exists in stack.yml.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import yaml
from slack_sdk.signature import SignatureVerifier

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from layers.registry.commands import USAGE  # noqa: E402  (the one usage text of /models)

# command -> (function, description, usage hint); the app each belongs to
APPS = {
    "ai-monkey": {
        "name": "AI Monkey",
        "description": "Engineer or not? Classify photos, correct the model, watch it learn.",
        "commands": {
            "/predict": ("predict", "Classify a photo: engineer or non_engineer", "IMAGE_URL"),
            "/fix": ("fix", "Correct the model: this photo is CLASS", "IMAGE_URL engineer|non_engineer"),
            "/predict-rendezvous": ("predict-rendezvous", "Every deployed version scores the photo", "IMAGE_URL"),
            "/models": ("models", "DataOps: versions, traffic split, canary, mirror, promote, rollback, ensemble",
                        USAGE.removeprefix("/models ")),
            "/healthz": ("healthz", "Is everything up? S3, Kafka, PostgreSQL", ""),
        },
    },
    "slack-after-dark": {
        "name": "Slack After Dark",
        "description": "Engineers, meet non-engineers. Sign up with a photo and get matched.",
        "commands": {"/afterdark": ("afterdark", "Sign up with a photo and meet your match",
                                    "signup [PHOTO_URL] [name] | match | me | delete | help")},
        "interactivity": "afterdark",          # confirm-your-side and next-match buttons
        "scopes": ["commands"],
    },
}
# AI Monkey's interactivity and events go to the ai-monkey function: vote buttons, the shortcuts on shared
# images and their form, the Home tab. chat:write: the review channel, vote receipts and form outcomes;
# files:read: a shared image (url_private).
APPS["ai-monkey"]["interactivity"] = "ai-monkey"
APPS["ai-monkey"]["events"] = ("ai-monkey", ["app_home_opened"])
APPS["ai-monkey"]["shortcuts"] = [
    {"name": "Classify this image", "type": "message", "callback_id": "classify_image",
     "description": "Engineer or not? The model answers in the channel"},
    {"name": "Correct this image", "type": "message", "callback_id": "correct_image",
     "description": "Tell the model what this image is: one vote"},
]
APPS["ai-monkey"]["app_home"] = {"home_tab_enabled": True, "messages_tab_enabled": True,
                                 "messages_tab_read_only_enabled": True}
APPS["ai-monkey"]["scopes"] = ["commands", "chat:write", "files:read"]
APPS["slack-after-dark"]["scopes"] = ["commands", "users.profile:read"]      # signup with your Slack photo


def signed_request(gateway: str, command: str, text: str, response_url: str, secret: str, user: str = "ULOCAL") -> urllib.request.Request:
    function = command.lstrip("/")
    body = urlencode({"token": "local", "team_id": "TLOCAL", "team_domain": "local", "channel_id": "CLOCAL",
                      "channel_name": "general", "user_id": user, "user_name": "you", "command": command,
                      "text": text, "response_url": response_url, "trigger_id": f"{time.time_ns()}.local", "api_app_id": "ALOCAL"})
    ts = str(int(time.time()))
    sig = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return urllib.request.Request(f"{gateway}/function/{function}", data=body.encode(), method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig})


def signed_click(gateway: str, function: str, action_id: str, value: str, response_url: str, secret: str,
                 user: str = "ULOCAL", blocks: list | None = None) -> urllib.request.Request:
    """A button click as Slack sends it: a form with one `payload` field (block_actions JSON), signed."""
    payload = {"type": "block_actions", "user": {"id": user, "team_id": "TLOCAL"}, "team": {"id": "TLOCAL"},
               "trigger_id": f"{time.time_ns()}.click", "response_url": response_url, "api_app_id": "ALOCAL",
               "actions": [{"action_id": action_id, "value": value, "block_id": action_id.split(":")[0],
                            "type": "button", "action_ts": f"{time.time():.6f}"}],
               "message": {"blocks": blocks or []}, "channel": {"id": "CLOCAL"}}
    body = urlencode({"payload": json.dumps(payload)})
    ts = str(int(time.time()))
    sig = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return urllib.request.Request(f"{gateway}/function/{function}", data=body.encode(), method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig})


def local_secret() -> str | None:
    """SLACK_SIGNING_SECRET, else the one dev/lib.sh generated for the local stack."""
    cache = Path(os.environ.get("AFTERDARK_CACHE", Path.home() / ".cache" / "afterdark"))
    path = cache / "slack-signing-secret"
    return os.environ.get("SLACK_SIGNING_SECRET") or (path.read_text().strip() if path.exists() else None)


def send(args) -> int:
    secret = local_secret()
    if not secret:
        print("SLACK_SIGNING_SECRET is not set (make run prints it)", file=sys.stderr)
        return 2
    if args.what == "click":
        req = signed_click(args.gateway, args.function, args.action_id, args.value, args.response_url, secret)
    else:
        req = signed_request(args.gateway, args.command, " ".join(args.text), args.response_url, secret)
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    print(f"HTTP {status} in {(time.perf_counter() - t0) * 1000:.0f} ms")
    try:
        print(json.dumps(json.loads(body), indent=2, ensure_ascii=False))
    except ValueError:
        print(body.decode(errors="replace"))
    return 0 if status == 200 else 1


def listen(args) -> int:
    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            api = self.path.startswith("/api/")
            print(f"--- {'Web API ' + self.path[5:] if api else 'response_url POST ' + self.path} at {time.strftime('%H:%M:%S')}")
            try:
                print(json.dumps(json.loads(data), indent=2, ensure_ascii=False), flush=True)
            except ValueError:
                print(data.decode(errors="replace"), flush=True)
            answer = json.dumps({"ok": True, "channel": "CLOCAL", "ts": f"{time.time():.6f}"}).encode() if api else b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "application/json" if api else "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Receiver)
    print(f"listening for response_url POSTs and Web API calls on http://127.0.0.1:{args.port}/ (Ctrl-C to stop)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def manifests(gateway: str, stack: dict) -> dict[str, dict]:
    functions = set((stack.get("functions") or {}))
    out = {}
    for key, app in APPS.items():
        commands = [{"command": cmd, "url": f"{gateway.rstrip('/')}/function/{fn}", "description": desc,
                     **({"usage_hint": hint} if hint else {}), "should_escape": False}
                    for cmd, (fn, desc, hint) in app["commands"].items() if fn in functions]
        if not commands:
            continue
        settings = {"org_deploy_enabled": False, "socket_mode_enabled": False, "token_rotation_enabled": False}
        url = lambda fn: f"{gateway.rstrip('/')}/function/{fn}"
        if app.get("interactivity") in functions:
            settings["interactivity"] = {"is_enabled": True, "request_url": url(app["interactivity"])}
        if app.get("events") and app["events"][0] in functions:
            settings["event_subscriptions"] = {"request_url": url(app["events"][0]), "bot_events": app["events"][1]}
        features = {**({"app_home": app["app_home"]} if app.get("app_home") else {}),
                    "bot_user": {"display_name": key, "always_online": False},
                    **({"shortcuts": app["shortcuts"]} if app.get("shortcuts") and app.get("interactivity") in functions else {}),
                    "slash_commands": commands}
        out[key] = {"_metadata": {"major_version": 1, "minor_version": 1},
                    "display_information": {"name": app["name"], "description": app["description"]},
                    "features": features,
                    "oauth_config": {"scopes": {"bot": app.get("scopes", ["commands"])}},
                    "settings": settings}
    return out


def manifest(args) -> int:
    stack = yaml.safe_load((ROOT / "stack.yml").read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    made = manifests(args.gateway, stack)
    for key, doc in made.items():
        (out / f"{key}.manifest.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
        print(f"wrote {out / (key + '.manifest.yml')} ({len(doc['features']['slash_commands'])} commands)")
    for key in APPS.keys() - made.keys():
        print(f"skipped {key}: none of its functions is in stack.yml yet")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("send")
    s.add_argument("command")
    s.add_argument("text", nargs="*")
    s.add_argument("--gateway", default=os.environ.get("OPENFAAS_URL", "http://127.0.0.1:8080"))
    s.add_argument("--response-url", default="http://127.0.0.1:8799/commands/local")
    c = sub.add_parser("click")
    c.add_argument("function")
    c.add_argument("action_id")
    c.add_argument("value")
    c.add_argument("--gateway", default=os.environ.get("OPENFAAS_URL", "http://127.0.0.1:8080"))
    c.add_argument("--response-url", default="http://127.0.0.1:8799/actions/local")
    l = sub.add_parser("listen")
    l.add_argument("--port", type=int, default=8799)
    m = sub.add_parser("manifest")
    m.add_argument("--gateway", default=os.environ.get("OPENFAAS_URL", "https://gateway.example.com"))
    m.add_argument("--out", default=str(ROOT / "slack"))
    args = ap.parse_args()
    return {"send": send, "click": send, "listen": listen, "manifest": manifest}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
