"""Operator accounts: a unique user name and an argon2 hash of the password (``archer user``).

The password itself is never stored nor logged. Verifying an unknown name still costs one
argon2 verification, so the answer time does not tell which names exist.

A sign-in is three steps so that the slow one holds no lock: read the account
(:func:`credentials`), verify the password with no transaction open (:func:`verify`, about
0.1 s of argon2), then record it in a short write (:func:`signed_in`). ``session_epoch``
counts the sign-outs: :func:`end_sessions` bumps it, and every session made before no longer
matches the user's :attr:`User.stamp`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import String, select, update
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
    session_epoch: Mapped[int] = mapped_column(default=0)  # +1 at each sign-out

    def to_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "created_at": self.created_at.isoformat(),
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
        }


@dataclass(frozen=True)
class User:
    """A signed-in operator, detached from the session that read it.

    ``stamp`` changes with the password and at each sign-out: a session made before either
    no longer matches.
    """

    id: int
    username: str
    stamp: str = ""


def _stamp(password_hash: str, epoch: int) -> str:
    return hashlib.sha256(f"{epoch}:{password_hash}".encode()).hexdigest()[:16]


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
        select(
            UserAccount.id,
            UserAccount.username,
            UserAccount.password_hash,
            UserAccount.session_epoch,
        ).where(UserAccount.id == user_id)
    ).first()
    return User(row.id, row.username, _stamp(row.password_hash, row.session_epoch)) if row else None


@dataclass(frozen=True)
class Credentials:
    """What a sign-in checks the password against, read before the check."""

    id: int
    password_hash: str


def credentials(s: Session, username: str) -> Credentials | None:
    """The account's hash to verify against (a read: no lock held while verifying)."""
    row = s.execute(
        select(UserAccount.id, UserAccount.password_hash).where(UserAccount.username == username)
    ).first()
    return Credentials(row.id, row.password_hash) if row else None


def verify(c: Credentials | None, password: str) -> str | None:
    """The hash to keep if ``password`` is the account's, else None: the slow part, to run
    with no transaction open. The hash is a fresh one when the hashing parameters were raised
    since it was made. An unknown account or an overlong password costs one verification all
    the same.
    """
    if c is None or len(password) > PASSWORD_MAX:
        _verify(_DUMMY, password[:PASSWORD_MAX])
        return None
    if not _verify(c.password_hash, password):
        return None
    if _hasher.check_needs_rehash(c.password_hash):
        return _hasher.hash(password)
    return c.password_hash


def signed_in(s: Session, c: Credentials, new_hash: str, *, now: datetime) -> User | None:
    """Record a verified sign-in (a short write); None if the account changed meanwhile."""
    u = s.get(UserAccount, c.id)
    if u is None or u.password_hash != c.password_hash:  # removed, or a new password since
        return None
    u.password_hash = new_hash
    u.last_login_at = now
    s.flush()
    return User(u.id, u.username, _stamp(u.password_hash, u.session_epoch))


def end_sessions(s: Session, user_id: int) -> None:
    """End every session of the user made until now (a sign-out)."""
    s.execute(
        update(UserAccount)
        .where(UserAccount.id == user_id)
        .values(session_epoch=UserAccount.session_epoch + 1)
    )


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def authenticate(s: Session, username: str, password: str, *, now: datetime) -> User | None:
    """Check a password and record the sign-in in one go (scripts, tests; the app does the
    three steps apart so that argon2 runs outside the write transaction)."""
    found = credentials(s, username)
    new_hash = verify(found, password)
    if found is None or new_hash is None:
        return None
    return signed_in(s, found, new_hash, now=now)
