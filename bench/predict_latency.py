#!/usr/bin/env python3
"""Benchmark of /predict: latency (p50/p99) and throughput through the gateway, a new image in the body of
every request (so that no prediction cache answers), at 1 and 16 concurrent clients; in the same run, the
same decode + preprocess + model on LiteRT in-process (the floor), the same with TensorFlow/Keras (the baseline a user would otherwise write), and interpreter-pool
sizes under 16 threads. Appends a dated section to bench/RESULTS.md.

    make bench          (starts the stack and bootstraps the model if needed)
    PYTHONPATH=. python bench/predict_latency.py [--gateway URL] [--model NAME] [--requests N]
"""
from __future__ import annotations

import argparse
import http.client
import io
import itertools
import json
import os
import platform
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from layers.config import Settings
from layers.images import decode, to_input
from layers.registry import Registry
from layers.serving.loader import InterpreterPool, Loader
from layers.store import BlobStore
from portraits.synth import portrait, to_jpeg


def api_token() -> str:
    """The local API token (API_TOKEN, or the one `make run` keeps in the cache)."""
    cache = os.environ.get("AFTERDARK_CACHE", os.path.expanduser("~/.cache/afterdark"))
    return os.environ.get("API_TOKEN") or open(os.path.join(cache, "api-token")).read().strip()

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SERIAL = itertools.count(1)


def fresh(body: bytes) -> bytes:
    """The same photo as a new image: bytes after the JPEG's end marker change the sha256, not the pixels."""
    return body + b"\x00afterdark-bench-" + next(SERIAL).to_bytes(8, "big")


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p))


def summary(name: str, lat_ms: list[float], wall_s: float) -> dict:
    return {"name": name, "n": len(lat_ms), "p50": pct(lat_ms, 50), "p99": pct(lat_ms, 99),
            "rps": len(lat_ms) / wall_s if wall_s else 0.0}


def gateway_run(url: str, images: list[bytes], clients: int, total: int) -> dict:
    parts = urlsplit(url)
    per = total // clients
    lat: list[float] = []
    handler_ms: list[float] = []                 # the function's own latency_ms: route + decode + invoke
    lock = threading.Lock()
    errors = []

    def client(c: int):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine, inner = [], []
        for i in range(per):
            body = fresh(images[(c * per + i) % len(images)])      # a new image: no prediction cache hit
            t0 = time.perf_counter()
            conn.request("POST", "/function/predict", body=body, headers={
                "Content-Type": "image/jpeg", "X-User-Id": f"bench-{c}", "Authorization": f"Bearer {api_token()}"})
            resp = conn.getresponse()
            raw = resp.read()
            mine.append((time.perf_counter() - t0) * 1000)
            if resp.status != 200:
                errors.append(resp.status)
            else:
                inner.append(json.loads(raw)["latency_ms"])
        conn.close()
        with lock:
            lat.extend(mine)
            handler_ms.extend(inner)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} requests failed: {errors[:5]}")
    row = summary(f"gateway /function/predict, {clients} client(s)", lat, wall)
    row["handler_p50"] = pct(handler_ms, 50)
    return row


def inprocess(name: str, fn, images: list[bytes], n: int) -> dict:
    for b in images[:5]:
        fn(b)                                                    # warm-up
    lat = []
    t0 = time.perf_counter()
    for i in range(n):
        s = time.perf_counter()
        fn(images[i % len(images)])
        lat.append((time.perf_counter() - s) * 1000)
    return summary(name, lat, time.perf_counter() - t0)


def pool_run(content: bytes, size: int, x: np.ndarray, threads: int = 16, per: int = 100) -> dict:
    pool = InterpreterPool(content, size)
    lat, lock = [], threading.Lock()

    def worker(_):
        mine = []
        for _ in range(per):
            s = time.perf_counter()
            with pool.lease() as m:
                m.predict(x)
            mine.append((time.perf_counter() - s) * 1000)
        with lock:
            lat.extend(mine)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(worker, range(threads)))
    return summary(f"invoke, {threads} threads, pool of {size} interpreter(s)", lat, time.perf_counter() - t0)


