#!/usr/bin/env python3
"""The gateway path against the obvious alternative, side by side in one run: the same predict function as one
Flask + waitress process that clients call directly (no gateway, no watchdog), and /function/predict through
the local gateway and the watchdog (make run). Same model, same 640x480 JPEG bodies, same closed-loop clients,
decoy and shadow on in both (it is the same function code).

    PYTHONPATH=. python bench/baseline.py [--seconds 15]

Goal (issue 11): through the gateway, c=1 p50 <= the direct process, and c=16 >= 1.25x its throughput.
Appends the figures and the ratios to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.load import free_port, photo, post
from bench.predict_latency import record

ROOT = Path(__file__).resolve().parent.parent


def closed_loop(url: str, clients: int, seconds: float) -> dict:
    images = [photo(8000 + i) for i in range(16)]
    stop = time.time() + seconds
    lat, errors, lock = [], [0], threading.Lock()

    def client(i: int) -> None:
        n = 0
        while time.time() < stop:
            t = time.perf_counter()
            status, _ = post(url, images[(i + n) % len(images)], f"base-{i}")
            with lock:
                lat.append((time.perf_counter() - t) * 1000)
                errors[0] += status != 200
            n += 1
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"p50": statistics.median(lat), "rps": len(lat) / (time.time() - t0), "n": len(lat), "errors": errors[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateway", default=os.environ.get("OPENFAAS_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--model", default=os.environ.get("MODEL_NAME", "engineer"))
    ap.add_argument("--seconds", type=float, default=15)
    args = ap.parse_args()
    port = free_port()
    env = {**os.environ, "AFTERDARK_HANDLER": "functions.predict.handler", "AFTERDARK_PORT": str(port),
           "MODEL_CACHE_DIR": tempfile.mkdtemp(prefix="afterdark-base-"), "MODEL_NAME": args.model,
           "PYTHONPATH": str(ROOT), "OPENFAAS_NAME": "predict-baseline"}
    proc = subprocess.Popen([sys.executable, "index.py"], cwd=ROOT / "template" / "python3-afterdark", env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    direct = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 60
        while post(direct, photo(1), "warm")[0] != 200:
            if time.time() > deadline:
                raise SystemExit("the direct process never answered")
            time.sleep(0.1)
        rows = {}
        for name, url in (("direct", direct), ("gateway", f"{args.gateway}/function/predict")):
            rows[name] = {c: closed_loop(url, c, args.seconds) for c in (1, 16)}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    watchdog = Path(os.environ.get("AFTERDARK_CACHE", Path.home() / ".cache/afterdark")) / "run/gateway.watchdog"
    d, g = rows["direct"], rows["gateway"]
    lines = [f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: the gateway path against one direct process",
             f"{os.cpu_count()} CPUs; model {args.model}; 640x480 JPEG bodies; closed-loop clients for {args.seconds:.0f} s "
             f"each; the same function code (decoy and shadow on) in both; watchdog: "
             f"{watchdog.read_text().strip() if watchdog.exists() else 'unknown'}.", "",
             "| path | c=1 p50 ms | c=16 p50 ms | c=16 req/s | errors |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r[1]['p50']:.2f} | {r[16]['p50']:.2f} | {r[16]['rps']:.0f} | "
                     f"{r[1]['errors'] + r[16]['errors']} |")
    lines += ["", f"- Ratios, gateway / direct: c=1 p50 {g[1]['p50'] / d[1]['p50']:.2f}x (goal <= 1.0), "
                  f"c=16 throughput {g[16]['rps'] / d[16]['rps']:.2f}x (goal >= 1.25)."]
    record(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
