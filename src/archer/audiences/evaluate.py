"""Count, list and explain an audience over the built profile.

An audience is evaluated over ``customer_profile`` joined with the contact columns of
``customers``, as of the day the profile was built (behaviour windows such as ``within = 30d``
end with that day too), so its answers agree with every other number of that build.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from archer.audiences import catalog as cat
from archer.audiences import tree as t
from archer.audiences.compile import Compiler, NeedsContacts, Resolve
from archer.audiences.grammar import AudienceError, normalise, parse
from archer.errors import NotBuilt
from archer.facts import Snapshot
from archer.schema import CUSTOMER_POINTS, DEVICES, PROFILE, UPLIFT_SCORES
from archer.warehouse import Warehouse

if TYPE_CHECKING:
    from archer.workspace import Workspace


def base_table(wh: Warehouse, contacts: bool = True) -> ir.Table:
    """The profile, with the contact columns of ``customers`` when ``contacts``."""
    if not wh.has_table(PROFILE):
        raise NotBuilt()
    p = _with_uplift(wh, _with_points(wh, wh.table(PROFILE)))
    if not contacts:
        return p
    c = wh.table("customers").select("customer_id", *cat.CUSTOMER_FIELDS)
    c = c.rename(_cid="customer_id")
    j = p.left_join(c, p.customer_id == c._cid)
    return j.drop("_cid")


def _with_points(wh: Warehouse, p: ir.Table) -> ir.Table:
    """The profile with each customer's points (0 before any build copied them)."""
    if not wh.has_table(CUSTOMER_POINTS):
        return p.mutate(points_balance=ibis.literal(0, "int64"),
                        points_expiring_30d=ibis.literal(0, "int64"))  # fmt: skip
    pts = wh.table(CUSTOMER_POINTS).rename(_pcid="customer_id")
    j = p.left_join(pts, p.customer_id == pts._pcid)
    return j.mutate(
        points_balance=j.points_balance.fill_null(0),
        points_expiring_30d=j.points_expiring_30d.fill_null(0),
    ).drop("_pcid")


def _with_uplift(wh: Warehouse, p: ir.Table) -> ir.Table:
    """The profile with ``uplift_rank``: the customer's place in the last coupon targeting's
    choice (``archer measure target``; empty when not chosen or never targeted)."""
    if not wh.has_table(UPLIFT_SCORES):
        return p.mutate(uplift_rank=ibis.null("int64"))
    u = wh.table(UPLIFT_SCORES).select(_ucid="customer_id", uplift_rank="uplift_rank")
    return p.left_join(u, p.customer_id == u._ucid).drop("_ucid")


def profile_as_of(wh: Warehouse) -> date:
    """The day the profile was built as of (NotBuilt when there is none, or it is empty)."""
    if not wh.has_table(PROFILE):
        raise NotBuilt()
    v = wh.table(PROFILE).as_of.max().execute()
    if v is None or v != v:  # an empty profile: NULL / NaT
        raise NotBuilt("the customer profile is empty: import customers, then run `archer build`")
    return v.date() if hasattr(v, "date") and callable(v.date) else v


def compiler(
    wh: Warehouse,
    ws: Workspace,
    resolve: Resolve | None = None,
    *,
    contacts: bool = True,
    stage=None,
) -> Compiler:
    snap = Snapshot.at(wh, profile_as_of(wh), ws.tz, today=ws.today())
    if wh.has_table(DEVICES):  # the build's device → member map: no scan of all events
        snap = replace(snap, identity_map=wh.table(DEVICES))
    return Compiler(snap, base_table(wh, contacts), resolve, stage)


