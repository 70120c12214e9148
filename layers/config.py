"""Typed settings, read once from the environment (and OpenFaaS secret files) at the edge.

Example:
    settings = Settings.from_env()
    store = BlobStore(settings.s3)

Secrets come from /var/openfaas/secrets/<name> when that file exists (OpenFaaS), else from an environment
variable (local runs). No other module reads os.environ.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

SECRETS_DIR = Path("/var/openfaas/secrets")

DEFAULT_S3_ENDPOINT = "http://127.0.0.1:9000"
DEFAULT_S3_ACCESS_KEY = "afterdark"
DEFAULT_S3_SECRET_KEY = "afterdark-dev-secret"
DEFAULT_S3_BUCKET = "afterdark"
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_MODEL = "engineer"


def read_secret(name: str, env_var: str, env: Mapping[str, str], default: str | None = None,
                secrets_dir: Path = SECRETS_DIR) -> str | None:
    """An OpenFaaS secret file wins; then the environment variable; then the default."""
    path = secrets_dir / name
    if path.is_file():
        return path.read_text().strip()
    return env.get(env_var, default)


@dataclass(frozen=True)
class S3Settings:
    endpoint: str = DEFAULT_S3_ENDPOINT
    access_key: str = DEFAULT_S3_ACCESS_KEY
    secret_key: str = DEFAULT_S3_SECRET_KEY
    bucket: str = DEFAULT_S3_BUCKET
    region: str = "us-east-1"
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 10.0


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str = DEFAULT_KAFKA_BOOTSTRAP
    # How long a client waits for the broker at construction/send before it reports Unavailable.
    bootstrap_timeout_ms: int = 5000
    request_timeout_ms: int = 5000


@dataclass(frozen=True)
class Settings:
    s3: S3Settings = field(default_factory=S3Settings)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    model: str = DEFAULT_MODEL

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        s3 = S3Settings(
            endpoint=env.get("S3_ENDPOINT", DEFAULT_S3_ENDPOINT),
            access_key=read_secret("s3-access-key", "S3_ACCESS_KEY", env, DEFAULT_S3_ACCESS_KEY) or "",
            secret_key=read_secret("s3-secret-key", "S3_SECRET_KEY", env, DEFAULT_S3_SECRET_KEY) or "",
            bucket=env.get("S3_BUCKET", DEFAULT_S3_BUCKET),
            region=env.get("S3_REGION", "us-east-1"),
        )
        kafka = KafkaSettings(bootstrap=env.get("KAFKA_BOOTSTRAP", DEFAULT_KAFKA_BOOTSTRAP))
        return cls(s3=s3, kafka=kafka, model=env.get("MODEL_NAME", DEFAULT_MODEL))
