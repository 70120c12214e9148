"""CLI of the training job.

    python -m training_job bootstrap [--base imagenet|none|s3://bucket/key] [--force] [options]
    python -m training_job consume   [--max-runs N] [--exit-when-idle S] [options]
    python -m training_job dataset   [--dataset NAME] [--dataset-size N] [--seed S]   # publish synthetic data
    python -m training_job replay    --versions 1,3 [--from-offset N | --since-ms T] [--limit N]   # canary analysis
    python -m training_job export    --version N --out model.tflite     # one portable file: backbone + head
    python -m training_job archive   [--exit-when-idle S]    # /predict's decoy images from Kafka into S3

Every TrainConfig field is an option (--input-size, --alpha, --min-fixes, ...); TRAIN_<FIELD> environment
variables set the defaults (for the container). S3 and Kafka come from the environment / OpenFaaS-style
secrets (layers.config); PostgreSQL from DATABASE_URL (secret database-url).
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields

from layers.config import Settings
from training_job.config import TrainConfig


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training_job", description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["bootstrap", "consume", "dataset", "replay", "export", "archive"])
    p.add_argument("--version", type=int, default=None, help="export: the version to export")
    p.add_argument("--out", default=None, help="export: the file to write (default <model>-v<N>.tflite)")
    p.add_argument("--versions", default="", help="replay: the versions to compare, e.g. 1,3")
    p.add_argument("--from-offset", type=int, default=0, help="replay: the predict-decoy offset to start at")
    p.add_argument("--since-ms", type=int, default=None, help="replay: start at this time (ms) instead")
    p.add_argument("--limit", type=int, default=500, help="replay: at most this many decoy records")
    p.add_argument("--force", action="store_true", help="bootstrap even when versions exist")
    p.add_argument("--max-runs", type=int, default=None, help="consume: stop after N training runs")
    p.add_argument("--exit-when-idle", type=float, default=None, help="consume: stop after S idle seconds")
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        default = os.environ.get(f"TRAIN_{f.name.upper()}", getattr(defaults, f.name))
        p.add_argument("--" + f.name.replace("_", "-"), type=type(getattr(defaults, f.name)), default=default)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cfg = TrainConfig(**{f.name: type(getattr(TrainConfig(), f.name))(getattr(args, f.name)) for f in fields(TrainConfig)})
    settings = Settings.from_env()
    if args.command == "archive":
        import signal
        from training_job.archiver import DecoyArchiver
        archiver = DecoyArchiver(settings)
        signal.signal(signal.SIGTERM, archiver.stop)
        totals = archiver.run(exit_when_idle_s=args.exit_when_idle)
        print(f"[archive] stopped: {totals.stored} stored, {totals.present} already there, "
              f"{len(totals.dead)} dead-lettered", flush=True)
        return 0
    if args.command == "replay":
        from training_job.replay_report import main as replay_main
        return replay_main(settings, cfg.model, args.versions, args.from_offset, args.since_ms, args.limit)
    if args.command == "export":
        import json
        from pathlib import Path
        from training_job.export import export
        if args.version is None:
            raise SystemExit("export needs --version N")
        out = Path(args.out or f"{cfg.model}-v{args.version}.tflite").resolve()
        print(json.dumps(export(settings, cfg, args.version, out), indent=1))
        return 0
    if args.command == "dataset":
        from training_job.datasets import publish_synthetic
        from layers.store import BlobStore
        items = publish_synthetic(BlobStore(settings.s3), cfg.dataset, cfg.dataset_size, cfg.seed)
        print(f"published {len(items)} images to datasets/{cfg.dataset}/")
        return 0
    if args.command == "bootstrap":
        from training_job.bootstrap import bootstrap
        outcomes = bootstrap(settings, cfg, force=args.force)
        bad = [o for o in outcomes if o.status == "refused"]
        for o in outcomes:
            print(f"[bootstrap] {o.status} v{o.version} {o.reason}".rstrip())
        return 1 if bad else 0
    from training_job.learner import Learner
    Learner(settings, cfg).run(max_runs=args.max_runs, exit_when_idle_s=args.exit_when_idle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
