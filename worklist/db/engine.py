"""Engines and sessions for SQLite (embedded) and PostgreSQL (scaled), and schema migration."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from worklist.domain import StoreUnavailableError

__all__ = ["Database", "make_engine", "migrate"]

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


# Alembic's command API works through module-level proxies: one migration at a time per process.
_MIGRATE_LOCK = threading.Lock()

MIGRATE_LOCK_KEY = 0x7472696167650001
"""Key of the PostgreSQL advisory lock that serialises migrations across processes."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own handling is off).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers take the write lock up front (BEGIN IMMEDIATE) so that a read-then-write
    # transaction (a job claim) cannot interleave with another; readers stay deferred.
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Create an engine with the store's connection settings.

    Parameters
    ----------
    url
        SQLAlchemy URL: ``sqlite:///path`` or ``postgresql+psycopg://...``.
    pool_size
        Connections kept per process (PostgreSQL).

    Returns
    -------
    Engine
        SQLite engines use WAL, ``synchronous=FULL``, foreign keys and a busy timeout.
    """
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic (idempotent).

    On PostgreSQL the upgrade holds a transaction-level advisory lock
    (:data:`MIGRATE_LOCK_KEY`), so processes started together on an empty store do not race.

    Parameters
    ----------
    engine
        The store's engine.
    revision
        Target revision; ``"head"`` is the newest.
    """
    cfg = _alembic_config(engine.url.render_as_string(hide_password=False))
    with _MIGRATE_LOCK, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # The processes of a region start together and each migrates: one at a time (the
            # lock is released at commit), so the others find the schema at head.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


class Database:
    """The store: an engine plus read and write session factories.

    Parameters
    ----------
    url
        SQLAlchemy URL.
    create
        Run the migrations to head on open.

    Raises
    ------
    StoreUnavailableError
        If the store cannot be reached (the message names it without its password), or has
        no schema and ``create`` is false.
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._write = sessionmaker(bind=writer, expire_on_commit=False)
        where = self.engine.url.render_as_string(hide_password=True)
        try:
            if create:
                migrate(self.engine)
            elif not inspect(self.engine).has_table("studies"):
                raise StoreUnavailableError(
                    f"the store at {where} has no schema; run the migrations first"
                )
        except OperationalError as exc:  # not reachable (down, restarting, wrong address)
            self.engine.dispose()
            reason = str(exc.orig or exc).strip().splitlines()[0]
            raise StoreUnavailableError(f"cannot reach the store at {where}: {reason}") from exc

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Open a read-only unit of work (rolled back at the end)."""
        with self._read() as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """Open a write transaction, committed on success and rolled back on error."""
        with self._write() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
