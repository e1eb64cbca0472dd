"""Audience snapshots: the build step that keeps every saved audience's members per build day,
and the history it gives — how an audience grows and shrinks, who entered and who left.

Memberships live in the warehouse, beside the profile they were computed from:

* ``audience_memberships(audience, customer_id, as_of)`` — every member of every saved audience
  on each build day;
* ``audience_snapshots(audience, as_of, size, taken_at)`` — one row per audience and build day,
  so that a day on which an audience was empty is still a day of its history.

A snapshot of a day replaces that day's rows, so building the same day twice changes nothing.
The step runs inside the build's publishing transaction: the memberships and the profile they
were computed from are published together.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from archer.audiences.evaluate import compile_audience, profile_as_of
from archer.audiences.grammar import AudienceError
from archer.audiences.service import _definitions, _resolve_from, get
from archer.clock import naive_utc
from archer.errors import NotFound
from archer.pipeline import Build, Step
from archer.schema import MEMBERSHIPS, SNAPSHOTS
from archer.store import StoreError
from archer.warehouse import Warehouse

if TYPE_CHECKING:
    from archer.workspace import Workspace

MEMBERSHIP_SCHEMA = ibis.schema({"audience": "string", "customer_id": "string", "as_of": "date"})
SNAPSHOT_SCHEMA = ibis.schema(
    {"audience": "string", "as_of": "date", "size": "int64", "taken_at": "timestamp"}
)


def run(b: Build) -> dict[str, Any]:
    """The build step: snapshot every saved audience on the profile being published.

    The build goes on when the store cannot be read; the reason is under ``errors``.
    """
    day = b.snapshot.as_of
    try:
        doc = _snapshot(b.ws, b.wh, day, b.ws.now())
    except StoreError as e:
        doc = {"as_of": day.isoformat(), "audiences": {}, "errors": {"": str(e)}}
    return {"audiences": doc}


STEP = Step("audience snapshots", run, publish=True)


def snapshot_memberships(
    ws: Workspace, as_of: date | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Write the members of every saved audience as of the built profile's day.

    Audiences are evaluated over the profile, so ``as_of`` (if given) must be the day the
    profile was built as of. Returns ``as_of``, the size of each audience and, under
    ``errors``, the audiences that no longer compile (they are skipped, not fatal).
    """
    with ws.warehouse() as wh:
        built = profile_as_of(wh)
        if as_of is not None and as_of != built:
            raise ValueError(
                f"the profile is built as of {built}, not {as_of}: "
                f"run `archer build --as-of {as_of}` to snapshot that day"
            )
        return _snapshot(ws, wh, built, now or ws.now())


def _snapshot(ws: Workspace, wh: Warehouse, day: date, now: datetime) -> dict[str, Any]:
    defs = _definitions(ws)
    if not defs and not wh.has_table(SNAPSHOTS):  # a shop without audiences: nothing to keep
        return {"as_of": day.isoformat(), "audiences": {}, "errors": {}}
    resolve = _resolve_from(defs)
    parts: list[ir.Table] = []
    errors: dict[str, str] = {}
    for name, query in defs.items():
        try:
            ids = compile_audience(wh, ws, query, resolve)
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
            {"audience": n, "as_of": day, "size": sizes.get(n, 0), "taken_at": naive_utc(now)}
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


def _days(ws: Workspace, wh: Warehouse, name: str) -> pd.DataFrame:
    """The audience's snapshot days and sizes, in order; an unknown name is an error."""
    days = pd.DataFrame({"as_of": [], "size": []})
    if wh.has_table(SNAPSHOTS):
        s = wh.table(SNAPSHOTS)
        days = s.filter(s.audience == name).select("as_of", "size").order_by("as_of").to_pandas()
        days["as_of"] = pd.to_datetime(days.as_of).dt.date
    if days.empty:
        get(ws, name)  # a saved audience without snapshots yet, or UnknownAudience
    return days


def history(ws: Workspace, name: str) -> list[dict[str, Any]]:
    """Per snapshot day: the audience's size, and how many entered and left since the
    snapshot before (on its first day everyone entered)."""
    with ws.warehouse() as wh:
        days = _days(ws, wh, name)
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


def changes(ws: Workspace, name: str, as_of: date | None = None) -> dict[str, Any]:
    """Who entered and who left the audience on a snapshot day (default: the latest), compared
    with the snapshot before it."""
    with ws.warehouse() as wh:
        days = _days(ws, wh, name)
        if days.empty:
            raise NotFound(f"audience {name!r} has no snapshots yet: run `archer build`")
        listed = list(days.as_of)
        day = as_of or listed[-1]
        if day not in listed:
            shown = ", ".join(d.isoformat() for d in listed[-5:])
            raise NotFound(f"no snapshot of {name!r} on {day}; the latest are: {shown}")
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
