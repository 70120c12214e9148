#!/usr/bin/env python3
"""Stand-in for of-watchdog's http mode, used only where `go install github.com/openfaas/of-watchdog` is refused
by the module proxy (see README "of-watchdog"). It reads the same environment variables and keeps the same
contract, so the function process cannot tell the difference:

  fprocess       split on spaces (no shell), forked once; if it exits, the watchdog exits
  upstream_url   where the function listens (http mode)
  port           where the watchdog listens (default 8080)
  exec_timeout   per-request limit (Go duration or seconds; default 30s): exceeded -> 504
  max_inflight   concurrent requests allowed (0: no limit); one more -> 429, as of-watchdog's limiter says it
  healthcheck_interval  after SIGTERM: /_/health answers 503 at once, requests are still served this long
                 (default write_timeout), then the server stops and the function is terminated
  GET /_/health  200 "OK" while the lock file $TMPDIR/.lock exists, else 503
  GET /_/ready   200 once the upstream accepts connections; 429 while max_inflight requests are in flight
  other paths    proxied with path and query kept, X-Duration-Seconds added; upstream error -> 500
One difference stays: of-watchdog reports healthy as soon as it has forked, the stand-in once the function
accepts connections (the local gateway waits for both: README "of-watchdog").
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy import (CLIENT_TIMEOUT_S, BadRequest, Server, UpstreamError, UpstreamTimeout, fetch, refuse,  # noqa: E402
                   relay, reply)


def parse_duration(value: str | None, default: float) -> float:
    """'30s', '1m30s', '500ms' or a plain integer (seconds), like of-watchdog."""
    if not value:
        return default
    if value.isdigit():
        return float(value)
    total, units = 0.0, {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value):
        total += float(num) * units[unit]
    return total or default


def main() -> int:
    env = os.environ
    fprocess = env.get("fprocess") or env.get("function_process")
    if env.get("mode", "streaming") != "http" or not fprocess:
        print("dev/watchdog.py supports mode=http with fprocess set", file=sys.stderr)
        return 2
    upstream = urlparse(env.get("upstream_url") or env.get("http_upstream_url") or "http://127.0.0.1:5000")
    port = int(env.get("port", "8080"))
    exec_timeout = parse_duration(env.get("exec_timeout"), 30.0)
    max_inflight = int(env.get("max_inflight") or 0)
    drain_s = parse_duration(env.get("healthcheck_interval"), parse_duration(env.get("write_timeout"), 10.0))
    lock = Path(tempfile.gettempdir()) / ".lock"
    inflight, count = threading.Lock(), [0]

    child = subprocess.Popen(fprocess.split(" "))
    deadline = time.time() + 60
    while True:
        if child.poll() is not None:
            print(f"forked process exited with {child.returncode}", file=sys.stderr)
            return 1
        try:
            socket.create_connection((upstream.hostname, upstream.port), timeout=0.5).close()
            break
        except OSError:
            if time.time() > deadline:
                print("upstream never accepted connections", file=sys.stderr)
                child.kill()
                return 1
            time.sleep(0.05)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
        timeout = CLIENT_TIMEOUT_S      # a client silent this long is cut off

        def log_message(self, fmt, *args):
            pass

        def handle_one(self):
            if self.path == "/_/health":
                return reply(self, 200 if lock.exists() else 503, "OK" if lock.exists() else "Not ready")
            if self.path == "/_/ready":
                full = max_inflight and count[0] >= max_inflight
                return reply(self, 429 if full else 200, "Too many requests" if full else "OK")
            with inflight:
                full = max_inflight and count[0] >= max_inflight
                if not full:
                    count[0] += 1
            if full:
                return reply(self, 429, f"Concurrent request limit exceeded. Max concurrent requests: {max_inflight}\n")
            start = time.perf_counter()
            try:
                answer = fetch(self, upstream.hostname, upstream.port, self.path, timeout=exec_timeout)
            except BadRequest as err:
                refuse(self, err)
            except UpstreamTimeout:
                reply(self, 504, "Can't reach service for: function.", headers={"X-OpenFaaS-Internal": "of-watchdog"})
            except UpstreamError as err:
                reply(self, 500, f"Can't reach service for: function. {err}", headers={"X-OpenFaaS-Internal": "of-watchdog"})
            else:
                relay(self, *answer, extra_headers={"X-Duration-Seconds": "%f" % (time.perf_counter() - start)})
            finally:
                with inflight:
                    count[0] -= 1

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_one

    server = Server(("127.0.0.1", port), Handler)
    lock.write_text("")

    def shutdown(*_):
        lock.unlink(missing_ok=True)
        child.terminate()
        threading.Thread(target=server.shutdown, daemon=True).start()

    def drain(*_):
        """SIGTERM, as of-watchdog: unhealthy at once, still serving for healthcheck_interval, then stop."""
        lock.unlink(missing_ok=True)
        print(f"SIGTERM: no new connections in {drain_s:g}s", file=sys.stderr, flush=True)
        threading.Timer(drain_s, shutdown).start()

    signal.signal(signal.SIGTERM, drain)
    signal.signal(signal.SIGINT, shutdown)
    threading.Thread(target=lambda: (child.wait(), shutdown()), daemon=True).start()
    print(f"watchdog (dev stand-in) on 127.0.0.1:{port} -> {upstream.geturl()}", file=sys.stderr, flush=True)
    server.serve_forever()
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
