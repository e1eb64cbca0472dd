"""Tracking sources: one write key per site or app that sends events (``archer source create``).

A write key is shown once, when it is made; the store keeps only its SHA-256. Keys are long
random strings, so a fast hash is enough (nothing to brute-force), and looking a key up is one
indexed read. A revoked source keeps its row, its name and its events: names are never reused,
so the event ids made from them (``web:<messageId>``) stay unique.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from archer.store.db import Base
from archer.store.keys import hash_key, new_key

NAME_MAX = 100
KEY_PREFIX = "wk_"
HINT_CHARS = 7  # "wk_" and four characters: enough to tell keys apart in a list


class Source(Base):
    __tablename__ = "tracking_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key_hint": self.key_hint + "…",
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "active": self.active,
        }


@dataclass(frozen=True)
class Caller:
    """The source a request authenticated as (what a route needs, detached from the session)."""

    id: int
    name: str


class SourceError(ValueError):
    """A source cannot be created or changed as asked."""


def check_name(name: str) -> str:
    """The name as stored, or SourceError: it becomes part of event ids, so it is plain."""
    if not name or len(name) > NAME_MAX:
        raise SourceError(f"a source name has 1 to {NAME_MAX} characters")
    if not all(c.isalnum() or c in "-_." for c in name):
        raise SourceError(
            f"source name {name!r}: use letters, digits, '-', '_' or '.' (it is part of event ids)"
        )
    return name


def create(s: Session, name: str, *, now: datetime) -> tuple[Source, str]:
    """A new source and its write key (returned once; only its hash is stored)."""
    check_name(name)
    if s.scalar(select(Source).where(Source.name == name)) is not None:
        raise SourceError(f"a source named {name!r} exists already (names are never reused)")
    key = new_key(KEY_PREFIX, 24)
    src = Source(
        name=name,
        key_hash=hash_key(key),
        key_hint=key[:HINT_CHARS],
        created_at=now,
        revoked_at=None,
    )
    s.add(src)
    s.flush()
    return src, key


def all_sources(s: Session) -> list[Source]:
    return list(s.scalars(select(Source).order_by(Source.name)))


def revoke(s: Session, name: str, *, now: datetime) -> Source:
    """Refuse the source's key from now on; its events already received are kept and loaded."""
    src = s.scalar(select(Source).where(Source.name == name))
    if src is None:
        known = ", ".join(x.name for x in all_sources(s)) or "none yet"
        raise SourceError(f"no source named {name!r} (sources: {known})")
    if src.revoked_at is None:
        src.revoked_at = now
    return src


def authenticate(s: Session, key: str) -> Caller | None:
    """The active source whose write key is ``key``, or None."""
    if not key:
        return None
    row = s.execute(
        select(Source.id, Source.name).where(
            Source.key_hash == hash_key(key), Source.revoked_at.is_(None)
        )
    ).first()
    return Caller(row.id, row.name) if row else None


def names_by_id(s: Session) -> dict[int, str]:
    return {i: n for i, n in s.execute(select(Source.id, Source.name))}
