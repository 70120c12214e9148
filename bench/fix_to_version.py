#!/usr/bin/env python3
"""Time from votes being acknowledged by /fix to the new version being published (model-events), with the
online trainer running (make run): Kafka -> ledger (PostgreSQL) -> training run -> publish. Runs `--rounds`
batches; the first warms the trainer (TF import, backbone load), the later ones are the warm numbers.
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

from bench.predict_latency import RESULTS, api_token
from layers.config import Settings
from training_job.synth import portrait, to_jpeg


def post_fix(gateway: str, jpeg: bytes, label: str, user: str) -> dict:
    req = urllib.request.Request(f"{gateway}/function/fix?label={label}&user={user}", data=jpeg, method="POST",
                                 headers={"Content-Type": "image/jpeg", "Authorization": f"Bearer {api_token()}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


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
    rows = []
    for r in range(args.rounds):
        run = uuid.uuid4().hex[:6]
        for i in range(args.batch):
            label = "engineer" if i % 2 else "non_engineer"
            post_fix(args.gateway, to_jpeg(portrait(int(run, 16) + i, label)[0]), label, f"bench-{run}-{i}")
        acked = time.time()
        published = None
        while published is None and time.time() - acked < 300:
            for records in consumer.poll(timeout_ms=500).values():
                for rec in records:
                    e = json.loads(rec.value)
                    if e["model"] == args.model and e["event"] in ("published", "refused"):
                        published = (e, time.time())
        if published is None:
            raise SystemExit("no model event within 300 s: is the trainer running (make run)?")
        e, at = published
        rows.append((r, e["event"], e["version"], at - acked))
        print(f"round {r}: {e['event']} v{e['version']} {at - acked:.1f} s after the last fix was acknowledged")
    lines = [f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: fix -> published version, model {args.model}",
             f"Batch of {args.batch} votes through /fix, into the ledger; trainer `min_votes` 8. Round 0 is the running trainer's first batch (it loads the backbone from S3 then).", "",
             "| round | event | version | seconds from last ack to model-event |", "|---|---|---|---|"]
    lines += [f"| {r} | {ev} | {v} | {s:.1f} |" for r, ev, v, s in rows]
    with RESULTS.open("a") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
