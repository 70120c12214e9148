#!/usr/bin/env python3
"""The local function host: a small OpenFaaS-compatible gateway on 127.0.0.1:8080 (local use only).

It reads stack.yml (with faas-cli's envsubst rules: ${VAR} and ${VAR:-default}), and runs every function as
its own process under the watchdog, exactly as its container would: the template's fprocess, mode=http,
upstream_url, and the function's environment and timeouts.

The watchdog (AFTERDARK_WATCHDOG=auto|real|standin, default auto): the real of-watchdog when it is installed in
$AFTERDARK_CACHE/bin and network namespaces can be made here (root), each function in a namespace of its own
as in a pod (dev/netns.py; of-watchdog binds its metrics port 8081 unconditionally, so two cannot share a
host); otherwise dev/watchdog.py, the stand-in (README "of-watchdog").

Routes (same paths as the OpenFaaS gateway, so the same curl lines and Slack URLs work against both):
  /function/NAME[/...]   any method, proxied to the function's watchdog (status, headers and body kept)
  GET /system/functions  the deployed functions
  GET /healthz           200 once every function's watchdog reports healthy
  GET /openapi.yaml      the OpenAPI 3.1 document of the functions' JSON API (docs/openapi.yaml)
Adds X-Call-Id (unless the caller sent one) and X-Start-Time to the upstream request, like the CE gateway.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netns  # noqa: E402
from proxy import (CLIENT_TIMEOUT_S, BadRequest, Server, UpstreamError, UpstreamTimeout, fetch, refuse,  # noqa: E402
                   relay, reply)

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("AFTERDARK_CACHE", Path.home() / ".cache" / "afterdark"))
GATEWAY_TIMEOUT_S = 60.0  # the CE gateway's upstream_timeout default
SERVED_BY = "afterdark-dev-gateway"


def envsubst(text: str, env: dict[str, str]) -> str:
    """faas-cli's rule: ${VAR:-default} and ${VAR}; an unset variable becomes the empty string."""
    def sub(m: re.Match) -> str:
        name, default = m.group(1), m.group(3)
        value = env.get(name)
        return value if value else (default or "")
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}", sub, text)


def load_stack(path: Path, env: dict[str, str]) -> dict:
    return yaml.safe_load(envsubst(path.read_text(), env))


@dataclass
class Function:
    name: str
    spec: dict
    port: int
    upstream_port: int
    proc: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)
    ns: "netns.FunctionNamespace | None" = None
    dial: type = http.client.HTTPConnection    # how the gateway connects: straight into the namespace, when it has one
    containers: list[str] = field(default_factory=list)     # AFTERDARK_RUNTIME=containers: the function's and its pod's

    def describe(self) -> dict:
        running = self.proc is not None and self.proc.poll() is None
        return {"name": self.name, "image": self.spec.get("image", ""), "namespace": "openfaas-fn",
                "replicas": 1, "availableReplicas": 1 if running else 0, "invocationCount": 0,
                "envProcess": self.env.get("fprocess", ""), "labels": self.spec.get("labels") or {},
                "annotations": self.spec.get("annotations") or {}}


REAL_WATCHDOG = CACHE / "bin" / "of-watchdog"
STANDIN = [sys.executable, str(ROOT / "dev" / "watchdog.py")]


def docker_missing() -> str | None:
    """None when this gateway can run the functions' images (Docker answers, namespaces can be entered), else
    why not."""
    if shutil.which("docker") is None:
        return "docker is not installed (make images installs it)"
    probe = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"the Docker engine does not answer ({probe.stderr.strip()[:200]}); make images starts one"
    return netns.available()


def choose_watchdog(choice: str, runtime: str = "processes") -> tuple[str, str]:
    """("container" | "real" | "standin", why). AFTERDARK_RUNTIME=containers runs each function's image (built
    by make images) under the real of-watchdog inside it; where Docker is missing it says so and falls back to
    processes. Processes: by AFTERDARK_WATCHDOG, auto, real (fail if impossible) or standin."""
    if runtime == "containers":
        why = docker_missing()
        if why is None:
            return "container", "each function's image, under the of-watchdog inside it, in its own network namespace"
        print(f"AFTERDARK_RUNTIME=containers, but {why}: running the functions as processes", file=sys.stderr)
    if choice == "standin":
        return "standin", "AFTERDARK_WATCHDOG=standin"
    if not REAL_WATCHDOG.exists():
        why = f"of-watchdog is not installed ({REAL_WATCHDOG})"
    else:
        why = netns.available()
        if why is None:
            return "real", "of-watchdog 0.11.6, one network namespace per function"
        why = f"of-watchdog is installed, but {why}: its metrics port 8081 would collide between functions"
    if choice == "real":
        raise SystemExit(f"AFTERDARK_WATCHDOG=real, but {why}")
    return "standin", why


LOOPBACK_PORT = re.compile(r"(?:127\.0\.0\.1|localhost):(\d+)")


def outside_ports(env: dict[str, str], own: set[int]) -> list[int]:
    """The host loopback ports a function's environment names (S3, Kafka, PostgreSQL, allowed hosts, the
    gateway): the namespace forwards those to the host, and nothing else."""
    return sorted({int(p) for v in env.values() for p in LOOPBACK_PORT.findall(v or "")} - own)


