"""Database connection: SQLite file by default, PostgreSQL through GRIDFLOW_DATABASE_URL."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.orm import sessionmaker

# The database went away or refused the connection (a restart, a failover): adapters answer "retry" to these
# rather than treating them as defects, without having to know the driver's exception classes.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
# The database refused a value (too long for its column, out of range): the input's fault, not the server's.
DATABASE_REFUSED = (DataError,)

DEFAULT_URL = "sqlite:///gridflow.db"


def database_url(url: str | None = None) -> str:
    return url or os.environ.get("GRIDFLOW_DATABASE_URL") or DEFAULT_URL


class UTCDateTime(sa.TypeDecorator):
    """Aware UTC on both databases: SQLite would otherwise store local wall time and lose the offset."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: the engine stores UTC only")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def _sqlite_pragmas(dbapi_conn, _record):
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str | None = None, **kwargs) -> sa.Engine:
    url = database_url(url)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # pysqlite's own transaction handling would decide when to BEGIN; we issue it ourselves.
        engine = sa.create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "connect")
        def _no_pysqlite_autobegin(dbapi_conn, _record):
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # Writers take the write lock up front so that two commands on a case queue up instead of
            # failing on a stale snapshot; readers start deferred and never block a writer under WAL.
            immediate = conn.get_execution_options().get(WRITER_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


WRITER_OPTION = "gridflow_writer"


def make_sessionmaker(engine: sa.Engine, *, writer: bool) -> sessionmaker:
    """Sessions for commands (`writer`) or for reads; the difference matters on SQLite only."""
    bind = engine.execution_options(**{WRITER_OPTION: True}) if writer else engine
    return sessionmaker(bind, expire_on_commit=False)


def make_view_sessionmaker(engine: sa.Engine) -> sessionmaker:
    """Sessions for the read side's views, each a single statement (or two whose small skew does not
    matter, a page and its total). On PostgreSQL they run without a transaction, which saves the BEGIN
    and ROLLBACK round trips that are a third of a read's cost; SQLite reads as `make_sessionmaker`.
    Not for streaming (server-side cursors need a transaction)."""
    if engine.dialect.name != "postgresql":
        return make_sessionmaker(engine, writer=False)
    return sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
