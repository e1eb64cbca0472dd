"""Opening the operational store: one engine per database URL, sessions, UTC times, migrations.

SQLite (the default, ``archer.db`` in the workspace) runs in WAL mode, so readers never wait for
the writer, with foreign keys enforced and a busy timeout instead of an immediate "database is
locked". A session that writes starts with ``BEGIN IMMEDIATE``: it takes the write lock up front,
so two writers queue instead of one failing half-way. PostgreSQL works through the same code.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

from archer.config import Settings
from archer.errors import Unavailable

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLITE_BUSY_SECONDS = 30
_IMMEDIATE = "archer_immediate"  # execution option: begin with the write lock (SQLite)
_PG_MIGRATION_LOCK = 0x41524348  # "ARCH": one migrating process at a time on PostgreSQL


class StoreError(Unavailable):
    """The operational store could not be opened or is not at a version this code knows."""


def utcnow() -> datetime:
    """The current instant, timezone-aware in UTC (read at the edges, passed inwards)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """An instant: stored as naive UTC (SQLite has no time zones), read back aware in UTC.

    A naive value is refused rather than guessed at: it could be local time.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: give the store timezone-aware instants")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of every store model; ``datetime`` columns are UTC instants."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime}


# The ledger of applied migrations. Its shape never changes: every version of Archer reads it.
schema_version = Table(
    "schema_version",
    MetaData(),
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_at", DateTime, nullable=False),  # naive UTC, like every stored instant
)

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def engine(settings: Settings) -> Engine:
    """The engine of the workspace's store, created once per URL and migrated on first use."""
    url = settings.database_url
    with _lock:
        eng = _engines.get(url)
        if eng is None:
            eng = _create(url)
            try:
                migrate(eng)
            except BaseException:
                eng.dispose()
                raise
            _engines[url] = eng
    return eng


def _create(url: str) -> Engine:
    try:
        u = make_url(url)
        if u.get_backend_name() != "sqlite":
            return create_engine(u, pool_pre_ping=True)
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(u, connect_args={"timeout": SQLITE_BUSY_SECONDS})
    except (ArgumentError, NoSuchModuleError, ValueError) as e:
        raise StoreError(f"cannot use the database URL {url!r}: {e}") from None
    event.listen(eng, "connect", _sqlite_connect)
    event.listen(eng, "begin", _sqlite_begin)
    return eng


def _sqlite_connect(dbapi_conn, _record) -> None:
    # The sqlite3 module would otherwise open transactions behind SQLAlchemy's back and never
    # for DDL; with its own handling off, _sqlite_begin below decides (SQLAlchemy's recipe).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; safe with WAL
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(_IMMEDIATE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def session(settings: Settings, *, write: bool = False) -> Iterator[Session]:
    """A session in one transaction: committed when the block ends, rolled back on an error.

    ``write=True`` takes SQLite's write lock at the start, so a read-then-write (save an
    audience unless it exists) cannot be overtaken by another writer in between.
    """
    eng = engine(settings)
    if write:
        eng = eng.execution_options(**{_IMMEDIATE: True})
    with Session(eng, expire_on_commit=False) as s, s.begin():
        yield s


def latest_version() -> int:
    from archer.store.migrations import MIGRATIONS

    return MIGRATIONS[-1].version if MIGRATIONS else 0


def current_version(eng: Engine) -> int:
    """The version the database is at (0: never migrated)."""
    with eng.connect() as conn:
        if not inspect(conn).has_table(schema_version.name):
            return 0
        return int(conn.scalar(select(func.max(schema_version.c.version))) or 0)


def migrate(eng: Engine) -> list[int]:
    """Apply the migrations the database has not seen, all in one transaction; return them.

    A database from a newer Archer is refused rather than written by code that does not know
    its tables.
    """
    from archer.store.migrations import MIGRATIONS

    applied: list[int] = []
    try:
        with eng.connect() as conn:
            conn.execution_options(**{_IMMEDIATE: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK}
                    )
                schema_version.create(conn, checkfirst=True)
                current = int(conn.scalar(select(func.max(schema_version.c.version))) or 0)
                latest = MIGRATIONS[-1].version if MIGRATIONS else 0
                if current > latest:
                    raise StoreError(
                        f"the operational store {_where(eng)} is at schema version {current}, "
                        f"newer than this Archer knows ({latest}): upgrade Archer"
                    )
                for m in MIGRATIONS:
                    if m.version <= current:
                        continue
                    m.apply(conn)
                    conn.execute(
                        insert(schema_version).values(
                            version=m.version,
                            description=m.description,
                            applied_at=utcnow().replace(tzinfo=None),
                        )
                    )
                    applied.append(m.version)
    except SQLAlchemyError as e:
        raise StoreError(f"cannot open the operational store {_where(eng)}: {e}") from None
    return applied


def _where(eng: Engine) -> str:
    return eng.url.render_as_string(hide_password=True)