def _evaluate(ws: Workspace, resolve: Resolve | None, work, *, stage: bool = False):
    """Run ``work(compiler)`` over the profile alone, or over profile and contacts when the
    query names a contact field; with ``stage``, member sets are computed once into scratch
    tables that are dropped afterwards."""
    with ws.warehouse() as wh:
        for contacts in (False, True):
            staged: list[ir.Table] = []
            keep = functools.partial(_keep, wh, staged) if stage else None
            try:
                return work(compiler(wh, ws, resolve, contacts=contacts, stage=keep))
            except NeedsContacts:
                continue
            finally:
                for t in staged:
                    wh.drop_stage(t)
    raise AssertionError("unreachable: the joined base has every contact field")


def _keep(wh: Warehouse, staged: list[ir.Table], expr: ir.Table) -> ir.Table:
    staged.append(wh.stage(expr, "audience"))
    return staged[-1]


def compile_audience(wh: Warehouse, ws: Workspace, query: str, resolve=None) -> ir.Table:
    """The members of ``query`` (``customer_id``) as an unexecuted table, e.g. for snapshots."""
    node = parse(query)
    try:
        c = compiler(wh, ws, resolve, contacts=False)
        return c.base.filter(c.compile(node)).select("customer_id")
    except NeedsContacts:
        c = compiler(wh, ws, resolve)
        return c.base.filter(c.compile(node)).select("customer_id")


def count(ws: Workspace, query: str, *, resolve: Resolve | None = None) -> dict[str, Any]:
    """How many customers the query selects, and how many each top-level clause alone does —
    in one pass over the profile."""
    node = parse(query)
    parts = t.clauses(node)
    fixed, normalised = normalise(query)

    def work(c: Compiler):
        whole = c.compile(node)
        conds = [whole] if len(parts) == 1 else [whole, *(c.compile(p) for p in parts)]
        sums = {f"c{i}": cond.cast("int64").sum() for i, cond in enumerate(conds)}
        return c.base.aggregate(n=c.base.count(), **sums).execute().iloc[0], c.snap.as_of

    row, as_of = _evaluate(ws, resolve, work, stage=len(parts) > 1)
    total = int(row.n)
    clauses = [
        {"clause": p.pos.text(query), "count": int(row[f"c{i + 1}"] if len(parts) > 1 else row.c0)}
        for i, p in enumerate(parts)
    ]
    return {
        "query": query,
        "as_of": as_of.isoformat(),
        "count": int(row.c0 or 0),
        "customers": total,
        "clauses": clauses,
        # full-width punctuation read as ASCII (“ → "), and the query as it was read
        "normalised": normalised,
        "normalised_query": fixed if normalised else None,
    }


REFERENCE_VALUES = 200  # known values per field in the editor's reference and autocomplete


def reference(ws: Workspace) -> dict[str, Any]:
    """What a query may name, for the editor: each field with its type, what it means where the
    name alone may mislead (:data:`~archer.audiences.catalog.FIELD_DOCS`, the shop's own fields'
    ``doc``) and (for a field with a known set) up to :data:`REFERENCE_VALUES` of its values,
    each behaviour predicate with what it counts, an example and its arguments."""
    docs = {**cat.FIELD_DOCS, **{n: f.doc for n, f in ws.settings.fields.items() if f.doc}}

    def work(c: Compiler):
        fields = []
        for name in c.field_names:
            kind = c._types.get(cat.ALIASES.get(name, name), "text")
            values = None
            if name in cat.FIXED_VALUES or (name in cat.DATA_VALUES and name in c.base.columns):
                known = c.known_values(name)
                values = list(known[:REFERENCE_VALUES]) if known is not None else None
            fields.append({"name": name, "type": kind, "values": values, "doc": docs.get(name, "")})
        return fields, c.snap.as_of

    fields, as_of = _evaluate(ws, None, work)
    predicates = [
        {
            "name": p.name,
            "doc": p.doc,
            "example": p.example,
            "args": [{"name": n, "type": a.type, "doc": a.doc, "ops": list(a.ops)}
                     for n, a in p.args.items()],
        }
        for p in cat.PREDICATES.values()
    ]  # fmt: skip
    return {"as_of": as_of.isoformat(), "fields": fields, "predicates": predicates}


