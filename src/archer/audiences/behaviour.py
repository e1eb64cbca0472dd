"""Behaviour predicates — ``bought``, ``ordered``, ``refunded``, ``viewed``, ``favorited``,
``carted``, ``searched``, ``visited``, ``event`` — compiled to per-customer measures.

Each predicate takes its rows (paid order lines, orders, refunds or member events) up to the end
of the as-of day, keeps those its filters allow (``category = "tea"``, ``within = 30d`` …),
measures them per customer (``count``, and ``amount`` where money is involved) and states the
condition on the measures (``count >= 1`` unless the query says otherwise).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from archer.audiences import catalog as cat
from archer.audiences import tree as t
from archer.audiences.grammar import AudienceError

if TYPE_CHECKING:
    from archer.audiences.compile import Behaviour, Compiler


def _rows(c: Compiler, spec: cat.Predicate) -> ir.Table:
    """The predicate's rows: ``customer_id, at`` (its time), ``value`` and filterable columns."""
    s = c.snap
    if spec.source == "lines":
        li = s.paid_lines()
        return li.select(
            customer_id=li.customer_id,
            order_id=li.order_id,
            at=li.pay_time,
            value=li.line_amount,
            category=li.category,
            product=li.product_id,
            brand=li.brand,
            channel=li.channel,
        )
    if spec.source == "orders":
        o = s.order_facts()
        o = o.filter(o.customer_id.notnull())
        return o.select(
            customer_id=o.customer_id,
            order_id=o.order_id,
            at=o.created_at,
            value=o.value,
            channel=o.channel,
            status=o.status,
            paid=o.is_paid,
            coupon=o.coupon_code,
        )
    if spec.source == "refunds":
        r = s.refunds
        o = s.orders.select(_oid="order_id", customer_id="customer_id")
        j = r.join(o, r.order_id == o._oid)
        j = j.filter(j.customer_id.notnull())
        return j.select(
            customer_id=j.customer_id,
            order_id=j.refund_id,
            at=j.refunded_at,
            value=j.amount.cast("float64"),
        )
    e = s.member_events()
    if spec.event_type is not None:
        e = e.filter(e.type == spec.event_type)
    p = s.products.select(_pid="product_id", _pcat="category")
    j = e.left_join(p, e.product_id == p._pid)
    return j.select(
        customer_id=j.customer_id,
        order_id=j.event_id,
        at=j.occurred_at,
        value=ibis.literal(0.0),
        category=j.category.coalesce(j._pcat),
        product=j.product_id,
        query=j.query,
        type=j.type,
        source=j.source,
        medium=j.medium,
        campaign=j.campaign,
    )


def _check_value(c: Compiler, spec: cat.ArgSpec, name: str, lit: t.Literal):
    want = {"text": "string", "number": "number", "days": "duration", "bool": "bool"}[spec.type]
    if lit.kind != want:
        words = {"string": "a quoted text", "number": "a number", "duration": "a duration such "
                 "as 30d", "bool": "true or false", "date": "a date"}  # fmt: skip
        raise AudienceError.at(lit.pos, f"{name} takes {words[want]}, not {words[lit.kind]}")
    if spec.type == "text" and spec.values:
        known = _known(c, spec.values)
        value = str(lit.value)
        if known and value not in known:
            from archer.audiences.compile import suggest

            by_case = {k.lower(): k for k in known}
            if value.lower() in by_case:
                return by_case[value.lower()]
            raise AudienceError.at(lit.pos, f"no {spec.values} '{value}'", suggest(value, known))
    return lit.value


def _known(c: Compiler, what: str) -> tuple[str, ...]:
    key = f"@{what}"
    if key not in c._values:
        s = c.snap
        source = {
            "category": (s.products, "category"),
            "product": (s.products, "product_id"),
            "brand": (s.products, "brand"),
            "channel": (s.wh.table("orders"), "channel"),
            "status": (s.wh.table("orders"), "status"),
            "event_type": (s.wh.table("events"), "type"),
        }[what]
        tbl, col = source
        got = tbl.filter(tbl[col].notnull()).select(v=tbl[col]).distinct().limit(20000)
        values = {str(v) for v in got.execute().v}
        if what == "status":
            from archer.schema import ORDER_STATUSES

            values |= set(ORDER_STATUSES)
        if what == "event_type":
            from archer.schema import EVENT_TYPES

            values |= set(EVENT_TYPES)
        c._values[key] = tuple(sorted(values))
    return c._values[key]


def compile_behaviour(c: Compiler, spec: cat.Predicate, call: t.Call) -> Behaviour:
    from archer.audiences.compile import OPS, PY_OPS, Behaviour, suggest

    rows = _rows(c, spec)
    seen: set[str] = set()
    measures: list[tuple[str, str, float, t.Arg]] = []
    for arg in call.args:
        name = arg.name or spec.bare
        if name is None:
            raise AudienceError.at(
                arg.pos,
                f"{call.name} takes named arguments, e.g. {spec.example}",
            )
        if name not in spec.args:
            raise AudienceError.at(
                arg.pos,
                f"{call.name} has no argument '{name}' (it takes {', '.join(spec.args)})",
                suggest(name, list(spec.args)),
            )
        if name in seen:
            raise AudienceError.at(arg.pos, f"{name} is given twice")
        seen.add(name)
        aspec = spec.args[name]
        if arg.op not in aspec.ops:
            raise AudienceError.at(arg.pos, f"{name} takes =, not {arg.op}")
        value = _check_value(c, aspec, name, arg.value)
        if name in ("count", "amount"):
            measures.append((name, arg.op, float(value), arg))
        elif name == "within":
            since = c.snap.cutoff - timedelta(days=float(value))
            rows = rows.filter(rows.at >= since)
        elif name == "query":
            rows = rows.filter(rows.query.lower().contains(str(value).lower()))
        elif name == "paid":
            rows = rows.filter(rows.paid == bool(value))
        else:
            rows = rows.filter(rows[name] == ibis.literal(value, "string"))
    if not any(m[0] == "count" for m in measures):
        measures.insert(0, ("count", ">=", 1.0, None))
    g = rows.group_by("customer_id").aggregate(
        count=rows.order_id.nunique().cast("int64"), amount=rows.value.sum().fill_null(0.0)
    )
    cond = None
    zero = True
    for name, op, value, _ in measures:
        term = OPS[op](g[name], value)
        cond = term if cond is None else cond & term
        zero = zero and PY_OPS[op](0.0, value)
    return Behaviour(measures=g, condition=cond, zero_passes=zero)