# What a container does not take from the host's environment: its own paths and users, and what its image sets
# (the template's fprocess, upstream_url and handler module).
HOST_ONLY = {"PATH", "HOME", "PYTHONPATH", "VIRTUAL_ENV", "PWD", "OLDPWD", "SHELL", "TERM", "HOSTNAME", "USER",
             "LOGNAME", "SHLVL", "TMPDIR", "LD_LIBRARY_PATH", "MAIL", "_", "fprocess", "mode", "upstream_url",
             "AFTERDARK_HANDLER", "AFTERDARK_PORT", "AFTERDARK_CACHE", "MODEL_CACHE_DIR"}
IMAGE_UPSTREAM_PORT = 5000          # the template image's upstream_url


def docker_memory(limit: str | None) -> list[str]:
    """stack.yml's limits.memory ("256Mi", "1Gi") as docker run's --memory."""
    m = re.fullmatch(r"(\d+)(Mi|Gi|M|G)", limit or "")
    return ["--memory", f"{m.group(1)}{m.group(2)[0].lower()}"] if m else []


def start_container(fn: Function, env: dict[str, str], log, gateway: str) -> None:
    """The function's image as a pod: a holder container with --network none (its own namespace, loopback
    only), into which the gateway forwards the function's outbound ports and dials; then the function's
    container joins that namespace, so its watchdog starts with every port already in place."""
    name = f"afterdark-{gateway}-{fn.name}"
    image = fn.spec["image"]
    subprocess.run(["docker", "rm", "-f", name, f"{name}-pod"], capture_output=True)
    subprocess.run(["docker", "run", "-d", "--rm", "--network", "none", "--no-healthcheck", "--name", f"{name}-pod", image,
                    "sleep", "infinity"], check=True, capture_output=True)
    pid = int(subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", f"{name}-pod"], check=True,
                             capture_output=True, text=True).stdout)
    passed = {k: v for k, v in env.items() if k not in HOST_ONLY}
    passed["port"] = str(fn.port)
    fn.upstream_port = IMAGE_UPSTREAM_PORT
    fn.ns = netns.FunctionNamespace(fn.name, pid=pid)
    fn.ns.forward_out(outside_ports(passed, {fn.port, fn.upstream_port}))
    fn.ns.forward_in(fn.port)
    fn.dial = fn.ns.connection()
    fn.containers = [name, f"{name}-pod"]
    limits = docker_memory((fn.spec.get("limits") or {}).get("memory"))
    fn.proc = subprocess.Popen(["docker", "run", "--rm", "--name", name, "--network", f"container:{name}-pod",
                                *limits, *[a for k in sorted(passed) for a in ("-e", k)], image],
                               env={**os.environ, **passed}, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)


