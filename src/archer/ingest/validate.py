"""From text columns to canonical rows, every rule checked in the engine.

``typed_rows`` returns the canonical columns plus ``_ok`` (the row may be
taken), ``_reason`` (NULL for a good row, otherwise every problem found,
separated by "; ") and, when the source has it, ``_line`` (where it came
from). Nothing is checked row by row in Python. Keys repeated within one file
are found by the importer, which sees the whole file.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from archer.ingest.columns import CATCH_ALL, ColumnMapping
from archer.ingest.parse import (
    NULL_STR,
    ParseContext,
    clean,
    parse,
    parse_native,
    place_key,
    reason_if,
)
from archer.schema import ORDERS, Column, Table

# Columns of the source a typed row keeps: where it came from, and its raw cells' hash.
PASSED = ("_line", "_hash")


def typed_rows(
    src: ir.Table,
    table: Table,
    mapping: ColumnMapping,
    ctx: ParseContext,
    *,
    negative_ok: str | None = None,
) -> ir.Table:
    """Canonical rows of ``table`` from the text table ``src``, keeping its ``_line`` and
    ``_hash`` columns when it has them. A typed cell (Parquet) that already holds what
    its column stores is taken as it is (``parse_native``).

    ``negative_ok`` names a boolean column of ``src`` that allows negative
    quantities on its rows (the lines of a cancellation).
    """
    # Three projections, so that every expression is computed once per row:
    # the cleaned text of each cell, then the typed values, then the checks.
    keep = [c for c in (*PASSED, negative_ok) if c and c in src.columns]
    mapped = [c for c in table.columns if c.name in mapping.columns]
    # A typed file's cell that already holds what its column stores stays as it is.
    native = {
        c.name
        for c in mapped
        if c.name not in mapping.values
        and parse_native(c, src[mapping.columns[c.name]], ctx) is not None
    }
    cells = {
        _text(c.name): src[h] if c.name in native else _cell(src[h], c)
        for c in mapped
        for h in [mapping.columns[c.name]]
    }
    for name in mapping.values:  # --map-values: the cell as written, and what it stands for
        cells[_raw(name)] = cells[_text(name)]
        cells[_text(name)] = mapped_value(cells[_raw(name)], mapping.values[name])
    catch_all = CATCH_ALL.get(table.name)
    if catch_all and catch_all not in mapping.columns and mapping.extra:
        cells[_text(catch_all)] = _json_of(src, mapping.extra)
    text = src.select(*keep, **cells)
    parsed = {}
    values: dict[str, ir.Value] = {}
    for col in table.columns:
        if col.name in mapping.columns:
            reading = parse_native if col.name in native else parse
            parsed[col.name] = reading(col, text[_text(col.name)], ctx)
            values[col.name] = parsed[col.name].value
        elif _text(col.name) in text.columns:
            values[col.name] = text[_text(col.name)]
        else:
            values[col.name] = ibis.null(col.dtype)
    typed = text.mutate(**values)
    oks: list[ir.BooleanValue] = []
    reasons: list[ir.StringValue] = []
    for col in mapped:
        v, s, p = typed[col.name], typed[_text(col.name)], parsed[col.name]
        good = (p.good(v) if p.good else v.notnull()).fill_null(False)
        if col.required:
            oks.append(good)
        elif p.good is not None:
            oks.append(s.isnull() | good)
        reason = p.reason(v)
        reasons.append(reason)
        if col.name in mapping.values:  # a value the mapping does not list is refused
            raw = typed[_raw(col.name)]
            unlisted = raw.notnull() & s.isnull()
            oks.append(~unlisted)
            expected = ", ".join(mapping.values[col.name])
            reason = reason_if(
                unlisted,
                f"{col.name}: " + raw.left(60) + f" is not one of {expected} (--map-values)",
            ).coalesce(reason)
            reasons[-1] = reason
        if col.required:
            reasons.append(reason_if(v.isnull() & reason.isnull(), f"{col.name} is missing"))
    cols = {c: typed[c] for c in table.names}
    for ok, reason in _row_rules(table, cols, typed[negative_ok] if negative_ok else None):
        oks.append(ok)
        reasons.append(reason_if(~ok, reason))
    lines = [c for c in PASSED if c in src.columns]
    checked = typed.mutate(_ok=ibis.and_(*oks) if oks else ibis.literal(True))
    # A row that passes every check has no reason (each reason comes with a failed check):
    # the reasons are put into words only for the rows that fail.
    out = checked.select(
        *lines,
        *table.names,
        "_ok",
        _reason=ibis.ifelse(checked._ok, NULL_STR, _join_reasons(reasons)),
    )
    out = places(out, table, ctx)
    return _defaults(out, table)


def _cell(raw: ir.Value, col: Column) -> ir.StringValue:
    # Trimmed for every kind: a cell of blanks is an empty cell, not a bad date.
    return clean(raw.cast(dt.string))


def _text(name: str) -> str:
    return f"_text_{name}"


def _raw(name: str) -> str:
    return f"_raw_{name}"


def mapped_value(s: ir.StringValue, words: dict[str, str]) -> ir.StringValue:
    """The stored value of a cleaned cell under a ``--map-values`` mapping (keys in lower
    case); NULL for a value the mapping does not list."""
    return s.lower().substitute(words, else_=NULL_STR)


def _join_reasons(reasons: list[ir.StringValue]) -> ir.StringValue:
    """Every problem of a row, "; "-separated; NULL when there is none."""
    if not reasons:
        return NULL_STR
    joined = ibis.literal("; ").join(reasons)  # concat_ws: NULL parts are skipped
    return joined.nullif("")


def _json_of(src: ir.Table, headers: list[str]) -> ir.StringValue:
    """The leftover columns as one JSON object (empty cells left out)."""
    text = {h: src[h].cast(dt.string) for h in headers}
    fields = {h: ibis.ifelse(t.strip() == "", NULL_STR, t) for h, t in text.items()}
    return ibis.struct(fields).cast(dt.json).cast(dt.string)


def _row_rules(
    table: Table, v: dict[str, ir.Value], negative_ok: ir.BooleanValue | None
) -> list[tuple[ir.BooleanValue, str]]:
    """Rules across the cells of a row: (true when the row keeps it, what it says)."""
    rules: list[tuple[ir.BooleanValue, str]] = []

    def never(cond: ir.BooleanValue) -> ir.BooleanValue:
        return ~cond.fill_null(False)

    if table.name == "orders":
        rules.append((never(v["paid_at"] < v["created_at"]), "paid_at is before created_at"))
        rules.append(
            (never(v["cancelled_at"] < v["created_at"]), "cancelled_at is before created_at")
        )
    if table.name == "order_items":
        neg = v["quantity"] < 0
        if negative_ok is not None:
            neg = neg & ~negative_ok
        rules.append((never(neg), "negative quantity on an order that is not a cancellation"))
    if table.name == "events":
        rules.append(
            (
                v["customer_id"].notnull() | v["anonymous_id"].notnull(),
                "neither customer_id nor anonymous_id is given",
            )
        )
    return rules


def places(t: ir.Table, table: Table, ctx: ParseContext) -> ir.Table:
    """Provinces and cities in canonical form.

    A known city also tells a missing province; a city that belongs to another
    province than the one given is kept as written (北京 + 朝阳 is Beijing's
    district, not Liaoning's Chaoyang); a municipality without a city is its own city.
    """
    if "province" not in t.columns or ctx.places is None:
        return t
    if ctx.place_map is not None:
        # The file's few distinct names were looked up beforehand (place_map below).
        m = ctx.place_map
        j = t.left_join(m, [t.province.identical_to(m._pn), t.city.identical_to(m._cn)])
        return j.mutate(province=j._p, city=j._c).drop("_pn", "_cn", "_p", "_c")
    p = ctx.places
    prov = p.filter(p.kind == "province").select(pk=p.key, p_canon=p.province)
    city = p.filter(p.kind == "city").select(ck=p.key, c_prov=p.province, c_canon=p.city)
    j = t.left_join(prov, place_key(t.province) == prov.pk)
    j = j.left_join(city, place_key(j.city) == city.ck)
    province = j.p_canon.coalesce(j.c_prov, j.province)
    agrees = j.p_canon.isnull() | (j.c_prov == j.p_canon)
    city_out = ibis.ifelse(j.c_canon.notnull() & agrees, j.c_canon, j.city)
    if ctx.sole_cities:
        city_out = city_out.coalesce(province.substitute(ctx.sole_cities, else_=NULL_STR))
    return j.mutate(province=province, city=city_out).drop(
        "pk", "p_canon", "ck", "c_prov", "c_canon"
    )


def _defaults(t: ir.Table, table: Table) -> ir.Table:
    if table.name == "orders":
        derived = ibis.cases(
            (t.cancelled_at.notnull(), "cancelled"),
            (t.paid_at.notnull(), "paid"),
            else_="created",
        )
        return t.mutate(status=t.status.coalesce(derived))
    return t


def also_reject(rows: ir.Table, reason: ir.StringValue) -> ir.Table:
    """Add a finding of a preset's own (NULL where none) to validated rows."""
    found = reason.notnull()
    joined = ibis.ifelse(rows._reason.isnull(), reason, rows._reason + "; " + reason)
    return rows.mutate(
        _ok=rows._ok & ~found,
        _reason=ibis.ifelse(found, joined, rows._reason),
    )


def place_map(names: ir.Table, ctx: ParseContext) -> ir.Table:
    """Canonical (province, city) for each distinct written pair in ``names``.

    Looking up the distinct pairs once and joining them back on the text as
    written costs one hash lookup per row instead of normalising every cell.
    """
    pairs = names.distinct()
    canon = places(pairs.mutate(_pn=pairs.province, _cn=pairs.city), ORDERS, ctx)
    return canon.select("_pn", "_cn", _p=canon.province, _c=canon.city)
