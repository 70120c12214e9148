#!/usr/bin/env python3
"""Serving speed on real traffic (issue 20), side by side in one run, every request a new image:
  flask    what a user would write instead: one Flask + waitress process serving the live version exported to
           one .tflite (bench/flask_predict.py: full decode, no cache, no decoy);
  direct   our predict function as one process (the template's server), called directly: no gateway, no watchdog;
  gateway  /function/predict through the local gateway and the watchdog (make run), decoy and shadow on.
Each body is one of 16 640x480 JPEG photos with a different trailing byte string after the JPEG's end marker,
so every body has a new sha256: no prediction cache hit, a new decoy image and record every time.

    PYTHONPATH=. python bench/baseline.py [--seconds 15] [--rounds 2]

Goal: through the gateway, c=1 p50 <= flask's, and c=16 throughput >= 1.25x flask's, with no decoy dropped.
Reports the ratios, the off-path counters (submitted, done, dropped) of the direct and gateway paths, and the
machine's CPU per request (all processes: servers, MinIO, Kafka). Appends to bench/RESULTS.md.
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

from bench.load import archive_lag, delta, drain, free_port, offpath, photo, post
from bench.predict_latency import fresh, record
from layers.config import Settings
from layers.registry import Registry
from layers.store import BlobStore

ROOT = Path(__file__).resolve().parent.parent


def busy_jiffies() -> int:
    """The machine's CPU time so far, in clock ticks (every process, every core)."""
    fields = open("/proc/stat").readline().split()[1:]
    return sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))      # all but idle and iowait


def closed_loop(url: str, clients: int, seconds: float) -> dict:
    images = [photo(8000 + i) for i in range(16)]
    stop = time.time() + seconds
    lat, errors, lock = [], [0], threading.Lock()

    def client(i: int) -> None:
        n = 0
        while time.time() < stop:
            body = fresh(images[(i + n) % len(images)])
            t = time.perf_counter()
            status, _ = post(url, body, f"base-{i}")
            with lock:
                lat.append((time.perf_counter() - t) * 1000)
                errors[0] += status != 200
            n += 1
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    cpu0, t0 = busy_jiffies(), time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took, cpu = time.time() - t0, (busy_jiffies() - cpu0) / os.sysconf("SC_CLK_TCK")
    return {"p50": statistics.median(lat), "rps": len(lat) / took, "n": len(lat), "errors": errors[0],
            "cpu_ms": 1000 * cpu / max(1, len(lat))}


def started(cmd: list[str], env: dict, cwd: Path, url: str) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    while post(url, photo(1), "warm")[0] != 200:
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit(f"{cmd} never answered at {url}")
        time.sleep(0.2)
    return proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateway", default=os.environ.get("OPENFAAS_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--model", default=os.environ.get("MODEL_NAME", "engineer"))
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    settings = Settings.from_env()
    live = Registry(BlobStore(settings.s3)).live_version(args.model)
    tmp = Path(tempfile.mkdtemp(prefix="afterdark-base-"))
    exported = tmp / f"{args.model}-v{live}.tflite"
    subprocess.run([sys.executable, "-m", "training_job", "export", "--model", args.model, "--version", str(live),
                    "--out", str(exported)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fport, dport = free_port(), free_port()
    flask = started([sys.executable, str(ROOT / "bench" / "flask_predict.py")],
                    {**os.environ, "MODEL_TFLITE": str(exported), "PORT": str(fport)}, ROOT, f"http://127.0.0.1:{fport}/")
    direct = started([sys.executable, "index.py"],
                     {**os.environ, "AFTERDARK_HANDLER": "functions.predict.handler", "AFTERDARK_PORT": str(dport),
                      "MODEL_CACHE_DIR": str(tmp / "cache"), "MODEL_NAME": args.model, "PYTHONPATH": str(ROOT),
                      "OPENFAAS_NAME": "predict-direct"},
                     ROOT / "template" / "python3-afterdark", f"http://127.0.0.1:{dport}/")
    paths = {"flask": f"http://127.0.0.1:{fport}/", "direct": f"http://127.0.0.1:{dport}/",
             "gateway": f"{args.gateway}/function/predict"}
    status = {"direct": f"http://127.0.0.1:{dport}/status", "gateway": f"{args.gateway}/function/predict/status"}
    rows: dict[str, list[dict]] = {name: [] for name in paths}
    counters = {}
    try:
        before = {name: offpath(url) for name, url in status.items()}
        for _ in range(args.rounds):
            for name, url in paths.items():
                cells = {}
                for c in (1, 16):
                    drain(list(status.values()))
                    cells[c] = closed_loop(url, c, args.seconds)
                    cells[c]["behind"] = archive_lag(settings)       # decoy images not yet in S3 at the end
                    cells[c]["catch_up_s"] = drain(list(status.values()))
                rows[name].append(cells)
        counters = {name: delta(before[name], offpath(url)) for name, url in status.items()}
    finally:
        for proc in (flask, direct):
            proc.terminate()
            proc.wait(timeout=10)
    watchdog = Path(os.environ.get("AFTERDARK_CACHE", Path.home() / ".cache/afterdark")) / "run/gateway.watchdog"
    span = lambda name, c, key: [r[c][key] for r in rows[name]]
    fmt = lambda xs, f: "–".join(f.format(x) for x in (min(xs), max(xs))) if len(xs) > 1 else f.format(xs[0])
    lines = [f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: serving speed on real traffic (bench/baseline.py)",
             f"{os.cpu_count()} CPUs; model {args.model} v{live}; every request a new image (one of 16 640x480 JPEG "
             f"photos with a new trailing byte string); closed-loop clients, {args.seconds:.0f} s per cell, each after the off-path queues drained, "
             f"{args.rounds} rounds (ranges are over rounds); watchdog: "
             f"{watchdog.read_text().strip() if watchdog.exists() else 'unknown'}.", "",
             "| path | c=1 p50 ms | c=16 p50 ms | c=16 req/s | CPU ms/request (c=16, machine) | errors |",
             "|---|---|---|---|---|---|"]
    for name in paths:
        errors = sum(r[c]["errors"] for r in rows[name] for c in (1, 16))
        lines.append(f"| {name} | {fmt(span(name, 1, 'p50'), '{:.2f}')} | {fmt(span(name, 16, 'p50'), '{:.1f}')} | "
                     f"{fmt(span(name, 16, 'rps'), '{:.0f}')} | {fmt(span(name, 16, 'cpu_ms'), '{:.2f}')} | {errors} |")
    ratio = lambda a, b, c, key: statistics.median(span(a, c, key)) / statistics.median(span(b, c, key))
    lines += ["", f"- Ratios, gateway / flask (medians over rounds): c=1 p50 {ratio('gateway', 'flask', 1, 'p50'):.2f}x "
                  f"(goal <= 1.0), c=16 throughput {ratio('gateway', 'flask', 16, 'rps'):.2f}x (goal >= 1.25); "
                  f"direct / flask: c=1 p50 {ratio('direct', 'flask', 1, 'p50'):.2f}x, c=16 throughput "
                  f"{ratio('direct', 'flask', 16, 'rps'):.2f}x.",
              f"- Off the hot path, over the whole run: direct: {counters.get('direct')}; gateway: {counters.get('gateway')}.",
              "- The decoy archiver at the end of each c=16 cell (records not yet stored; seconds to catch up): " + "; ".join(
                  f"{name} " + ", ".join(f"{r[16]['behind']} ({r[16]['catch_up_s']:.1f} s)" for r in rows[name])
                  for name in ("direct", "gateway")) + "."]
    record(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
