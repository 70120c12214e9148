#!/usr/bin/env python3
"""Slack acknowledgement latency (p50/p99) of a signed /predict through a gateway, and the response_url
delivery time on the slow path (an image host that takes 1.5 s). Self-contained: it runs its own gateway
(127.0.0.1:8089), image host (127.0.0.1:8767) and response_url receiver (127.0.0.1:8798) against the running
MinIO and Kafka and the model of `make run`. Appends to bench/RESULTS.md.

    PYTHONPATH=. python bench/slack_ack.py [--n 200]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from bench.predict_latency import record
from tests.imageserver import serve

# dev/slack.py signs exactly as Slack does; loaded by path (the name `slack` belongs to slack-sdk's shim)
_spec = importlib.util.spec_from_file_location("dev_slack", Path(__file__).resolve().parent.parent / "dev" / "slack.py")
dev_slack = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dev_slack)

ROOT = Path(__file__).resolve().parent.parent
GATEWAY, IMAGES, RECEIVER = "127.0.0.1:8089", "127.0.0.1:8767", "127.0.0.1:8798"
SECRET = os.environ.get("SLACK_SIGNING_SECRET") or "bench-secret"


def request(text: str, path: str) -> urllib.request.Request:
    return dev_slack.signed_request(f"http://{GATEWAY}", "/predict", text, f"http://{RECEIVER}{path}", SECRET, user="U-bench")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--slow", type=int, default=10)
    args = ap.parse_args()
    arrivals: dict[str, float] = {}

    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrivals[self.path] = time.perf_counter()
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    rx = ThreadingHTTPServer(tuple([RECEIVER.split(":")[0], int(RECEIVER.split(":")[1])]), Receiver)
    threading.Thread(target=rx.serve_forever, daemon=True).start()
    images = serve(IMAGES.split(":")[0], int(IMAGES.split(":")[1]))
    env = {**os.environ, "FETCH_ALLOW": IMAGES, "SLACK_RESPONSE_URL_ALLOW": RECEIVER, "SLACK_SIGNING_SECRET": SECRET}
    gw = subprocess.Popen([sys.executable, str(ROOT / "dev/gateway.py"), "--bind", GATEWAY, "--first-port", "8400"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"http://{GATEWAY}/healthz", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        time.sleep(2)                                          # the model loads at start-up
        acks = []
        for i in range(args.n):
            t0 = time.perf_counter()
            with urllib.request.urlopen(request(f"http://{IMAGES}/img/{i % 50}.jpg", "/fast"), timeout=10) as r:
                reply = json.loads(r.read())
            acks.append((time.perf_counter() - t0) * 1000)
            assert reply["response_type"] == "in_channel", reply
        slow_ack, delivery = [], []
        for i in range(args.slow):
            path = f"/slow/{i}"
            t0 = time.perf_counter()
            with urllib.request.urlopen(request(f"http://{IMAGES}/slow?s=1.5&seed={i}", path), timeout=10) as r:
                reply = json.loads(r.read())
            slow_ack.append((time.perf_counter() - t0) * 1000)
            while path not in arrivals and time.perf_counter() - t0 < 20:
                time.sleep(0.01)
            delivery.append((arrivals[path] - t0) * 1000)
    finally:
        gw.terminate()
        gw.wait(15)
        images.shutdown()
        rx.shutdown()
    p = lambda xs, q: float(np.percentile(xs, q))
    lines = [f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: Slack acknowledgement, signed /predict through the gateway",
             "Fast path: 160x160 JPEG from a local image host, answered inline. Slow path: the image host takes 1.5 s, "
             "so the function acknowledges at its 0.8 s budget and delivers to response_url.", "",
             "| what | n | p50 ms | p99 ms |", "|---|---|---|---|",
             f"| ack, fast path (inline Block Kit reply) | {len(acks)} | {p(acks, 50):.1f} | {p(acks, 99):.1f} |",
             f"| ack, slow path ('working on it') | {len(slow_ack)} | {p(slow_ack, 50):.1f} | {p(slow_ack, 99):.1f} |",
             f"| response_url delivery, slow path (from the request) | {len(delivery)} | {p(delivery, 50):.1f} | {p(delivery, 99):.1f} |"]
    record(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
