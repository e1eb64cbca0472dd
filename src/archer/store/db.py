"""Opening the operational store: one engine per database URL, sessions, UTC times, migrations.

SQLite (the default, ``archer.db`` in the workspace) runs in WAL mode, so readers never wait for
the writer, with foreign keys enforced and a busy timeout instead of an immediate "database is
locked". A session that writes starts with ``BEGIN IMMEDIATE``: it takes the write lock up front,
so two writers queue instead of one failing half-way.

PostgreSQL (``postgresql+psycopg://…``, the ``postgres`` extra) runs the same code, tested
against a real server. A writing session there takes one transaction-level advisory lock
(:data:`PG_WRITE_LOCK`) at its start: the same one-writer-at-a-time guarantee, across every
process sharing the database, while readers never wait. Work that must scale out across
workers (the coming dispatcher) should not hold it: it claims its rows with
``SELECT … FOR UPDATE SKIP LOCKED`` in a session opened without ``write=True``.

The schema is kept by Alembic: the revisions in ``store/migrations/versions`` are applied when
a process first opens the store (:func:`migrate`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError as AlembicError
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    MetaData,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

from archer.clock import SYSTEM
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
PG_WRITE_LOCK = 0x41524348  # "ARCH": the advisory lock a writing session holds on PostgreSQL
MIGRATIONS = Path(__file__).with_name("migrations")  # Alembic's scripts, shipped in the package
LEGACY_LEDGER = "schema_version"  # the hand-written runner's ledger, before Alembic
LEGACY_LAST = 3  # the last version it wrote: revision 0001 is the same schema


class StoreError(Unavailable):
    """The operational store could not be opened or is not at a version this code knows."""


def utcnow() -> datetime:
    """The wall clock's instant, aware in UTC, for callers at the edge (scripts, tests); core
    code takes ``ws.now()`` so that a manual clock governs it."""
    return SYSTEM.now()


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
        if u.drivername == "postgresql":  # SQLAlchemy would pick psycopg2; Archer ships psycopg 3
            u = u.set(drivername="postgresql+psycopg")
        if u.get_backend_name() == "postgresql":
            eng = create_engine(u, pool_pre_ping=True)
            event.listen(eng, "begin", _pg_begin)
            return eng
        if u.get_backend_name() != "sqlite":
            raise ValueError(
                "the operational store is SQLite (sqlite:///…) or PostgreSQL "
                "(postgresql+psycopg://…)"
            )
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(u, connect_args={"timeout": SQLITE_BUSY_SECONDS})
    except (ArgumentError, NoSuchModuleError, ValueError) as e:
        raise StoreError(f"cannot use the database URL {_hide(url)}: {e}") from None
    except ImportError as e:
        raise StoreError(
            f"cannot use the database URL {_hide(url)}: its driver is not installed ({e.name}); "
            "for PostgreSQL install Archer with the postgres extra: pip install 'archer[postgres]'"
        ) from None
    event.listen(eng, "connect", _sqlite_connect)
    event.listen(eng, "begin", _sqlite_begin)
    return eng


def _hide(url: str) -> str:
    try:
        return repr(make_url(url).render_as_string(hide_password=True))
    except ArgumentError:
        return repr(url)


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


def _pg_begin(conn: Connection) -> None:
    # PostgreSQL has no database-wide write lock; a transaction-level advisory lock gives a
    # writing session the same guarantee. Readers never take it, so they never wait.
    if conn.get_execution_options().get(_IMMEDIATE, False):
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")


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


def alembic_config(conn: Connection | None = None, **attributes: object) -> Config:
    """Alembic's configuration, made in code: the revisions shipped in the package, ``conn``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes.update(connection=conn, **attributes)
    return cfg


def head_revision() -> str:
    """The newest revision this Archer knows (what :func:`migrate` brings a store to)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, f"no revisions under {MIGRATIONS}"
    return head


def current_revision(eng: Engine) -> str | None:
    """The revision the store is at (None: never migrated, or made before Alembic)."""
    with eng.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(eng: Engine) -> list[str]:
    """Apply the revisions the store has not seen, all in one transaction; return them.

    A store made by Archer's earlier hand-written runner (a ``schema_version`` table) is taken
    over: the first revision creates only the tables its version lacked, and the old ledger
    is dropped. A store from a newer Archer (a revision this one does not know) is refused
    rather than written by code that does not know its tables.
    """
    script = ScriptDirectory.from_config(alembic_config())
    known = {r.revision for r in script.walk_revisions()}
    try:
        with eng.connect() as conn:
            # A writing session: SQLite's write lock or PostgreSQL's advisory lock, so two
            # processes opening a new store one after the other do not both migrate it.
            conn.execution_options(**{_IMMEDIATE: True})
            with conn.begin():
                legacy = _legacy_version(conn, eng)
                current = MigrationContext.configure(conn).get_current_revision()
                if current is not None and current not in known:
                    raise StoreError(
                        f"the operational store {_where(eng)} is at revision {current!r}, which "
                        f"this Archer does not know (its newest is {script.get_current_head()!r}):"
                        " upgrade Archer"
                    )
                pending = [r.revision for r in script.iterate_revisions("head", current)][::-1]
                if pending:
                    command.upgrade(alembic_config(conn, legacy_version=legacy), "head")
                if legacy is not None:
                    conn.execute(text(f"DROP TABLE {LEGACY_LEDGER}"))
    except (SQLAlchemyError, AlembicError, RevisionError) as e:
        raise StoreError(f"cannot open the operational store {_where(eng)}: {e}") from None
    return pending


def _legacy_version(conn: Connection, eng: Engine) -> int | None:
    """The version in the hand-written runner's ledger, or None where there is none."""
    if not inspect(conn).has_table(LEGACY_LEDGER):
        return None
    v = int(conn.scalar(text(f"SELECT max(version) FROM {LEGACY_LEDGER}")) or 0)
    if v > LEGACY_LAST:
        raise StoreError(
            f"the operational store {_where(eng)} is at schema version {v}, newer than this "
            f"Archer knows ({LEGACY_LAST}): upgrade Archer"
        )
    return v


def dispose_url(url: str) -> None:
    """Close the pooled connections of the store at ``url``, if it is open.

    The next :func:`engine` or :func:`session` opens it again (and checks its schema again).
    """
    with _lock:
        eng = _engines.pop(url, None)
    if eng is not None:
        eng.dispose()


def _where(eng: Engine) -> str:
    return eng.url.render_as_string(hide_password=True)
