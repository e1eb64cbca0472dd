"""The shop's own member fields (``[fields.NAME]`` in archer.toml): values its member export
carries — a VIP level, tags, a points balance kept elsewhere — that Archer has no column for.
The import keeps every column it does not know in ``customers.attributes`` (JSON, keyed by the
export's column name); a declared field names one of them and gives it a type, and the build
adds it to ``customer_profile``, so the audience language, exports, the field reference and
did-you-mean all know it (``member_level in ("VIP2", "VIP3")``).

A value that does not read as the field's type (``"abc"`` for a number) is null, never an
error: the build goes on, and ``is null`` finds those customers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

if TYPE_CHECKING:  # the settings import the profile's rules: no import back at run time
    from archer.config import CustomField

TRUE = ("true", "1", "yes", "y", "是", "t")
FALSE = ("false", "0", "no", "n", "否", "f")


def value(attributes: ir.StringValue, f: CustomField) -> ir.Value:
    """The field's value from a row's ``attributes`` JSON text, as its type."""
    v = attributes.try_cast(dt.json)[f.source]
    text = v.str.coalesce(v.cast("string").nullif("null")).strip().nullif("")  # JSON null: null
    if f.type == "number":
        return text.replace(",", "").try_cast("float64")
    if f.type == "bool":
        low = text.lower()
        return ibis.cases((low.isin(TRUE), True), (low.isin(FALSE), False), else_=ibis.null())
    if f.type == "date":
        return text.try_cast("date")
    return text


# Fields a known export carries, added without a declaration when its column is there:
# ``member_level`` from the Taobao member list's 会员等级 (``--preset taobao-members``).
KNOWN = {"member_level": ("会员等级", "the member's VIP level in the shop (Taobao 会员等级)")}


def known_fields(customers: ir.Table, declared: dict[str, CustomField]) -> dict[str, CustomField]:
    """The :data:`KNOWN` fields whose column the members carry and the shop did not declare."""
    from archer.config import CustomField

    taken = {f.source for f in declared.values()}
    out = {}
    for name, (source, doc) in KNOWN.items():
        if name in declared or source in taken:
            continue
        has = customers.attributes.contains(f'"{source}"').fill_null(False)
        if int(customers.filter(has).limit(1).count().execute()):
            out[name] = CustomField(source=source, doc=doc)
    return out


def add_fields(p: ir.Table, customers: ir.Table, fields: dict[str, CustomField]) -> ir.Table:
    """``p`` (one row per customer) with a column per declared field, in declaration order,
    then the :data:`KNOWN` fields the members carry."""
    fields = {**fields, **known_fields(customers, fields)}
    if not fields:
        return p
    c = customers.select(
        _cid="customer_id", **{name: value(customers.attributes, f) for name, f in fields.items()}
    )
    j = p.left_join(c, p.customer_id == c._cid)
    return j.select(*p.columns, *fields)
