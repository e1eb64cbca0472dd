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

import difflib
import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from archer.audiences import compile_audience, count, explain, members, parse
from archer.audiences import tree as t
from archer.audiences.evaluate import profile_as_of
from archer.audiences.grammar import AudienceError
from archer.config import Settings
from archer.csvsafe import escape_cell
from archer.store import StoreError, session, utcnow
from archer.store import audiences as store
from archer.warehouse import Warehouse

MEMBERSHIPS = "audience_memberships"
SNAPSHOTS = "audience_snapshots"
MEMBERSHIP_SCHEMA = ibis.schema({"audience": "string", "customer_id": "string", "as_of": "date"})
SNAPSHOT_SCHEMA = ibis.schema(
    {"audience": "string", "as_of": "date", "size": "int64", "taken_at": "timestamp"}
)
Resolve = Callable[[str], str]


class UnknownAudience(LookupError):
    """No saved audience by that name."""


class AudienceInUse(ValueError):
    """The audience is referenced by others (``in_audience``) and cannot be deleted."""


# -- definitions ----------------------------------------------------------------------------------
def _definitions(settings: Settings) -> dict[str, str]:
    with session(settings) as s:
        return {a.name: a.query for a in store.all_audiences(s)}


def _resolve_from(defs: dict[str, str]) -> Resolve:
    def resolve(name: str) -> str:
        try:
            return defs[name]
        except KeyError:
            # The language suggests the closest of the names given second.
            raise KeyError(name, tuple(sorted(defs))) from None

    return resolve


def resolver(settings: Settings) -> Resolve:
    """``in_audience("vip")`` → the saved query of ``vip`` (KeyError for an unknown name)."""
    return _resolve_from(_definitions(settings))


def references(query: str) -> set[str]:
    """The audiences a query names directly with ``in_audience``."""
    return {
        str(leaf.args[0].value.value)
        for leaf in t.leaves(parse(query))
        if isinstance(leaf, t.Call) and leaf.name == "in_audience" and leaf.args
    }


def _unknown(name: str, known: list[str]) -> UnknownAudience:
    close = difflib.get_close_matches(name, known, n=2, cutoff=0.6)
    hint = f" — did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return UnknownAudience(f"no saved audience {name!r}{hint}")


