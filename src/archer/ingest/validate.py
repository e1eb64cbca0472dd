"""From text columns to canonical rows, every rule checked in the engine.

``typed_rows`` returns the canonical columns plus ``_line`` (where the row came
from) and ``_reason`` (NULL for a good row, otherwise every problem found,
separated by "; "). Nothing is checked row by row in Python.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from archer.ingest.columns import CATCH_ALL, ColumnMapping
from archer.ingest.parse import NULL_STR, ParseContext, parse, place_key, reason_if
from archer.schema import Table


def typed_rows(
    src: ir.Table,
    table: Table,
    mapping: ColumnMapping,
    ctx: ParseContext,
    *,
    negative_ok: str | None = None,
) -> ir.Table:
    """Canonical rows of ``table`` from the text table ``src`` (which has ``_line``).

    ``negative_ok`` names a boolean column of ``src`` that allows negative
    quantities on its rows (the lines of a cancellation).
    """
    values: dict[str, ir.Value] = {}
    reasons: list[ir.StringValue] = []
    for col in table.columns:
        header = mapping.columns.get(col.name)
        if header is None:
            values[col.name] = ibis.null(col.dtype)
            continue
        value, reason = parse(col, src[header].cast(dt.string), ctx)
        values[col.name] = value
        reasons.append(reason)
        if col.required:
            reasons.append(reason_if(value.isnull() & reason.isnull(), f"{col.name} is missing"))
    catch_all = CATCH_ALL.get(table.name)
    if catch_all and catch_all not in mapping.columns and mapping.extra:
        values[catch_all] = _json_of(src, mapping.extra)
    reasons.extend(_row_rules(table, values, src[negative_ok] if negative_ok else None))
    out = src.select(_line=src["_line"], **values, _base=_join_reasons(reasons))
    out = _places(out, table, ctx)
    out = _defaults(out, table)
    return _duplicates(out, table)


def _join_reasons(reasons: list[ir.StringValue]) -> ir.StringValue:
    if not reasons:
        return NULL_STR
    arr = ibis.array(reasons).filter(lambda r: r.notnull())
    return ibis.ifelse(arr.length() == 0, NULL_STR, arr.join("; "))


def _json_of(src: ir.Table, headers: list[str]) -> ir.StringValue:
    """The leftover columns as one JSON object (empty cells left out)."""
    fields = {h: ibis.ifelse(src[h].strip() == "", NULL_STR, src[h]) for h in headers}
    return ibis.struct(fields).cast(dt.json).cast(dt.string)


def _row_rules(
    table: Table, v: dict[str, ir.Value], negative_ok: ir.BooleanValue | None
) -> list[ir.StringValue]:
    rules: list[ir.StringValue] = []
    if table.name == "orders":
        rules.append(reason_if(v["paid_at"] < v["created_at"], "paid_at is before created_at"))
        rules.append(
            reason_if(v["cancelled_at"] < v["created_at"], "cancelled_at is before created_at")
        )
    if table.name == "order_items":
        neg = v["quantity"] < 0
        if negative_ok is not None:
            neg = neg & ~negative_ok
        rules.append(reason_if(neg, "negative quantity on an order that is not a cancellation"))
    if table.name == "events":
        rules.append(
            reason_if(
                v["customer_id"].isnull() & v["anonymous_id"].isnull(),
                "neither customer_id nor anonymous_id is given",
            )
        )
    return rules


def _places(t: ir.Table, table: Table, ctx: ParseContext) -> ir.Table:
    """Provinces and cities in canonical form; a known city also tells its province."""
    if "province" not in t.columns or ctx.places is None:
        return t
    p = ctx.places
    prov = p.filter(p.kind == "province").select(pk=p.key, p_canon=p.province)
    city = p.filter(p.kind == "city").select(ck=p.key, c_prov=p.province, c_canon=p.city)
    j = t.left_join(prov, place_key(t.province) == prov.pk)
    j = j.left_join(city, place_key(j.city) == city.ck)
    return j.mutate(
        province=j.p_canon.coalesce(j.c_prov, j.province),
        city=j.c_canon.coalesce(j.city),
    ).drop("pk", "p_canon", "ck", "c_prov", "c_canon")


def _defaults(t: ir.Table, table: Table) -> ir.Table:
    if table.name == "orders":
        derived = ibis.cases(
            (t.cancelled_at.notnull(), "cancelled"),
            (t.paid_at.notnull(), "paid"),
            else_="created",
        )
        return t.mutate(status=t.status.coalesce(derived))
    return t


def _duplicates(t: ir.Table, table: Table) -> ir.Table:
    """A key seen again among good rows: the first occurrence wins, the others are rejected."""
    key = list(table.key)
    ok = t._base.isnull()
    w = ibis.window(group_by=[*[t[k] for k in key], ok])
    first = t._line.min().over(w)
    label = ", ".join(key)
    key_text = ibis.literal("").concat(
        *[t[k].cast(dt.string).coalesce("") + ("/" if i < len(key) - 1 else "") for i, k in enumerate(key)]
    )
    dup = reason_if(
        ok & (t._line != first),
        f"duplicate {label} (" + key_text + ", first on line " + first.cast(dt.string) + ")",
    )
    return t.mutate(_reason=t._base.coalesce(dup)).drop("_base")

