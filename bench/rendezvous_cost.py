#!/usr/bin/env python3
"""What a rendezvous over k versions costs against one prediction, with the shared backbone and without it.

In process (the function's own code, no HTTP): for the same 640x480 JPEG photos,
  * one /predict:         decode + preprocess + one version (backbone + head)
  * rendezvous, shared:   layers.serving.rendezvous over k versions on one backbone (one backbone pass, k heads)
  * rendezvous, naive:    the same k versions, each with its own copy of the backbone (k backbone passes)
and through the gateway (make run): /predict against /predict-rendezvous, p50 at one client, a new image in
every request (bench.predict_latency.fresh: /predict's cache never answers).
Target: k = 3 costs <= 1.3 x one /predict. Appends to bench/RESULTS.md.

    PYTHONPATH=. python bench/rendezvous_cost.py [--model NAME] [--k 3] [--n 300]
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
import urllib.request
from dataclasses import replace

from bench.predict_latency import api_token, fresh, record
from layers.config import Settings
from layers.images import decode, to_input
from layers.registry import ModelRoute, Registry
from layers.serving.rendezvous import Rendezvous
from layers.serving.runtime import Snapshot
from layers.serving.loader import InterpreterPool, Loaded, Loader
from layers.store import BlobStore
from portraits.synth import portrait


def photos(n: int) -> list[bytes]:
    """640x480 JPEGs, the size a phone photo is scaled to before upload."""
    out = []
    for i in range(n):
        buf = io.BytesIO()
        portrait(5000 + i)[0].resize((640, 480)).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def p50(fn, images: list[bytes], n: int) -> float:
    for b in images[:10]:
        fn(b)                                                         # warm-up
    lat = []
    for i in range(n):
        t = time.perf_counter()
        fn(images[i % len(images)])
        lat.append((time.perf_counter() - t) * 1000)
    return statistics.median(lat)


class FixedRuntime:
    """What Rendezvous reads of a ModelRuntime (its model and snapshot), fixed to the k versions under test."""

    def __init__(self, model: str, loaded: list[Loaded]) -> None:
        self.model = model
        self._snap = Snapshot(route=ModelRoute(weights={loaded[0].version: 100}, rendezvous=[l.version for l in loaded]),
                              versions={l.version: l for l in loaded})

    def snapshot(self) -> Snapshot:
        return self._snap


def gateway_p50(gateway: str, path: str, images: list[bytes], n: int) -> float:
    def call(b: bytes) -> None:                      # a new image every call: /predict's cache never answers
        req = urllib.request.Request(f"{gateway}/function/{path}", data=fresh(b), method="POST", headers={
            "Content-Type": "image/jpeg", "Authorization": f"Bearer {api_token()}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()
    return p50(call, images, n)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.environ.get("MODEL_NAME", "engineer"))
    ap.add_argument("--gateway", default=os.environ.get("OPENFAAS_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    settings = Settings.from_env()
    registry = Registry(BlobStore(settings.s3))
    cache = tempfile.TemporaryDirectory()
    loader = Loader(registry, cache.name, settings.serving.interpreters)
    heads = [v for v in reversed(registry.versions(args.model))
             if "head.tflite" in registry.metadata(args.model, v).artifacts]
    shared: list[Loaded] = []
    for v in heads:
        l = loader.load(args.model, v)
        if not shared or l.shares == shared[0].shares:
            shared.append(l)
        if len(shared) == args.k:
            break
    if len(shared) < args.k:
        raise SystemExit(f"{args.model} has {len(shared)} versions on one backbone; {args.k} needed (vote a round)")
    backbone = registry.fetch_backbone(shared[0].meta)
    naive = [replace(l, backbone=InterpreterPool(backbone, settings.serving.interpreters), backbone_sha256=None)
             for l in shared]
    images = photos(32)
    size = shared[0].input_size
    one = p50(lambda b: shared[0].predict(to_input(decode(b, draft_size=size), size)[None]), images, args.n)
    serving = replace(settings.serving, rendezvous_delays_ms={})
    rv_shared = Rendezvous(FixedRuntime(args.model, shared), serving)
    rv_naive = Rendezvous(FixedRuntime(args.model, naive), serving)
    shared_ms = p50(lambda b: rv_shared.score(b, "bench"), images, args.n)
    naive_ms = p50(lambda b: rv_naive.score(b, "bench"), images, args.n)
    versions = ",".join(str(l.version) for l in shared)
    rows = [("one /predict (decode + preprocess + backbone + head)", one),
            (f"rendezvous over k={args.k} (v{versions}), shared backbone", shared_ms),
            (f"rendezvous over k={args.k}, naive: a backbone pass per version", naive_ms)]
    try:
        route = registry.control()[0].models[args.model]
        rows += [("through the gateway: /predict", gateway_p50(args.gateway, "predict", images, args.n // 3)),
                 (f"through the gateway: /predict-rendezvous (set v{','.join(map(str, route.rendezvous))})",
                  gateway_p50(args.gateway, "predict-rendezvous", images, args.n // 3))]
    except OSError as err:
        print(f"gateway not measured: {err}")
    lines = [f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: rendezvous cost, model {args.model}",
             f"{os.cpu_count()} CPUs; MobileNetV2 alpha {shared[0].meta.architecture['alpha']} @ {size}px, 640x480 JPEG "
             f"photos, p50 of {args.n} calls in one thread; interpreter pools of {settings.serving.interpreters}.", "",
             "| path | p50 ms | x one /predict |", "|---|---|---|"]
    lines += [f"| {name} | {ms:.2f} | {ms / (one if 'gateway' not in name else rows[3][1]):.2f} |" for name, ms in rows]
    lines += ["", f"- k={args.k} with the shared backbone costs {shared_ms / one:.2f}x one prediction (target <= 1.3x); "
              f"the naive path costs {naive_ms / one:.2f}x."]
    record(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