def save(
    settings: Settings,
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
    defs = _definitions(settings)
    # Counted with the new definition in place, so a cycle through it is caught here.
    counted = count(settings, query, resolve=_resolve_from({**defs, name: query}))
    with session(settings, write=True) as s:
        # Another process may have deleted a referenced audience since we counted.
        known = {a.name for a in store.all_audiences(s)} | {name}
        for ref in sorted(references(query) - known):
            raise _unknown(ref, sorted(known))
        a, created = store.put(
            s, name, query, description=description, user=user.strip(), now=now or utcnow()
        )
        doc = a.to_dict()
    return {**doc, "created": created, "count": counted["count"], "as_of": counted["as_of"]}


def list_audiences(settings: Settings) -> list[dict[str, Any]]:
    """Every saved audience, by name."""
    with session(settings) as s:
        return [a.to_dict() for a in store.all_audiences(s)]


def get(settings: Settings, name: str) -> dict[str, Any]:
    """One saved audience's definition with who saved it and when."""
    with session(settings) as s:
        a = store.get(s, name)
        if a is None:
            raise _unknown(name, [x.name for x in store.all_audiences(s)])
        return a.to_dict()


def delete(settings: Settings, name: str) -> dict[str, Any]:
    """Delete a saved audience, unless another one refers to it. Its snapshots are kept."""
    with session(settings, write=True) as s:
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
def count_of(settings: Settings, name: str) -> dict[str, Any]:
    """The size of a saved audience now and of each of its top-level clauses."""
    a = get(settings, name)
    return {"audience": name, **count(settings, a["query"], resolve=resolver(settings))}


def members_of(
    settings: Settings,
    name: str,
    *,
    fields: list[str] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """The members of a saved audience (``customer_id`` and ``fields``), ordered by id."""
    a = get(settings, name)
    return members(settings, a["query"], fields=fields, limit=limit, resolve=resolver(settings))


def explain_member(settings: Settings, name: str, customer_id: str) -> dict[str, Any]:
    """Why a customer is in a saved audience or not: each clause, their values, true/false."""
    a = get(settings, name)
    doc = explain(settings, a["query"], customer_id, resolve=resolver(settings))
    return {"audience": name, "query": a["query"], **doc}


def export(
    settings: Settings,
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
    df = members_of(settings, name, fields=fields)
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


# -- membership snapshots ---------------------------------------------------------------------
def on_build(settings: Settings, wh: Warehouse, now: datetime | None = None) -> dict[str, Any]:
    """Hook for ``archer build``: snapshot every saved audience once the profile is written.

    The build goes on when the store cannot be read; the reason is under ``errors``.
    """
    try:
        return _snapshot(settings, wh, profile_as_of(wh), now or utcnow())
    except StoreError as e:
        return {"as_of": profile_as_of(wh).isoformat(), "audiences": {}, "errors": {"": str(e)}}


def snapshot_memberships(
    settings: Settings, as_of: date | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Write the members of every saved audience as of the built profile's day.

    Audiences are evaluated over the profile, so ``as_of`` (if given) must be the day the
    profile was built as of. Returns ``as_of``, the size of each audience and, under
    ``errors``, the audiences that no longer compile (they are skipped, not fatal).
    """
    with Warehouse.connect(settings.warehouse_url) as wh:
        built = profile_as_of(wh) if wh.has_table("customer_profile") else None
        if built is None:
            raise ValueError("no customer profile yet: run `archer build` first")
        if as_of is not None and as_of != built:
            raise ValueError(
                f"the profile is built as of {built}, not {as_of}: "
                f"run `archer build --as-of {as_of}` to snapshot that day"
            )
        return _snapshot(settings, wh, built, now or utcnow())


def _snapshot(settings: Settings, wh: Warehouse, day: date, now: datetime) -> dict[str, Any]:
    defs = _definitions(settings)
    if not defs and not wh.has_table(SNAPSHOTS):  # a shop without audiences: nothing to keep
        return {"as_of": day.isoformat(), "audiences": {}, "errors": {}}
    resolve = _resolve_from(defs)
    parts: list[ir.Table] = []
    errors: dict[str, str] = {}
    for name, query in defs.items():
        try:
            ids = compile_audience(wh, settings, query, resolve)
        except AudienceError as e:
            errors[name] = str(e)
            continue
        parts.append(
            ids.select(
                audience=ibis.literal(name, "string"),
                customer_id=ids.customer_id.cast("string"),
                as_of=ibis.literal(day, "date"),
            )
        )
    _ensure(wh, MEMBERSHIPS, MEMBERSHIP_SCHEMA)
    _ensure(wh, SNAPSHOTS, SNAPSHOT_SCHEMA)
    sizes: dict[str, int] = {}
    with wh.transaction():
        _drop_day(wh, MEMBERSHIPS, day)
        _drop_day(wh, SNAPSHOTS, day)
        if parts:
            wh.con.insert(MEMBERSHIPS, ibis.union(*parts) if len(parts) > 1 else parts[0])
            m = wh.table(MEMBERSHIPS)
            got = m.filter(m.as_of == day).group_by("audience").aggregate(size=ibis._.count())
            sizes = {r["audience"]: int(r["size"]) for r in got.to_pyarrow().to_pylist()}
        rows = [
            {"audience": n, "as_of": day, "size": sizes.get(n, 0), "taken_at": _naive_utc(now)}
            for n in defs
            if n not in errors
        ]
        if rows:
            wh.con.insert(SNAPSHOTS, ibis.memtable(pd.DataFrame(rows)).cast(SNAPSHOT_SCHEMA))
    return {
        "as_of": day.isoformat(),
        "audiences": {n: sizes.get(n, 0) for n in defs if n not in errors},
        "errors": errors,
    }


def _naive_utc(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(tzinfo=None)


def _ensure(wh: Warehouse, name: str, schema: ibis.Schema) -> None:
    if not wh.has_table(name):
        wh.con.create_table(name, schema=schema)


def _drop_day(wh: Warehouse, name: str, day: date) -> None:
    """Remove one day's rows; the day is a bound value in a staged table, never SQL text."""
    if wh.engine == "duckdb":
        keys = wh.stage(ibis.memtable({"as_of": [day]}).cast({"as_of": "date"}), f"{name}_day")
        wh._delete_keys(name, keys.op().name, ["as_of"])
        wh.drop_stage(keys)
    else:  # engines without DELETE rewrite the table without that day
        t = wh.table(name)
        wh.save(name, t.filter(t.as_of != day))


def _days(settings: Settings, wh: Warehouse, name: str) -> pd.DataFrame:
    """The audience's snapshot days and sizes, in order; an unknown name is an error."""
    days = pd.DataFrame({"as_of": [], "size": []})
    if wh.has_table(SNAPSHOTS):
        s = wh.table(SNAPSHOTS)
        days = s.filter(s.audience == name).select("as_of", "size").order_by("as_of").to_pandas()
        days["as_of"] = pd.to_datetime(days.as_of).dt.date
    if days.empty:
        get(settings, name)  # a saved audience without snapshots yet, or UnknownAudience
    return days


def history(settings: Settings, name: str) -> list[dict[str, Any]]:
    """Per snapshot day: the audience's size, and how many entered and left since the
    snapshot before (on its first day everyone entered)."""
    with Warehouse.connect(settings.warehouse_url) as wh:
        days = _days(settings, wh, name)
        if days.empty:
            return []
        m = wh.table(MEMBERSHIPS)
        m = m.filter(m.audience == name).select("customer_id", "as_of")
        d = wh.table(SNAPSHOTS)
        d = d.filter(d.audience == name).select("as_of")
        d = d.mutate(prev=d.as_of.lag().over(ibis.window(order_by=d.as_of)))
        cur = m.join(d, "as_of")  # each membership with the day before it
        before = m.rename(b_id="customer_id", b_day="as_of")
        entered = (
            cur.anti_join(before, [cur.customer_id == before.b_id, cur.prev == before.b_day])
            .group_by("as_of")
            .aggregate(entered=ibis._.count())
        )
        nxt = d.rename(day="as_of", from_day="prev")
        was = m.join(nxt, m.as_of == nxt.from_day).select("customer_id", "day")
        now_in = m.rename(n_id="customer_id", n_day="as_of")
        left = was.anti_join(now_in, [was.customer_id == now_in.n_id, was.day == now_in.n_day])
        left = left.group_by("day").aggregate(left=ibis._.count()).rename(as_of="day")
        e = _by_day(entered.to_pandas(), "entered")
        lf = _by_day(left.to_pandas(), "left")
    return [
        {
            "as_of": day.isoformat(),
            "size": int(size),
            "entered": e.get(day, 0),
            "left": lf.get(day, 0),
        }
        for day, size in zip(days.as_of, days["size"], strict=True)
    ]


def _by_day(df: pd.DataFrame, col: str) -> dict[date, int]:
    return {pd.Timestamp(k).date(): int(v) for k, v in zip(df.as_of, df[col], strict=True)}


def changes(settings: Settings, name: str, as_of: date | None = None) -> dict[str, Any]:
    """Who entered and who left the audience on a snapshot day (default: the latest), compared
    with the snapshot before it."""
    with Warehouse.connect(settings.warehouse_url) as wh:
        days = _days(settings, wh, name)
        if days.empty:
            raise LookupError(f"audience {name!r} has no snapshots yet: run `archer build`")
        listed = list(days.as_of)
        day = as_of or listed[-1]
        if day not in listed:
            shown = ", ".join(d.isoformat() for d in listed[-5:])
            raise LookupError(f"no snapshot of {name!r} on {day}; the latest are: {shown}")
        i = listed.index(day)
        prev = listed[i - 1] if i else None
        m = wh.table(MEMBERSHIPS)
        m = m.filter(m.audience == name)

        def ids(d: date | None) -> set[str]:
            if d is None:
                return set()
            return set(m.filter(m.as_of == d).customer_id.to_pyarrow().to_pylist())

        now_in, before = ids(day), ids(prev)
    return {
        "audience": name,
        "as_of": day.isoformat(),
        "previous": prev.isoformat() if prev else None,
        "size": len(now_in),
        "entered": sorted(now_in - before),
        "left": sorted(before - now_in),
    }