def members(
    ws: Workspace,
    query: str,
    *,
    fields: list[str] | None = None,
    limit: int | None = None,
    resolve: Resolve | None = None,
) -> pd.DataFrame:
    """The selected customers, ordered by id, with the chosen fields."""
    node = parse(query)
    wanted = list(fields or [])

    def work(c: Compiler) -> pd.DataFrame:
        cond = c.compile(node)
        cols = [c.field(t.Field(n, t.Pos(1, 1, 0, len(n))))[0].name(n) for n in wanted]
        out = c.base.filter(cond).select(c.base.customer_id, *cols).order_by("customer_id")
        if limit is not None:
            out = out.limit(limit)
        return out.execute()

    return _evaluate(ws, resolve, work)


def explain(
    ws: Workspace, query: str, customer_id: str, *, resolve: Resolve | None = None
) -> dict[str, Any]:
    """Each comparison and predicate of the query with the customer's values and its result."""
    node = parse(query)

    def work(c: Compiler) -> dict[str, Any]:
        whole = c.compile(node)
        leaves = t.leaves(node)
        conds = [c.compile(leaf) for leaf in leaves]
        shown: dict[str, ir.Value] = {}
        for i, leaf in enumerate(leaves):
            for name, expr in _values_of(c, leaf).items():
                shown[f"v{i}_{name}"] = expr
        b = c.base
        sel = b.filter(b.customer_id == ibis.literal(customer_id, "string")).select(
            member=whole, **{f"r{i}": cond for i, cond in enumerate(conds)}, **shown
        )
        rows = sel.to_pyarrow().to_pylist()
        if not rows:
            raise AudienceError(f"no customer '{customer_id}' in the profile")
        row = rows[0]
        out = []
        for i, leaf in enumerate(leaves):
            values = {k.split("_", 1)[1]: v for k, v in row.items() if k.startswith(f"v{i}_")}
            if isinstance(leaf, t.Call) and leaf.pos in c.behaviours:
                values = _measures(c.behaviours[leaf.pos].measures, customer_id)
            text = leaf.pos.text(query)
            result = bool(row[f"r{i}"])
            words = _words(text, values, result)
            out.append({"clause": text, "values": values, "result": result, "words": words})
        return {"customer_id": customer_id, "member": bool(row["member"]), "clauses": out}

    return _evaluate(ws, resolve, work)


def _values_of(c: Compiler, leaf: t.Node) -> dict[str, ir.Value]:
    fields: list[t.Field] = []
    if isinstance(leaf, t.Compare | t.InList | t.Between | t.IsNull | t.Within | t.Truthy):
        fields.append(leaf.field)
    if isinstance(leaf, t.Compare) and isinstance(leaf.value, t.Field):
        fields.append(leaf.value)
    if (
        isinstance(leaf, t.Within)
        and cat.ALIASES.get(leaf.field.name, leaf.field.name) == "birthday"
    ):
        fields.append(t.Field("days_to_birthday", leaf.field.pos))
    return {f.name: c.field(f)[0] for f in fields}


def _measures(measures: ir.Table, customer_id: str) -> dict[str, Any]:
    got = measures.filter(measures.customer_id == ibis.literal(customer_id, "string"))
    rows = got.to_pyarrow().to_pylist()
    if not rows:
        return {"count": 0, "amount": 0.0}
    return {"count": rows[0]["count"], "amount": rows[0]["amount"]}


def _plain(v: Any) -> str:
    if v is None:
        return "unknown"
    if isinstance(v, float):
        return f"{v:,.2f}".rstrip("0").rstrip(".")
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def _words(text: str, values: dict[str, Any], result: bool) -> str:
    shown = ", ".join(f"{k} is {_plain(v)}" for k, v in values.items())
    verdict = "true" if result else "false"
    return f"{text}: {shown} → {verdict}" if shown else f"{text} → {verdict}"
