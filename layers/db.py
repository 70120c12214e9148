"""The PostgreSQL seam: a psycopg 3 connection pool, the schema migrations, and error translation.

Example:
    db = Database(settings.db)                      # lazy: nothing connects until the first transaction
    with db.transaction() as cur:                   # committed on a clean exit, rolled back on an exception
        cur.execute("SELECT count(*) FROM votes")
        (n,) = cur.fetchone()

    python -m layers.db migrate                     # create the database if missing, apply migrations

IMPORTANT:
  * A database that cannot be reached, or a pool that cannot hand out a connection within
    `DbSettings.wait_s`, raises `Unavailable` (503): a caller never hangs and never acknowledges anything.
    psycopg's errors are translated here only; a constraint violation is a bug and propagates as itself.
  * The first transaction of a process applies the missing migrations (layers.schema), under an advisory
    lock, so functions, the trainer and the start scripts can come up in any order.
  * Connections are checked as they leave the pool (`_checkout`): a dead one (the database restarted) is
    discarded and the next tried at once. psycopg_pool's own `check=` sleeps 1 s, then 2 s, between dead
    connections, which outlasts a caller's wait after a restart. A failed reconnect is given up after
    `wait_s`. So a restart costs only the requests made while the database was down.
  * A Database is thread-safe; the pool holds at most `DbSettings.pool_max` connections.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from layers.config import DbSettings, Settings
from layers.errors import Unavailable
from layers.schema import MIGRATIONS

log = logging.getLogger("afterdark.db")
MIGRATION_LOCK = 0x5AD_DA7A       # pg_advisory_xact_lock key: one migrator at a time


def describe(url: str) -> str:
    """host:port/dbname of a URL, without the password (for messages)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparseable DATABASE_URL)"
    return f"{info.get('host', '?')}:{info.get('port', 5432)}/{info.get('dbname', '?')}"


class Database:
    def __init__(self, settings: DbSettings) -> None:
        self.settings = settings
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        self._migrated = False

    def _get_pool(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                if not self.settings.url:
                    raise Unavailable("no database is configured (secret database-url or DATABASE_URL)")
                s = self.settings
                conninfo = make_conninfo(s.url, connect_timeout=s.connect_timeout_s,
                                         options=f"-c statement_timeout={s.statement_timeout_ms}",
                                         application_name="slack-after-dark")
                self._pool = ConnectionPool(conninfo, min_size=0, max_size=s.pool_max, open=False, timeout=s.wait_s,
                                            reconnect_timeout=max(1.0, s.wait_s), name="afterdark")
                self._pool.open(wait=False)
            return self._pool

    @contextmanager
    def transaction(self, wait_s: float | None = None) -> Iterator[psycopg.Cursor]:
        """A cursor inside one transaction. Unavailable when the database cannot be reached within `wait_s`
        (default `DbSettings.wait_s`; a caller with a tighter budget, such as Slack's 3 s, passes less)."""
        if not self._migrated:
            self.migrate(wait_s)
        with self._session(wait_s) as cur:
            yield cur

    def _checkout(self, pool: ConnectionPool, wait_s: float) -> psycopg.Connection:
        """A live connection: dead ones are handed back (the pool discards them) and the next is tried."""
        deadline = time.monotonic() + wait_s
        for _ in range(self.settings.pool_max + 1):
            conn = pool.getconn(timeout=max(0.01, deadline - time.monotonic()))
            try:
                ConnectionPool.check_connection(conn)
                return conn
            except psycopg.Error:
                pool.putconn(conn)
        raise PoolTimeout("every pooled connection was dead")

    @contextmanager
    def _session(self, wait_s: float | None = None) -> Iterator[psycopg.Cursor]:
        pool = self._get_pool()
        wait_s = self.settings.wait_s if wait_s is None else wait_s
        try:
            conn = self._checkout(pool, wait_s)
            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
            finally:
                pool.putconn(conn)
        except PoolTimeout as err:
            raise Unavailable(f"the database at {describe(self.settings.url)} did not answer within "
                              f"{wait_s:g} s") from err
        except psycopg.OperationalError as err:
            raise Unavailable(f"the database at {describe(self.settings.url)} is unavailable: "
                              f"{first_line(err)}") from err

    def migrate(self, wait_s: float | None = None) -> list[int]:
        """Apply the missing migrations (idempotent). Returns the numbers it applied."""
        applied: list[int] = []
        with self._session(wait_s) as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                        "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            cur.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in cur.fetchall()}
            for number, name, statements in MIGRATIONS:
                if number in done:
                    continue
                cur.execute(statements)
                cur.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (number, name))
                applied.append(number)
        self._migrated = True
        if applied:
            log.info("applied migrations %s", applied)
        return applied

    def ping(self) -> bool:
        try:
            with self._session() as cur:
                cur.execute("SELECT 1")
            return True
        except Unavailable:
            return False

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


def first_line(err: BaseException) -> str:
    """A driver error in one line (psycopg's messages run over several), or its type when it says nothing."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def ensure_database(url: str) -> bool:
    """Create the database that `url` names when it does not exist (connecting to `postgres` on the same
    server). Returns True when it created it."""
    info = conninfo_to_dict(url)
    name = info.get("dbname")
    admin = make_conninfo(url, dbname="postgres", connect_timeout=5)
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def main(argv: list[str]) -> int:
    if argv[1:] != ["migrate"]:
        print("usage: python -m layers.db migrate", file=sys.stderr)
        return 2
    settings = Settings.from_env().db
    if not settings.url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    if ensure_database(settings.url):
        print(f"created database {describe(settings.url)}", file=sys.stderr)
    db = Database(settings)
    applied = db.migrate()
    db.close()
    if applied:
        print(f"applied migrations {applied}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
