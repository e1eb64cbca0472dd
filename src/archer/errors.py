"""One error family for the whole core, mapped once to HTTP problems and once to exit codes.

Core functions raise these (or subclasses named for their domain, such as
``UnknownAudience(NotFound)``); the web's problem handler and the CLI's command wrapper
turn them into a ``application/problem+json`` answer or a one-line message and exit code.

* :class:`Invalid` — the input is wrong: says what, where, and what was expected (422);
* :class:`NotFound` — a named thing does not exist; suggests the closest names (404);
* :class:`Conflict` — the thing exists, or is in use, or another run holds it (409);
* :class:`NotBuilt` — the warehouse has no profile yet: run a build first (409);
* :class:`Unavailable` — a store is busy or cannot be reached: retry later (503).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, ClassVar


class ArcherError(Exception):
    """Base of every error a user can cause or act on. ``str(e)`` is the whole message."""

    status: ClassVar[int] = 400
    kind: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra  # members a client can act on (line, column, suggestions, …)

    def __str__(self) -> str:
        return self.message


class Invalid(ArcherError, ValueError):
    status, kind, title = 422, "invalid", "Invalid input"


class NotFound(ArcherError, LookupError):
    status, kind, title = 404, "not-found", "Not found"


class Conflict(ArcherError):
    status, kind, title = 409, "conflict", "Conflict"


class NotBuilt(NotFound):
    """No customer profile (or no table a build makes) yet."""

    status, kind, title = 409, "not-built", "Not built yet"
    DEFAULT = "no customer profile yet: run `archer build` (or Build on the Data page)"

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        super().__init__(message or self.DEFAULT, **extra)


class Unavailable(ArcherError):
    status, kind, title = 503, "unavailable", "Service unavailable"
    exit_code = 75  # EX_TEMPFAIL: try again later


def suggest(name: str, known: Iterable[str], n: int = 2, cutoff: float = 0.6) -> tuple[str, ...]:
    """The closest known names: the best match, and a second only when it is about as close
    (so 'provnce' suggests 'province', not also 'phone'). Case is ignored. A higher ``cutoff``
    keeps only near-certain slips (the importer refuses a file on those)."""
    lowered = {k.lower(): k for k in known}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=cutoff)
    if not hits:
        return ()
    best = difflib.SequenceMatcher(None, name.lower(), hits[0]).ratio()
    close = [
        h for h in hits if difflib.SequenceMatcher(None, name.lower(), h).ratio() >= best - 0.05
    ]
    return tuple(lowered[h] for h in close)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' — did you mean 'x'?' for the closest names, or '' when nothing is close."""
    close = suggest(name, known)
    return f" — did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
