"""API keys for the REST API (``archer apikey``): a name, the SHA-256 of the key, its prefix.

A key is shown once, when it is made. Keys are 32 random bytes, so a fast hash is enough
(there is nothing to guess) and finding a key is one indexed read. A revoked key keeps its
row, so a list still tells who made it and when it was last used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from archer.store.db import Base
from archer.store.keys import hash_key, new_key

NAME_MAX = 100
KEY_PREFIX = "ak_"
PREFIX_CHARS = 8  # "ak_" and five characters: enough to tell keys apart in a list
# last_used_at is written at most this often per key, so reads do not all become writes.
TOUCH_EVERY = timedelta(minutes=1)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        def iso(v: datetime | None) -> str | None:
            return v.isoformat() if v else None

        return {
            "name": self.name,
            "prefix": self.prefix + "…",
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "last_used_at": iso(self.last_used_at),
            "revoked_at": iso(self.revoked_at),
            "active": self.active,
        }


@dataclass(frozen=True)
class KeyOwner:
    """The key a request authenticated with, detached from the session that read it."""

    id: int
    name: str
    created_by: str


class ApiKeyError(ValueError):
    """A key cannot be made or changed as asked."""


def check_name(name: str) -> str:
    if not name or len(name) > NAME_MAX:
        raise ApiKeyError(f"an API key name has 1 to {NAME_MAX} characters")
    if not all(c.isalnum() or c in "-_." for c in name):
        raise ApiKeyError(f"API key name {name!r}: use letters, digits, '-', '_' or '.'")
    return name


def create(s: Session, name: str, *, created_by: str, now: datetime) -> tuple[ApiKey, str]:
    """A new key and its secret text (returned once; only its hash is stored)."""
    check_name(name)
    if s.scalar(select(ApiKey).where(ApiKey.name == name)) is not None:
        raise ApiKeyError(f"an API key named {name!r} exists already")
    key = new_key(KEY_PREFIX, 32)
    k = ApiKey(
        name=name,
        key_hash=hash_key(key),
        prefix=key[:PREFIX_CHARS],
        created_by=created_by,
        created_at=now,
        last_used_at=None,
        revoked_at=None,
    )
    s.add(k)
    s.flush()
    return k, key


def all_keys(s: Session) -> list[ApiKey]:
    return list(s.scalars(select(ApiKey).order_by(ApiKey.name)))


def revoke(s: Session, name: str, *, now: datetime) -> ApiKey:
    """Refuse the key from now on."""
    k = s.scalar(select(ApiKey).where(ApiKey.name == name))
    if k is None:
        known = ", ".join(x.name for x in all_keys(s)) or "none yet"
        raise ApiKeyError(f"no API key named {name!r} (keys: {known})")
    if k.revoked_at is None:
        k.revoked_at = now
    return k


def authenticate(s: Session, key: str) -> tuple[KeyOwner, datetime | None] | None:
    """The active key whose text is ``key`` and when it was last used, or None."""
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    row = s.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.created_by, ApiKey.last_used_at).where(
            ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    return KeyOwner(row.id, row.name, row.created_by), row.last_used_at


def touch(s: Session, key_id: int, *, now: datetime) -> None:
    s.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
