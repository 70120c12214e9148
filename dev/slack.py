#!/usr/bin/env python3
"""Slack without Slack, for local try-outs and for generating the app manifests.

    python dev/slack.py listen [--port 8799]                 # a response_url and Web API receiver: prints what arrives
    python dev/slack.py send /predict IMAGE_URL [--gateway URL] [--response-url URL]
    python dev/slack.py send /fix IMAGE_URL engineer
    python dev/slack.py send /afterdark signup IMAGE_URL Ada
    python dev/slack.py click ai-monkey 'vote:engineer' '{"sha": "<sha256>", "model": "engineer"}'   # a button
    python dev/slack.py shortcut classify PHOTO.jpg          # "Classify this image" on a message sharing PHOTO
    python dev/slack.py shortcut correct PHOTO.jpg           # "Correct this image": listen shows the form...
    python dev/slack.py submit non_engineer                  # ...and this submits it (the last form opened)
    python dev/slack.py home                                 # open the app's Home tab (app_home_opened)
    python dev/slack.py manifest --gateway https://gateway.example.com [--out slack/]

`send` signs the form body exactly as Slack does (v0, HMAC-SHA256 with SLACK_SIGNING_SECRET, via slack-sdk)
and POSTs it to /function/<name> on the gateway; the inline answer is printed, and a slow answer arrives at
the receiver. `click` sends a signed block_actions payload, as Slack does for a button; `shortcut`, `submit`
and `home` a message_action, a view_submission and an app_home_opened event to the ai-monkey function. `listen`
also answers Web API calls under /api/ (chat.postMessage, views.open, views.publish, users.profile.get) the way
Slack does, and serves a shared photo at /files/NAME as url_private, to the bot token only. `manifest` writes the two
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
from urllib.parse import parse_qs, urlencode

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


CACHE = Path(os.environ.get("AFTERDARK_CACHE", Path.home() / ".cache" / "afterdark"))
SHARED = CACHE / "slack-files"                  # what `listen` serves as url_private
LAST_VIEW = CACHE / "slack-last-view.json"      # the last form views.open showed (for `submit`)
RECEIVER = "http://127.0.0.1:8799"


def signed_post(gateway: str, function: str, body: str, secret: str, ctype: str) -> urllib.request.Request:
    ts = str(int(time.time()))
    sig = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return urllib.request.Request(f"{gateway}/function/{function}", data=body.encode(), method="POST", headers={
        "Content-Type": ctype, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig})


def interaction(args, secret: str) -> urllib.request.Request:
    """A message shortcut, a form's submission or a Home tab opened, as Slack sends them to ai-monkey."""
    who = {"user": {"id": "ULOCAL", "team_id": "TLOCAL"}, "team": {"id": "TLOCAL"}, "api_app_id": "ALOCAL",
           "trigger_id": f"{time.time_ns()}.local"}
    if args.what == "home":
        body = json.dumps({"type": "event_callback", "team_id": "TLOCAL", "event_id": f"Ev{time.time_ns()}",
                           "event": {"type": "app_home_opened", "user": "ULOCAL", "tab": "home"}})
        return signed_post(args.gateway, "ai-monkey", body, secret, "application/json")
    if args.what == "shortcut":
        SHARED.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{Path(args.photo).name}"
        (SHARED / name).write_bytes(Path(args.photo).read_bytes())
        payload = {**who, "type": "message_action", "callback_id": f"{args.which}_image", "channel": {"id": "CLOCAL"},
                   "response_url": f"{RECEIVER}/shortcuts/local",
                   "message": {"type": "message", "files": [{"id": f"F{time.time_ns()}", "name": name,
                                                             "mimetype": "image/jpeg",
                                                             "url_private": f"{RECEIVER}/files/{name}"}]}}
    else:
        view = json.loads(LAST_VIEW.read_text())
        payload = {**who, "type": "view_submission", "view": {**view, "id": view.get("id", f"V{time.time_ns()}"),
                   "state": {"values": {"label": {"choose": {"selected_option": {"value": args.label}}}}}}}
    return signed_post(args.gateway, "ai-monkey", urlencode({"payload": json.dumps(payload)}), secret,
                       "application/x-www-form-urlencoded")


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
    elif args.what in ("shortcut", "submit", "home"):
        req = interaction(args, secret)
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
        print(body.decode(errors="replace") or "(empty: acknowledged)")
    return 0 if status == 200 else 1


