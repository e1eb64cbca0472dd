"""The store's schema history: an ordered list of migrations, each applied once.

Each migration is written against its own frozen table definitions, not against today's
models, so that replaying history on an empty database always gives the same schema; the
models in the concept modules describe the result (a test checks that they agree).

To change the schema, append a migration with the next version number — never edit one that
has shipped. :func:`archer.store.db.migrate` applies the pending ones in one transaction and
records each in ``schema_version``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from archer.store.db import NAMING


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_audiences(conn: Connection) -> None:
    md = MetaData(naming_convention=NAMING)
    Table(
        "audiences",
        md,
        Column("id", Integer, primary_key=True),
        Column("name", String(100), nullable=False, unique=True),
        Column("query", Text, nullable=False),
        Column("description", Text, nullable=True),
        Column("created_by", String(100), nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("updated_by", String(100), nullable=False),
        Column("updated_at", DateTime, nullable=False),
    )
    md.create_all(conn)


def _v2_tracking(conn: Connection) -> None:
    md = MetaData(naming_convention=NAMING)
    Table(
        "tracking_sources",
        md,
        Column("id", Integer, primary_key=True),
        Column("name", String(100), nullable=False, unique=True),
        Column("key_hash", String(64), nullable=False, unique=True),
        Column("key_hint", String(16), nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("revoked_at", DateTime, nullable=True),
    )
    Table(
        "tracking_inbox",
        md,
        Column("seq", Integer, primary_key=True),
        Column("source_id", Integer, nullable=False),
        Column("message_id", String(200), nullable=False),
        Column("received_at", DateTime, nullable=False),
        Column("body", Text, nullable=False),
    )
    Table(
        "tracking_message_ids",
        md,
        Column("source_id", Integer, primary_key=True),
        Column("message_id", String(200), primary_key=True),
        Column("received_at", DateTime, nullable=False, index=True),
        sqlite_with_rowid=False,
    )
    md.create_all(conn)


def _v3_users_apikeys(conn: Connection) -> None:
    md = MetaData(naming_convention=NAMING)
    Table(
        "users",
        md,
        Column("id", Integer, primary_key=True),
        Column("username", String(100), nullable=False, unique=True),
        Column("password_hash", String(200), nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("last_login_at", DateTime, nullable=True),
    )
    Table(
        "api_keys",
        md,
        Column("id", Integer, primary_key=True),
        Column("name", String(100), nullable=False, unique=True),
        Column("key_hash", String(64), nullable=False, unique=True),
        Column("prefix", String(16), nullable=False),
        Column("created_by", String(100), nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("last_used_at", DateTime, nullable=True),
        Column("revoked_at", DateTime, nullable=True),
    )
    md.create_all(conn)


def _v4_session_epoch(conn: Connection) -> None:
    # One column, so that a sign-out can end the user's sessions (cookies carry a stamp of it).
    conn.execute(text("ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0"))


MIGRATIONS: list[Migration] = [
    Migration(1, "audiences: saved audience definitions with who and when", _v1_audiences),
    Migration(2, "tracking: sources with hashed write keys, the inbox, message ids", _v2_tracking),
    Migration(3, "users and API keys: operator accounts, hashed REST API keys", _v3_users_apikeys),
    Migration(4, "users: session_epoch, bumped at sign-out to end sessions", _v4_session_epoch),
]

for _i, _m in enumerate(MIGRATIONS, start=1):  # versions are 1, 2, 3, … in order
    if _m.version != _i:
        raise RuntimeError(f"migration {_m.description!r} has version {_m.version}, expected {_i}")
