"""The operational store: what changes row by row under concurrency (audience definitions now;
users, API keys, campaigns and the outbox later), in SQLAlchemy 2 over SQLite or PostgreSQL.

One module per concept holds its model and its queries (:mod:`archer.store.audiences`);
:mod:`archer.store.db` opens the database and brings its schema up to date with the Alembic
revisions in :mod:`archer.store.migrations`.
"""

from __future__ import annotations

from archer.store.db import (
    Base,
    StoreError,
    current_revision,
    engine,
    head_revision,
    migrate,
    session,
    utcnow,
)

__all__ = [
    "Base",
    "StoreError",
    "current_revision",
    "engine",
    "head_revision",
    "migrate",
    "session",
    "utcnow",
]
