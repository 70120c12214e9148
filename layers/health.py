"""What a function reports about itself: dependency versions and whether S3 and Kafka answer.

Example:
    report = health_report(Settings.from_env())   # {"ok": True, "s3": {...}, "kafka": {...}, "versions": {...}}
"""
from __future__ import annotations

import platform
import time
from importlib import metadata

from layers.config import Settings

PACKAGES = ("ai-edge-litert", "numpy", "pillow", "boto3", "kafka-python", "slack-sdk", "flask", "waitress")


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _timed(check) -> dict:
    start = time.perf_counter()
    try:
        check()
        ok, error = True, None
    except Exception as err:  # a health probe reports every failure, it never raises
        ok, error = False, f"{type(err).__name__}: {err}"
    return {"ok": ok, "latency_ms": round((time.perf_counter() - start) * 1000, 1), "error": error}


def check_s3(settings: Settings) -> dict:
    from layers.store import BlobStore

    def probe():
        if not BlobStore(settings.s3).ping():
            raise ConnectionError(f"bucket {settings.s3.bucket} not reachable at {settings.s3.endpoint}")
    return {"endpoint": settings.s3.endpoint, "bucket": settings.s3.bucket, **_timed(probe)}


def check_kafka(settings: Settings) -> dict:
    def probe():
        from kafka import KafkaAdminClient
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap, bootstrap_timeout_ms=2000,
                                 request_timeout_ms=2000)
        try:
            admin.list_topics()
        finally:
            admin.close()
    return {"bootstrap": settings.kafka.bootstrap, **_timed(probe)}


def health_report(settings: Settings) -> dict:
    s3, kafka = check_s3(settings), check_kafka(settings)
    return {"ok": s3["ok"] and kafka["ok"], "s3": s3, "kafka": kafka, "versions": package_versions()}