def start_function(fn: Function, stack_dir: Path, logs: Path, watchdog: str, gateway: str = "gateway") -> None:
    lang = fn.spec["lang"]
    template_dir = stack_dir / "template" / lang
    template = yaml.safe_load((template_dir / "template.yml").read_text())
    handler_dir = (stack_dir / fn.spec["handler"]).resolve()
    module = ".".join(handler_dir.relative_to(stack_dir).parts) + ".handler"
    tmp = CACHE / "run" / "functions" / fn.name
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({k: "" if v is None else str(v) for k, v in (fn.spec.get("environment") or {}).items()})
    env.update({
        "fprocess": fn.spec.get("fprocess") or template["fprocess"],
        "mode": "http",
        "upstream_url": f"http://127.0.0.1:{fn.upstream_port}",
        "port": str(fn.port),
        "prefix_logs": "false",
        "TMPDIR": str(tmp),  # of-watchdog's lock file lives in os.TempDir(): one per function
        "OPENFAAS_NAME": fn.name,
        "AFTERDARK_HANDLER": module,
        "AFTERDARK_PORT": str(fn.upstream_port),
        "PYTHONPATH": os.pathsep.join([str(stack_dir), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    })
    fn.env = env
    log = open(logs / f"fn-{fn.name}.log", "ab")
    if watchdog == "container":
        start_container(fn, env, log, gateway)
    elif watchdog == "real":
        fn.ns = netns.FunctionNamespace(fn.name)
        fn.ns.forward_out(outside_ports(env, {fn.port, fn.upstream_port}))
        fn.ns.forward_in(fn.port)
        fn.dial = fn.ns.connection()
        fn.proc = fn.ns.popen([str(REAL_WATCHDOG)], cwd=template_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    else:
        fn.proc = subprocess.Popen(STANDIN, cwd=template_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)


def healthy(fn: Function) -> bool:
    """The watchdog says healthy, and the function's own server accepts connections. (of-watchdog 0.11.6
    reports healthy as soon as it has forked, before the function listens; Kubernetes' readiness probe hides
    that gap in a cluster, and this check does here.)"""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{fn.port}/_/health", timeout=1) as resp:
            if resp.status != 200:
                return False
    except OSError:
        return False
    if fn.ns is not None:
        return fn.ns.accepting(fn.upstream_port)
    try:
        socket.create_connection(("127.0.0.1", fn.upstream_port), timeout=0.5).close()
        return True
    except OSError:
        return False


def make_handler(functions: dict[str, Function]):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
        timeout = CLIENT_TIMEOUT_S      # a client silent this long is cut off (headers: closed; body: 408)

        def log_message(self, fmt, *args):
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

        def route(self):
            path = self.path
            if path in ("/healthz", "/healthz/"):
                ok = all(healthy(f) for f in functions.values())
                return reply(self, 200 if ok else 503, "OK" if ok else "functions not ready")
            if path.split("?")[0] == "/openapi.yaml":                  # the JSON API's contract
                return reply(self, 200, (ROOT / "docs" / "openapi.yaml").read_text(), "application/yaml")
            if path.split("?")[0] == "/system/functions":
                if self.command != "GET":
                    return reply(self, 405, "method not allowed")
                body = json.dumps([f.describe() for f in functions.values()])
                return reply(self, 200, body, "application/json")
            m = re.match(r"^/function/([a-z0-9-]+)(/.*)?$", path.split("?")[0])
            if not m:
                return reply(self, 404, "Not Found")
            fn = functions.get(m.group(1))
            if fn is None:
                return reply(self, 404, f"error finding function {m.group(1)}: not found")
            rest = (m.group(2) or "/") + (("?" + path.split("?", 1)[1]) if "?" in path else "")
            call_id = self.headers.get("X-Call-Id") or str(uuid.uuid4())
            extra = {"X-Call-Id": call_id, "X-Start-Time": str(time.time_ns())}
            try:
                answer = fetch(self, "127.0.0.1", fn.port, rest, timeout=GATEWAY_TIMEOUT_S, extra_headers=extra,
                               connection=fn.dial)
            except BadRequest as err:
                return refuse(self, err)
            except UpstreamTimeout:
                return reply(self, 504, "gateway timeout")
            except UpstreamError as err:
                return reply(self, 502, f"function {fn.name} unreachable: {err}")
            out = {"X-Served-By": SERVED_BY}
            if "X-Call-Id" not in self.headers:
                out["X-Call-Id"] = call_id
            relay(self, *answer, extra_headers=out)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = route

        def refuse(self):
            reply(self, 405, "method not allowed")           # any other method (TRACE, QUERY, ...): 405, not 501

        def __getattr__(self, name):
            if name.startswith("do_"):
                return self.refuse
            raise AttributeError(name)

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default=str(ROOT / "stack.yml"))
    parser.add_argument("--root", help="folder holding template/ and the handler paths (default: the stack's folder)")
    parser.add_argument("--bind", default=os.environ.get("GATEWAY_BIND", "127.0.0.1:8080"))
    parser.add_argument("--first-port", type=int, default=int(os.environ.get("FUNCTION_FIRST_PORT", "8100")))
    args = parser.parse_args()
    stack_path = Path(args.stack).resolve()
    stack = load_stack(stack_path, dict(os.environ))
    logs = CACHE / "run" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    watchdog, why = choose_watchdog(os.environ.get("AFTERDARK_WATCHDOG", "auto"),
                                    os.environ.get("AFTERDARK_RUNTIME", "processes"))
    what = {"container": "containers", "real": "the real of-watchdog"}.get(watchdog, "dev/watchdog.py (the stand-in)")
    print(f"watchdog: {what}: {why}", file=sys.stderr, flush=True)
    gateway_name = os.environ.get("GATEWAY_NAME", "gateway")
    (CACHE / "run" / f"{gateway_name}.watchdog").write_text(f"{watchdog}: {why}\n")
    functions: dict[str, Function] = {}
    for i, (name, spec) in enumerate(sorted((stack.get("functions") or {}).items())):
        functions[name] = Function(name, spec, port=args.first_port + 2 * i, upstream_port=args.first_port + 2 * i + 1)
        start_function(functions[name], Path(args.root).resolve() if args.root else stack_path.parent, logs, watchdog,
                       gateway_name)
        print(f"{name}: watchdog on 127.0.0.1:{functions[name].port}", file=sys.stderr, flush=True)

    host, port = args.bind.rsplit(":", 1)
    server = Server((host, int(port)), make_handler(functions))

    def signal_group(fn: Function, sig: int) -> None:
        try:
            os.killpg(fn.proc.pid, sig)          # the watchdog and its function: no orphan keeps a port
        except ProcessLookupError:
            pass

    def shutdown(*_):
        """Stop now (the local stack's `make down`): SIGTERM to each watchdog's process group, so the function
        exits and the watchdog with it, without waiting out healthcheck_interval; SIGKILL after 5 s."""
        for fn in functions.values():
            if fn.proc and fn.proc.poll() is None:
                signal_group(fn, signal.SIGTERM)
        for fn in functions.values():
            if fn.proc:
                try:
                    fn.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    signal_group(fn, signal.SIGKILL)
            if fn.containers:
                subprocess.run(["docker", "rm", "-f", *fn.containers], capture_output=True)
            if fn.ns is not None:
                fn.ns.close()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    print(f"gateway on http://{args.bind}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
