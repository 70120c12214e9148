"""Shared fixtures. The services (MinIO, Kafka, the gateway) are real and already started by `make test`
(dev/test.sh); these fixtures only connect to them, on loopback."""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from layers.config import Settings
from layers.store import BlobStore

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("AFTERDARK_CACHE", Path.home() / ".cache" / "afterdark"))
BIN = CACHE / "bin"
LOGS = CACHE / "run" / "logs"
GATEWAY = os.environ.get("OPENFAAS_URL", "http://127.0.0.1:8080")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def store(settings) -> BlobStore:
    s = BlobStore(settings.s3)
    assert s.ping(), f"MinIO is not answering at {settings.s3.endpoint}: run `make test`, which starts it"
    return s


@pytest.fixture
def uid() -> str:
    """A fresh id per test, so tests never see each other's keys, topics or groups."""
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def gateway() -> str:
    return GATEWAY


def run_script(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "dev" / args[0]), *args[1:]], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
