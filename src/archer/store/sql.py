"""Statements the store's modules share that differ by dialect (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(
    s: Session, table: Table, records: Sequence[dict[str, Any]], keys: Sequence[str]
) -> int:
    """Insert ``records``, skipping any that collide on the unique ``keys``; how many were new.

    The unique key decides, not a read before the write: two processes inserting the same
    rows at once add each row once.
    """
    if not records:
        return 0
    if s.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
        stmt = stmt.returning(table.c[keys[0]])
        return len(s.execute(stmt, list(records)).all())
    stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    result = s.connection().execute(stmt, list(records))
    return max(result.rowcount, 0)
