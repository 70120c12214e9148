#!/usr/bin/env python3
"""Time from votes being acknowledged by /fix to the new version being published (model-events), registered as
the canary, and ready in the predict function, with the online trainer running (make run): Kafka -> ledger
(PostgreSQL) -> training run -> publish -> register -> the function's poll loads it. Runs `--rounds` batches;
the first warms the trainer (TF import, backbone load), the later ones are the warm numbers. The stages
inside the run come from the version's metadata (metrics.stage_seconds).
Appends to bench/RESULTS.md. Uses the local API token (API_TOKEN, or ~/.cache/afterdark/api-token).

    PYTHONPATH=. python bench/fix_to_version.py [--gateway URL] [--model NAME] [--batch 8] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import os
import time
import urllib.request
import uuid

from kafka import KafkaConsumer

from bench.predict_latency import api_token, record
from layers.config import Settings
from layers.registry import Registry
from layers.store import BlobStore
from portraits.synth import portrait, to_jpeg


def post_fix(gateway: str, jpeg: bytes, label: str, user: str) -> dict:
    req = urllib.request.Request(f"{gateway}/function/fix?label={label}&user={user}", data=jpeg, method="POST",
                                 headers={"Content-Type": "image/jpeg", "Authorization": f"Bearer {api_token()}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def ready_in_predict(gateway: str, version: int) -> bool:
    req = urllib.request.Request(f"{gateway}/function/predict/status", headers={"Authorization": f"Bearer {api_token()}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(version) in json.loads(resp.read()).get("ready", {})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", default=os.environ.get("OPENFAAS_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--model", default=os.environ.get("MODEL_NAME", "engineer"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    settings = Settings.from_env()
    consumer = KafkaConsumer(settings.kafka.topics.model_events, bootstrap_servers=settings.kafka.bootstrap,
                             auto_offset_reset="latest", enable_auto_commit=False, group_id=None)
    consumer.poll(timeout_ms=1000)                        # join at the end of the topic
    registry = Registry(BlobStore(settings.s3))
    rows = []
    for r in range(args.rounds):
        run = uuid.uuid4().hex[:6]
        for i in range(args.batch):
            label = "engineer" if i % 2 else "non_engineer"
            post_fix(args.gateway, to_jpeg(portrait(int(run, 16) + i, label)[0]), label, f"bench-{run}-{i}")
        acked = time.time()
        seen: dict[str, tuple[dict, float]] = {}
        while "registered" not in seen and "refused" not in seen and time.time() - acked < 300:
            for records in consumer.poll(timeout_ms=100).values():
                for rec in records:
                    e = json.loads(rec.value)
                    if e["model"] == args.model and e["event"] in ("published", "registered", "refused"):
                        seen.setdefault(e["event"], (e, time.time()))
        if not seen:
            raise SystemExit("no model event within 300 s: is the trainer running (make run)?")
        if "refused" in seen:
            e, at = seen["refused"]
            rows.append((r, "refused", None, at - acked, None, None, {}))
            print(f"round {r}: refused ({e.get('reason')})")
            continue
        e, published_at = seen["published"]
        registered_at = seen["registered"][1]
        version = e["version"]
        while not ready_in_predict(args.gateway, version) and time.time() - registered_at < 30:
            time.sleep(0.05)
        serving_at = time.time()
        stages = registry.metadata(args.model, version).metrics.get("stage_seconds", {})
        rows.append((r, "published", version, published_at - acked, registered_at - acked, serving_at - acked, stages))
        print(f"round {r}: v{version} published {published_at - acked:.2f} s, registered {registered_at - acked:.2f} s, "
              f"ready in /predict {serving_at - acked:.2f} s after the last fix was acknowledged; stages {stages}")
    lines = [f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: fix -> published version -> canary serving, model {args.model}",
             f"Batch of {args.batch} votes through /fix, into the ledger; trainer `min_votes` 8. Round 0 is the running "
             f"trainer's first batch (it loads the backbone and imports TensorFlow's converter then). Seconds from the "
             f"last acknowledged fix; stages are the run's own (metadata metrics.stage_seconds).", "",
             "| round | version | published | registered (canary) | ready in /predict | embeddings | head fit | convert head | parity |",
             "|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: "" if v is None else f"{v:.2f}"
    lines += [f"| {r} | {v or ev} | {fmt(p)} | {fmt(g)} | {fmt(s)} | {st.get('embeddings', '')} | {st.get('head', '')} | "
              f"{st.get('convert', '')} | {st.get('parity', '')} |" for r, ev, v, p, g, s, st in rows]
    record(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
