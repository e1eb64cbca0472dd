"""Saved audiences: the operator's verbs around the language — save, list, show, delete,
members, export — and the membership snapshots that show how an audience grows and shrinks.

Definitions live in the operational store (:mod:`archer.store.audiences`) with who and when;
memberships live in the warehouse, beside the profile they were computed from:

* ``audience_memberships(audience, customer_id, as_of)`` — every member of every saved audience
  on each build day;
* ``audience_snapshots(audience, as_of, size, taken_at)`` — one row per audience and build day,
  so that a day on which an audience was empty is still a day of its history.

A snapshot of a day replaces that day's rows, so building the same day twice changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from archer.audiences import count, explain, members, parse
from archer.audiences import tree as t
from archer.audiences.grammar import AudienceError
from archer.csvsafe import escape_cell
from archer.errors import Conflict, NotFound, did_you_mean
from archer.store import audiences as store

Resolve = Callable[[str], str]

if TYPE_CHECKING:
    from archer.workspace import Workspace


class UnknownAudience(NotFound):
    """No saved audience by that name."""


class AudienceInUse(Conflict):
    """The audience is referenced by others (``in_audience``) and cannot be deleted."""


# -- definitions ----------------------------------------------------------------------------------
def _definitions(ws: Workspace) -> dict[str, str]:
    with ws.session() as s:
        return {a.name: a.query for a in store.all_audiences(s)}


def _resolve_from(defs: dict[str, str]) -> Resolve:
    def resolve(name: str) -> str:
        try:
            return defs[name]
        except KeyError:
            # The language suggests the closest of the names given second.
            raise KeyError(name, tuple(sorted(defs))) from None

    return resolve


def resolver(ws: Workspace) -> Resolve:
    """``in_audience("vip")`` → the saved query of ``vip`` (KeyError for an unknown name)."""
    return _resolve_from(_definitions(ws))


def references(query: str) -> set[str]:
    """The audiences a query names directly with ``in_audience``."""
    return {
        str(leaf.args[0].value.value)
        for leaf in t.leaves(parse(query))
        if isinstance(leaf, t.Call) and leaf.name == "in_audience" and leaf.args
    }


def _unknown(name: str, known: list[str]) -> UnknownAudience:
    return UnknownAudience(f"no saved audience {name!r}{did_you_mean(name, known)}")


def save(
    ws: Workspace,
    name: str,
    query: str,
    *,
    user: str,
    description: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Save ``query`` as ``name`` (or update it), once it has been compiled and counted.

    A query that does not compile raises :class:`AudienceError` and nothing is stored. An update
    keeps ``created_by``/``created_at`` and, when ``description`` is None, the description.
    Returns the saved definition with its current ``count`` and the ``as_of`` it was counted on.
    """
    name = store.check_name(name)
    if not user or not user.strip():
        raise ValueError("who is saving the audience? (user is empty)")
    defs = _definitions(ws)
    # Counted with the new definition in place, so a cycle through it is caught here.
    counted = count(ws, query, resolve=_resolve_from({**defs, name: query}))
    with ws.session(write=True) as s:
        # Another process may have deleted a referenced audience since we counted.
        known = {a.name for a in store.all_audiences(s)} | {name}
        for ref in sorted(references(query) - known):
            raise _unknown(ref, sorted(known))
        a, created = store.put(
            s, name, query, description=description, user=user.strip(), now=now or ws.now()
        )
        doc = a.to_dict()
    return {**doc, "created": created, "count": counted["count"], "as_of": counted["as_of"]}


class AudienceExists(Conflict):
    kind = "exists"


def create(
    ws: Workspace, name: str, query: str, *, user: str, description: str | None = None
) -> dict[str, Any]:
    """Save a new audience; :class:`AudienceExists` when the name is taken."""
    name = store.check_name(name)
    with ws.session() as s:
        taken = store.get(s, name) is not None
    if taken:
        raise AudienceExists(
            f"an audience named {name!r} exists already: change it with "
            "PUT /api/audiences/{name} or choose another name"
        )
    return save(ws, name, query, user=user, description=description)


def list_audiences(ws: Workspace) -> list[dict[str, Any]]:
    """Every saved audience, by name."""
    with ws.session() as s:
        return [a.to_dict() for a in store.all_audiences(s)]


