#!/usr/bin/env python3
"""How good and how stable the default bootstrap is: `python -m training_job bootstrap` (the real CLI, the
default configuration) for each seed into a fresh model name, then v1's hold-out accuracy next to the data's
ceiling (training_job/ceiling.py), the spread over the seeds, the time, and whether the first seed, run again,
gives the same backbone (its fingerprint hashes every weight) and the same metrics.
Needs the local stack (MinIO, Kafka, PostgreSQL: `make up`). Appends to bench/RESULTS.md.

    PYTHONPATH=. python bench/bootstrap_quality.py [--seeds 1,2,3] [--repeat-first] [extra bootstrap options...]
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid

from bench.predict_latency import record
from layers.config import Settings
from layers.images import preprocess
from layers.serving.loader import Loader
from layers.registry import Registry
from layers.store import BlobStore
from portraits.synth import showcase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bootstrap(seed: int, extra: list[str]) -> dict:
    model = f"bench-q{seed}-{uuid.uuid4().hex[:6]}"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "training_job", "bootstrap", "--model", model, "--seed", str(seed),
                           *extra], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ROOT, "MLFLOW_TRACKING_URI": ""})
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bootstrap --seed {seed} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    reg = Registry(BlobStore(Settings.from_env().s3))
    meta = reg.metadata(model, 1)
    return {"seed": seed, "model": model, "seconds": seconds, "accuracy": meta.metrics["holdout"]["accuracy"],
            "n": meta.metrics["holdout"]["n"], "ceiling": (meta.metrics.get("ceiling") or {}).get("accuracy"),
            "fingerprint": meta.backbone["fingerprint"], "data": meta.data["data_sha256"],
            "samples": score_samples(reg, model, meta)}


def score_samples(reg: Registry, model: str, meta) -> dict[str, str]:
    """How v1 (on LiteRT, as served) answers the samples `make run` writes (portraits.synth.showcase)."""
    with tempfile.TemporaryDirectory() as tmp:
        loaded = Loader(reg, tmp).load(model, 1)
        out = {}
        for name, sample in showcase().items():
            p = loaded.predict(preprocess(sample.jpeg, meta.input_size)[None])[0]
            out[name] = f"{meta.labels[int(p.argmax())]} {float(p.max()):.2f}"
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--repeat-first", action="store_true", help="run the first seed twice (determinism)")
    args, extra = ap.parse_known_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = [bootstrap(s, extra) for s in seeds]
    again = bootstrap(seeds[0], extra) if args.repeat_first else None
    accs = [r["accuracy"] for r in runs]
    mean = sum(accs) / len(accs)
    ceiling = runs[0]["ceiling"]
    lines = [f"\n## Bootstrap quality ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
             f"{os.cpu_count()} cores{', options ' + ' '.join(extra) if extra else ''})", "",
             "| seed | v1 hold-out accuracy | n | the data's ceiling | bootstrap time | engineer.jpg | non_engineer.jpg "
             "| ambiguous.jpg |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['seed']} | {r['accuracy']:.3f} | {r['n']} | {r['ceiling']} | {r['seconds']:.0f} s | "
              + " | ".join(r["samples"][k] for k in ("engineer", "non_engineer", "ambiguous")) + " |" for r in runs]
    lines += ["", f"Mean {mean:.3f}, spread {min(accs):.3f}–{max(accs):.3f} "
                  f"(±{(max(accs) - min(accs)) / 2 * 100:.1f} points); the ceiling is {ceiling}, "
                  f"{(ceiling - mean) * 100:.1f} points above the mean." if ceiling else ""]
    if again:
        same = again["fingerprint"] == runs[0]["fingerprint"] and again["accuracy"] == runs[0]["accuracy"]
        lines += [f"Seed {seeds[0]} again: backbone {'identical' if again['fingerprint'] == runs[0]['fingerprint'] else 'DIFFERENT'} "
                  f"(fingerprint {again['fingerprint'][:12]}), accuracy {again['accuracy']:.3f} "
                  f"({'the same metrics' if same else 'different metrics'})."]
    record(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
