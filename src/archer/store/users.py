"""Operator accounts: a unique user name and an argon2 hash of the password (``archer user``).

The password itself is never stored nor logged. Verifying an unknown name still costs one
argon2 verification, so the answer time does not tell which names exist.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from archer.store.db import Base

NAME_MAX = 100
PASSWORD_MIN = 8
PASSWORD_MAX = 1024  # argon2 takes any length; a bound keeps a request from costing more

_hasher = PasswordHasher()  # RFC 9106 defaults: argon2id, 64 MiB, 3 passes
_DUMMY = _hasher.hash("archer: a password nobody has")


class UserAccount(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "created_at": self.created_at.isoformat(),
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
        }


@dataclass(frozen=True)
class User:
    """A signed-in operator, detached from the session that read it.

    ``stamp`` changes with the password: a session made before a change no longer matches.
    """

    id: int
    username: str
    stamp: str = ""


def _stamp(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


class UserError(ValueError):
    """An account cannot be made or changed as asked."""


def check_username(name: str) -> str:
    """The name as stored, or UserError: printable, no spaces at the ends, at most 100 chars."""
    if not name or not name.strip():
        raise UserError("a user needs a name")
    if name != name.strip() or len(name) > NAME_MAX:
        raise UserError(f"a user name has 1 to {NAME_MAX} characters, no spaces at the ends")
    if not name.isprintable() or any(c in "<>\"'&/\\" for c in name):
        raise UserError(f"user name {name!r}: use letters, digits, spaces, '.', '-', '_' or '@'")
    return name


def check_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise UserError(f"a password has at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise UserError(f"a password has at most {PASSWORD_MAX} characters")
    return password


def create(s: Session, username: str, password: str, *, now: datetime) -> UserAccount:
    """A new operator account; the name must be free."""
    check_username(username)
    check_password(password)
    if s.scalar(select(UserAccount).where(UserAccount.username == username)) is not None:
        raise UserError(f"a user named {username!r} exists already")
    u = UserAccount(
        username=username,
        password_hash=_hasher.hash(password),
        created_at=now,
        last_login_at=None,
    )
    s.add(u)
    s.flush()
    return u


def set_password(s: Session, username: str, password: str) -> UserAccount:
    """A new password; the user's sessions made before end with it."""
    u = s.scalar(select(UserAccount).where(UserAccount.username == username))
    if u is None:
        raise UserError(f"no user named {username!r}")
    u.password_hash = _hasher.hash(check_password(password))
    return u


def all_users(s: Session) -> list[UserAccount]:
    return list(s.scalars(select(UserAccount).order_by(UserAccount.username)))


def get(s: Session, user_id: int) -> User | None:
    row = s.execute(
        select(UserAccount.id, UserAccount.username, UserAccount.password_hash).where(
            UserAccount.id == user_id
        )
    ).first()
    return User(row.id, row.username, _stamp(row.password_hash)) if row else None


def authenticate(s: Session, username: str, password: str, *, now: datetime) -> User | None:
    """The user whose name and password these are, or None (same cost either way)."""
    u = s.scalar(select(UserAccount).where(UserAccount.username == username))
    if u is None or len(password) > PASSWORD_MAX:
        _verify(_DUMMY, password[:PASSWORD_MAX])
        return None
    if not _verify(u.password_hash, password):
        return None
    if _hasher.check_needs_rehash(u.password_hash):  # parameters raised since it was made
        u.password_hash = _hasher.hash(password)
    u.last_login_at = now
    return User(u.id, u.username, _stamp(u.password_hash))


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