def keras_model(store: BlobStore, meta):
    """The same model in Keras: the stored backbone weights plus the stored head."""
    from training_job.config import TrainConfig
    from training_job.head import Head
    from training_job.model import assemble
    from training_job.pipeline import Trainer
    trainer = Trainer(store, None, TrainConfig(model=meta.model))
    backbone, _ = trainer.backbones.for_version(meta)
    head = np.load(io.BytesIO(Registry(store).fetch_artifact(meta.model, meta.version, "head.npz", meta)))
    return assemble(backbone, Head(head["kernel"], head["bias"]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", default=os.environ.get("OPENFAAS_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--model", default=os.environ.get("MODEL_NAME", "engineer"))
    ap.add_argument("--requests", type=int, default=400)
    args = ap.parse_args()
    settings = Settings.from_env()
    store = BlobStore(settings.s3)
    reg = Registry(store)
    doc, _ = reg.control()
    route = doc.models[args.model]
    version = max(route.weights, key=route.weights.get)
    meta = reg.metadata(args.model, version)
    content = reg.fetch_backbone(meta)                   # the heavy part; the head adds ~10 us
    tmp = tempfile.TemporaryDirectory()
    lite = Loader(reg, tmp.name).load(args.model, version)     # backbone + head, as serving loads it
    size = meta.input_size
    images = [to_jpeg(portrait(1000 + i)[0]) for i in range(32)]      # 160x160 JPEGs, ~6 KB

    rows = []
    rows.append(gateway_run(args.gateway, images, 1, args.requests))
    rows.append(gateway_run(args.gateway, images, 16, args.requests * 2))
    rows.append(inprocess("in-process decode + preprocess (Pillow)", lambda b: to_input(decode(b, size), size), images, 300))
    rows.append(inprocess("in-process decode + preprocess + LiteRT invoke", lambda b: lite.predict(to_input(decode(b, size), size)[None]), images, 300))
    full = keras_model(store, meta)
    rows.append(inprocess("in-process decode + preprocess + Keras model(x)", lambda b: full(to_input(decode(b, size), size)[None], training=False), images, 100))
    rows.append(inprocess("in-process decode + preprocess + Keras predict()", lambda b: full.predict(to_input(decode(b, size), size)[None], verbose=0), images, 60))
    x = to_input(decode(images[0], size), size)[None]
    for n in (1, 2, 4):
        rows.append(pool_run(content, n, x))

    floor = rows[3]["p50"]
    keras_p50 = rows[4]["p50"]
    lines = [
        f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: model {args.model} v{version}",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.platform()}; "
        f"model MobileNetV2 alpha {meta.architecture['alpha']} @ {size}px, fp32 TFLite backbone {len(content)} bytes + head {meta.sizes.get('head.tflite')} bytes; "
        f"watchdog: {'of-watchdog' if (Path(os.environ.get('AFTERDARK_CACHE', Path.home() / '.cache/afterdark')) / 'bin/of-watchdog').exists() else 'dev/watchdog.py'}.",
        "", "| what | n | p50 ms | p99 ms | req/s |", "|---|---|---|---|---|",
    ]
    lines += [f"| {r['name']} | {r['n']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['rps']:.0f} |" for r in rows]
    lines += ["",
              f"- Gateway p50 at 1 client = {rows[0]['p50']:.2f} ms vs decode+invoke {floor:.2f} ms: "
              f"{rows[0]['p50'] / floor:.1f}x (target <= 1.5x). Inside the function (its latency_ms: route, decode, "
              f"preprocess, invoke) p50 = {rows[0]['handler_p50']:.2f} ms = {rows[0]['handler_p50'] / floor:.1f}x; the rest is "
              f"the HTTP hops (client -> gateway -> watchdog -> waitress/Flask).",
              f"- LiteRT vs Keras model(x), decode included: {keras_p50 / floor:.1f}x faster (target >= 8x); "
              f"through the gateway vs Keras in-process: {keras_p50 / rows[0]['p50']:.1f}x."]
    record(lines)
    return 0


def record(lines: list[str]) -> None:
    """Append one dated section to bench/RESULTS.md (every bench script writes through here) and print it."""
    text = "\n".join(lines) + "\n"
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nAppended by bench/*.py; each section names its machine and date.\n")
    with RESULTS.open("a") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    raise SystemExit(main())