def get(ws: Workspace, name: str) -> dict[str, Any]:
    """One saved audience's definition with who saved it and when."""
    with ws.session() as s:
        a = store.get(s, name)
        if a is None:
            raise _unknown(name, [x.name for x in store.all_audiences(s)])
        return a.to_dict()


def delete(ws: Workspace, name: str) -> dict[str, Any]:
    """Delete a saved audience, unless another one refers to it. Its snapshots are kept."""
    with ws.session(write=True) as s:
        everyone = store.all_audiences(s)
        target = next((a for a in everyone if a.name == name), None)
        if target is None:
            raise _unknown(name, [a.name for a in everyone])
        users = sorted(a.name for a in everyone if a.name != name and _refers(a.query, name))
        if users:
            raise AudienceInUse(
                f"audience {name!r} is used by {', '.join(repr(u) for u in users)} "
                f'(in_audience("{name}")): change or delete {"it" if len(users) == 1 else "them"}'
                " first"
            )
        doc = target.to_dict()
        store.remove(s, name)
    return doc


def _refers(query: str, name: str) -> bool:
    try:
        return name in references(query)
    except AudienceError:  # a definition the language no longer reads: be careful
        return f'"{name}"' in query and "in_audience" in query


# -- evaluating a saved audience ------------------------------------------------------------------
def count_of(ws: Workspace, name: str) -> dict[str, Any]:
    """The size of a saved audience now and of each of its top-level clauses."""
    a = get(ws, name)
    return {"audience": name, **count(ws, a["query"], resolve=resolver(ws))}


def members_of(
    ws: Workspace,
    name: str,
    *,
    fields: list[str] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """The members of a saved audience (``customer_id`` and ``fields``), ordered by id."""
    a = get(ws, name)
    return members(ws, a["query"], fields=fields, limit=limit, resolve=resolver(ws))


def explain_member(ws: Workspace, name: str, customer_id: str) -> dict[str, Any]:
    """Why a customer is in a saved audience or not: each clause, their values, true/false."""
    a = get(ws, name)
    doc = explain(ws, a["query"], customer_id, resolve=resolver(ws))
    return {"audience": name, "query": a["query"], **doc}


def export(
    ws: Workspace,
    name: str,
    path: Path | str,
    fields: list[str] | None = None,
) -> dict[str, Any]:
    """Write the members of a saved audience to ``path``: ``.csv`` or ``.parquet``.

    Parquet keeps the types. CSV is UTF-8 with a byte-order mark (so Excel reads Chinese
    names) and every text cell starting with ``= + - @``, a tab or a carriage return gets a
    leading ``'``; numbers are written as numbers, negative ones too.
    """
    path = Path(path)
    fmt = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: export writes .csv or .parquet files")
    df = members_of(ws, name, fields=fields)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")  # a reader never sees half a file
    try:
        if fmt == "parquet":
            df.to_parquet(tmp, index=False)
        else:
            _csv_safe(df).to_csv(tmp, index=False, encoding="utf-8-sig")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return {
        "audience": name,
        "path": str(path),
        "format": fmt,
        "rows": len(df),
        "fields": list(df.columns),
    }


def _csv_safe(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(escape_cell)
    return out


class Audiences:
    """The audiences of one workspace, for an analyst: ``ws.audiences.count('…')``."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def count(self, query: str) -> dict[str, Any]:
        """How many customers ``query`` selects, and each top-level clause alone."""
        return count(self.ws, query, resolve=resolver(self.ws))

    def members(
        self, query: str, fields: list[str] | None = None, limit: int | None = None
    ) -> pd.DataFrame:
        return members(self.ws, query, fields=fields, limit=limit, resolve=resolver(self.ws))

    def explain(self, query: str, customer_id: str) -> dict[str, Any]:
        return explain(self.ws, query, customer_id, resolve=resolver(self.ws))

    def list(self) -> list[dict[str, Any]]:
        return list_audiences(self.ws)

    def get(self, name: str) -> dict[str, Any]:
        return get(self.ws, name)

    def save(self, name: str, query: str, *, user: str, description: str | None = None):
        return save(self.ws, name, query, user=user, description=description)

    def delete(self, name: str) -> dict[str, Any]:
        return delete(self.ws, name)

    def export(self, name: str, path: Path | str, fields: list[str] | None = None):
        return export(self.ws, name, path, fields)

    def history(self, name: str) -> list[dict[str, Any]]:
        from archer.audiences.snapshots import history

        return history(self.ws, name)
