"""Saved audiences in the store: the name an operator gives a query, with who and when.

Only storage lives here; validating a query against the warehouse is the service's job
(:mod:`archer.audiences.service`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from archer.errors import Invalid
from archer.store.db import Base

NAME_MAX = 100


class Audience(Base):
    __tablename__ = "audiences"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    query: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "query": self.query,
            "description": self.description,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_by": self.updated_by,
            "updated_at": self.updated_at.isoformat(),
        }


def check_name(name: str) -> str:
    """The name as stored, or ValueError saying what is wrong with it.

    Names appear inside the language's strings (``in_audience("vip")``), so quotes,
    backslashes and control characters are refused; any script is fine (``高价值客户``).
    """
    if not name or not name.strip():
        raise Invalid("an audience needs a name")
    if name != name.strip():
        raise Invalid(f"audience name {name!r} starts or ends with spaces")
    if len(name) > NAME_MAX:
        raise Invalid(f"audience name is {len(name)} characters long; at most {NAME_MAX}")
    bad = sorted({c for c in name if c in '"\\/' or not c.isprintable()})
    if bad:
        why = " (names are part of the app's and the API's addresses)" if "/" in bad else ""
        raise Invalid(f"audience name {name!r} contains {', '.join(map(repr, bad))}{why}")
    if name in (".", ".."):
        raise Invalid(f"audience name {name!r} cannot be an address: choose a word")
    return name


def get(s: Session, name: str) -> Audience | None:
    return s.scalar(select(Audience).where(Audience.name == name))


def all_audiences(s: Session) -> list[Audience]:
    return list(s.scalars(select(Audience).order_by(Audience.name)))


def put(
    s: Session,
    name: str,
    query: str,
    *,
    description: str | None,
    user: str,
    now: datetime,
) -> tuple[Audience, bool]:
    """Create or update ``name``; return it and whether it is new.

    An update keeps ``created_*``, and the description when none is given. Text with a NUL
    character is refused (PostgreSQL cannot store it; SQLite alike, so both stores agree).
    """
    for what, v in (("query", query), ("description", description)):
        if v is not None and "\x00" in v:
            raise ValueError(f"the audience's {what} contains a NUL character (\\x00)")
    a = get(s, name)
    if a is None:
        a = Audience(
            name=check_name(name),
            query=query,
            description=description,
            created_by=user,
            created_at=now,
            updated_by=user,
            updated_at=now,
        )
        s.add(a)
        s.flush()
        return a, True
    a.query = query
    if description is not None:
        a.description = description
    a.updated_by = user
    a.updated_at = now
    s.flush()
    return a, False


def remove(s: Session, name: str) -> bool:
    a = get(s, name)
    if a is None:
        return False
    s.delete(a)
    s.flush()
    return True
