#!/usr/bin/env python3
"""Load: 16 clients for 60 s against /function/predict through the gateway (make run), a real-sized photo in
every body, with a promotion and a rollback (both hot reloads) in the middle; then a function's cold start
(spawn to first answer, the model fetched into an empty cache) and the memory of every function process.

    PYTHONPATH=. python bench/load.py [--clients 16] [--seconds 60] [--model engineer]

Every request is a new image (a new trailing byte string after the JPEG's end marker), so no cache hides the
work and every request makes a decoy. Target: zero errors, no request lost across the reloads, no decoy
dropped (the off-path counters are reported). Appends to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from bench.predict_latency import api_token, fresh, record
from layers.config import Settings
from layers.db import Database
from layers.registry import AuditLog, Registry
from layers.registry.dataops import DataOps
from layers.store import BlobStore
from portraits.synth import portrait
from training_job.archiver import lag as archive_lag

ROOT = Path(__file__).resolve().parent.parent


def photo(seed: int) -> bytes:
    buf = io.BytesIO()
    portrait(seed)[0].resize((640, 480)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def post(url: str, body: bytes, user: str) -> tuple[int, int | None]:
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "image/jpeg", "Authorization": f"Bearer {api_token()}", "X-User-Id": user})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read()).get("version")
    except urllib.error.HTTPError as err:
        return err.code, None
    except OSError:
        return 0, None


def load(gateway: str, clients: int, seconds: float, events: list) -> dict:
    images = [photo(7000 + i) for i in range(16)]
    stop = time.time() + seconds
    lat, codes, versions, lock = [], Counter(), Counter(), threading.Lock()

    def client(i: int) -> None:
        n = 0
        while time.time() < stop:
            t = time.perf_counter()
            body = fresh(images[(i + n) % len(images)])            # real traffic: a new image every time
            status, version = post(f"{gateway}/function/predict", body, f"load-{i}-{n % 7}")
            ms = (time.perf_counter() - t) * 1000
            with lock:
                lat.append(ms)
                codes[status] += 1
                versions[version] += 1
            n += 1
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    for at, what in events:                                    # reloads while the clients run
        time.sleep(max(0.0, t0 + at - time.time()))
        what()
    for t in threads:
        t.join()
    wall = time.time() - t0
    lat.sort()
    return {"n": len(lat), "codes": dict(codes), "versions": {str(k): v for k, v in versions.items()},
            "p50": statistics.median(lat), "p99": lat[int(len(lat) * 0.99) - 1], "rps": len(lat) / wall}


def offpath(status_url: str) -> dict:
    req = urllib.request.Request(status_url, headers={"Authorization": f"Bearer {api_token()}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read()).get("offpath", {})


def drain(status_urls: list[str], timeout_s: float = 60) -> float:
    """Wait until the off-path queues are empty and the decoy archiver has stored every image, so that one
    cell's leftover work does not run in the next. Returns how long that took (s)."""
    t0 = deadline = time.time()
    deadline += timeout_s
    while time.time() < deadline:
        stats = [offpath(url) for url in status_urls]
        if all(s.get("decoy.submitted", 0) <= s.get("decoy.done", 0) + s.get("decoy.failed", 0) for s in stats) \
                and archive_lag(Settings.from_env()) == 0:
            break
        time.sleep(0.5)
    return time.time() - t0


def delta(before: dict, after: dict) -> str:
    keys = sorted(k for k in after if k.startswith("decoy.") or k.startswith("shadow."))
    return ", ".join(f"{k} {after.get(k, 0) - before.get(k, 0)}" for k in keys) or "none"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cold_start(model: str) -> float:
    """A fresh predict process (the template's server, no watchdog) with an empty model cache: from spawn to
    the first 200 answer."""
    port = free_port()
    cache = tempfile.mkdtemp(prefix="afterdark-cold-")
    env = {**os.environ, "AFTERDARK_HANDLER": "functions.predict.handler", "AFTERDARK_PORT": str(port),
           "MODEL_CACHE_DIR": cache, "MODEL_NAME": model, "PYTHONPATH": str(ROOT), "OPENFAAS_NAME": "predict-cold"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "index.py"], cwd=ROOT / "template" / "python3-afterdark", env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    body = photo(1)
    try:
        while time.perf_counter() - t0 < 60:
            if post(f"http://127.0.0.1:{port}/", body, "cold")[0] == 200:
                return time.perf_counter() - t0
            time.sleep(0.02)
        raise SystemExit("the cold function never answered")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def function_rss() -> dict[str, float]:
    """VmRSS (MiB) of each function's server process (python index.py), by its OPENFAAS_NAME."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"index.py" not in cmd:
                continue
            env = dict(kv.split(b"=", 1) for kv in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in kv)
            name = env.get(b"OPENFAAS_NAME", b"?").decode()
            rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if line.startswith("VmRSS:"))
            out[name] = round(rss / 1024, 1)
        except (OSError, StopIteration, ValueError):
            continue
    return dict(sorted(out.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateway", default=os.environ.get("OPENFAAS_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--model", default=os.environ.get("MODEL_NAME", "engineer"))
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    settings = Settings.from_env()
    ops = DataOps(Registry(BlobStore(settings.s3), AuditLog(Database(settings.db))), args.model)
    route = ops.route()
    live = route.live
    other = max(v for v in route.deployed if v != live)
    events = [(args.seconds / 3, lambda: ops.promote(other, "bench:load")),           # a promotion (hot reload)
              (2 * args.seconds / 3, lambda: ops.rollback("bench:load"))]            # and back
    status = f"{args.gateway}/function/predict/status"
    drain([status])
    before = offpath(status)
    result = load(args.gateway, args.clients, args.seconds, events)
    behind = archive_lag(settings)
    catch_up = drain([status])
    counters = delta(before, offpath(status))
    errors = sum(n for code, n in result["codes"].items() if code != 200)
    cold = cold_start(args.model)
    rss = function_rss()
    watchdog = (Path(os.environ.get("AFTERDARK_CACHE", Path.home() / ".cache/afterdark")) / "run/gateway.watchdog")
    lines = [f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: load, model {args.model}",
             f"{os.cpu_count()} CPUs; {args.clients} closed-loop clients for {args.seconds:.0f} s against "
             f"/function/predict through the gateway, a new 640x480 JPEG image in every request, decoy and shadow on; "
             f"v{other} promoted at {args.seconds / 3:.0f} s and rolled back at {2 * args.seconds / 3:.0f} s; "
             f"watchdog: {watchdog.read_text().strip() if watchdog.exists() else 'unknown'}.", "",
             "| requests | errors | p50 ms | p99 ms | req/s | answered by |", "|---|---|---|---|---|---|",
             f"| {result['n']} | {errors} {result['codes']} | {result['p50']:.1f} | {result['p99']:.1f} | "
             f"{result['rps']:.0f} | {result['versions']} |", "",
             f"- Off the hot path over the run (decoys and shadows): {counters}.",
             f"- The decoy archiver at the end of the run: {behind} records not yet stored; every image stored "
             f"{catch_up:.1f} s later.",
             f"- Cold start of a predict process (spawn to the first answer, the model fetched into an empty cache): "
             f"{cold:.2f} s.",
             f"- RSS per function process with its models loaded (MiB): {rss}."]
    record(lines)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