def web_api(method: str, body: dict, remember: Path | None = LAST_VIEW) -> dict:
    """What Slack's Web API answers, as far as the app reads it (also the tests' receiver's answers). The last
    form views.open showed is kept in `remember`, for `submit`."""
    if method == "users.profile.get":
        return {"ok": True, "profile": {"image_512": f"{RECEIVER}/avatars/{body.get('user', '')}.jpg"}}
    if method in ("views.open", "views.publish"):
        view = {"id": f"V{time.time_ns()}", **(body.get("view") or {})}
        if method == "views.open" and remember is not None:
            remember.write_text(json.dumps(view))
        return {"ok": True, "view": view}
    return {"ok": True, "channel": body.get("channel", "CLOCAL"), "ts": f"{time.time():.6f}"}


def listen(args) -> int:
    token = os.environ.get("SLACK_BOT_TOKEN", "xoxb-local-not-a-slack-token")

    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def answer(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            """A shared photo (url_private: the bot token only), or a Web API method called with GET."""
            path, _, query = self.path.partition("?")
            if path.startswith("/api/"):
                body = {k: v[0] for k, v in parse_qs(query).items()}
                print(f"--- Web API {path[5:]} at {time.strftime('%H:%M:%S')}: {body}", flush=True)
                return self.answer(200, json.dumps(web_api(path[5:], body)).encode(), "application/json")
            if path.startswith("/avatars/"):              # profile photos are public: slack-files/avatar-<user>.jpg
                photo = SHARED / f"avatar-{path.removeprefix('/avatars/')}"
                if "/" in path.removeprefix("/avatars/") or not photo.is_file():
                    return self.answer(404, b"no photo", "text/plain")
                return self.answer(200, photo.read_bytes(), "image/jpeg")
            name = path.removeprefix("/files/")
            if not path.startswith("/files/") or "/" in name or not (SHARED / name).is_file():
                return self.answer(404, b"file_not_found", "text/plain")
            if self.headers.get("Authorization") != f"Bearer {token}":
                print(f"--- refused {path}: no bot token", flush=True)
                return self.answer(403, b"not_authed", "text/plain")
            print(f"--- served {path} to the bot token", flush=True)
            self.answer(200, (SHARED / name).read_bytes(), "image/jpeg")

        def do_POST(self):
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            api = self.path.startswith("/api/")
            print(f"--- {'Web API ' + self.path[5:] if api else 'response_url POST ' + self.path} at {time.strftime('%H:%M:%S')}")
            if (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
                body = {k: v[0] for k, v in parse_qs(data.decode()).items()}
            else:
                try:
                    body = json.loads(data) if data else {}
                except ValueError:
                    body = {"raw": data.decode(errors="replace")}
            print(json.dumps(body, indent=2, ensure_ascii=False), flush=True)
            if api:
                return self.answer(200, json.dumps(web_api(self.path[5:], body)).encode(), "application/json")
            self.answer(200, b"ok", "text/plain")

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
    sc = sub.add_parser("shortcut")
    sc.add_argument("which", choices=["classify", "correct"])
    sc.add_argument("photo")
    sm = sub.add_parser("submit")
    sm.add_argument("label")
    hm = sub.add_parser("home")
    for q in (sc, sm, hm):
        q.add_argument("--gateway", default=os.environ.get("OPENFAAS_URL", "http://127.0.0.1:8080"))
    l = sub.add_parser("listen")
    l.add_argument("--port", type=int, default=8799)
    m = sub.add_parser("manifest")
    m.add_argument("--gateway", default=os.environ.get("OPENFAAS_URL", "https://gateway.example.com"))
    m.add_argument("--out", default=str(ROOT / "slack"))
    args = ap.parse_args()
    return {"send": send, "click": send, "shortcut": send, "submit": send, "home": send, "listen": listen,
            "manifest": manifest}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
