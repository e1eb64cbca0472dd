"""An audience language error placed in its query, for the pages to mark where it is."""

from __future__ import annotations

from typing import Any

from archer.audiences import AudienceError


def offset_of(query: str, line: int, column: int) -> int:
    """The character offset of a 1-based line and column in ``query``."""
    lines = query.split("\n")
    line = max(1, min(line, len(lines)))
    return min(len(query), sum(len(s) + 1 for s in lines[: line - 1]) + max(0, column - 1))


def placed(query: str, e: AudienceError) -> dict[str, Any]:
    """The error as a dict with the query cut around its place: ``before``, ``at``, ``after``
    (``at`` is at least one character wide, or empty at the very end)."""
    start = e.start if e.start is not None else offset_of(query, e.line, e.column)
    start = max(0, min(start, len(query)))
    end = e.end if e.end is not None and e.end > start else min(len(query), start + 1)
    return {
        **e.to_dict(),
        "before": query[:start],
        "at": query[start:end],
        "after": query[end:],
    }
