"""The local PostgreSQL keeps its password with the cluster: starting over with a wiped cache, or a second
checkout with another cache, reaches the same cluster; a cluster from before that is repaired at its start.
A cluster of its own, on a port of its own, through dev/start.sh and dev/stop.sh as `make run` calls them."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.conftest import ROOT

VENV = Path(os.environ.get("AFTERDARK_CACHE", Path.home() / ".cache" / "afterdark")) / "venv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def cache(base: Path, name: str) -> Path:
    c = base / name
    shutil.rmtree(c, ignore_errors=True)
    c.mkdir(parents=True)
    (c / "venv").symlink_to(VENV)               # the installed packages; everything else is this cache's own
    return c


def url_of(env: dict) -> str:
    out = script(env, ". dev/lib.sh >/dev/null; printf %s \"$DATABASE_URL\"")
    assert out.returncode == 0, out.stderr
    return out.stdout


def logs_in(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def test_a_wiped_cache_and_a_second_cache_reach_the_same_cluster():
    base = Path(tempfile.mkdtemp(prefix="afterdark-pg-test-", dir="/var/tmp"))
    base.chmod(0o755)                                # as root, the server runs as afterdark-pg and must reach it
    port = free_port()
    common = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AFTERDARK_CACHE")}
    common.update(AFTERDARK_PG_HOME=str(base / "pg"), PG_PORT=str(port))
    env = lambda c: {**common, "AFTERDARK_CACHE": str(c)}
    first = cache(base, "cache")
    try:
        started = script(env(first), "dev/start.sh postgres")
        assert started.returncode == 0, started.stderr[-2000:]
        assert logs_in(url_of(env(first)))
        assert (base / "pg" / "db-password").stat().st_mode & 0o077 == 0     # kept, readable by its owner only
        second = cache(base, "other-checkout")                             # another cache, same cluster
        assert logs_in(url_of(env(second)))
        assert script(env(first), "dev/stop.sh postgres").returncode == 0
        over = cache(base, "cache")                                        # rm -rf ~/.cache/afterdark, start again
        started = script(env(over), "dev/start.sh postgres")
        assert started.returncode == 0, started.stderr[-2000:]
        assert logs_in(url_of(env(over)))
        assert script(env(over), "dev/stop.sh postgres").returncode == 0
        (base / "pg" / "db-password").unlink()                             # a cluster from before it was kept
        legacy = cache(base, "cache")
        started = script(env(legacy), "dev/start.sh postgres")
        assert started.returncode == 0 and "no record of its password" in started.stderr, started.stderr[-2000:]
        assert logs_in(url_of(env(legacy)))
    finally:
        for c in base.iterdir():
            if c.is_dir() and (c / "run" / "pids" / "postgres.pid").exists():
                script(env(c), "dev/stop.sh postgres")
        shutil.rmtree(base, ignore_errors=True)
