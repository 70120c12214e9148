"""What a function reports about itself: dependency versions and whether S3, Kafka and PostgreSQL answer.

Example:
    report = health_report(settings, db)   # {"ok": True, "s3": {...}, "kafka": {...}, "postgres": {...}, "versions": {...}}
"""
from __future__ import annotations

import platform
import time
from importlib import metadata

from layers.config import Settings

PACKAGES = ("ai-edge-litert", "numpy", "pillow", "boto3", "kafka-python", "slack-sdk", "psycopg", "psycopg-pool",
            "flask", "waitress")


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
        admin = KafkaAdminClient(**settings.kafka.client_options(), bootstrap_timeout_ms=2000,
                                 request_timeout_ms=2000)
        try:
            admin.list_topics()
        finally:
            admin.close()
    return {"bootstrap": settings.kafka.bootstrap, **_timed(probe)}


def check_postgres(db) -> dict:
    from layers.db import describe

    def probe():
        if not db.ping():
            raise ConnectionError("PostgreSQL did not answer")
    return {"database": describe(db.settings.url) if db.settings.url else None, **_timed(probe)}


def health_report(settings: Settings, db) -> dict:
    s3, kafka, pg = check_s3(settings), check_kafka(settings), check_postgres(db)
    return {"ok": s3["ok"] and kafka["ok"] and pg["ok"], "s3": s3, "kafka": kafka, "postgres": pg,
            "versions": package_versions()}
