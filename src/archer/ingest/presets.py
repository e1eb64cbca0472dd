"""Known export formats, where one file may fill several canonical tables.

A preset turns the staged text table of a file into text tables shaped like
the canonical ones (each with ``_line``) and hands them to the same validator
as any other import, so its rows are checked, quarantined and upserted alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from archer.ingest.columns import ColumnMapping
from archer.ingest.parse import ParseContext, clean, content_id, parse
from archer.ingest.sources import Source
from archer.ingest.validate import also_reject, typed_rows
from archer.schema import TABLES


class PresetError(ValueError):
    """The file does not look like the preset's format."""


@dataclass
class Preset:
    name: str
    description: str
    tables: tuple[str, ...]
    required: tuple[str, ...] = ()
    reader: dict = field(default_factory=dict)
    shape: Callable[[ir.Table, ParseContext], dict[str, ir.Table]] | None = None
    summary: Callable[[ir.Table], dict[str, ir.Value]] | None = None
    # What the result should say about this file's columns (e.g. which optional ones it lacks)
    notes: Callable[[list[str]], list[str]] | None = None
    # Tables the preset fills only in part: the columns it really has; the others keep what is
    # stored (the order report's buyers do not erase what the member list said of them).
    provides: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The currency and time zone of the shops whose exports these are, when the format knows
    # them (Online Retail: a UK shop): an import into a workspace set otherwise warns.
    currency: str | None = None
    timezone: str | None = None

    def locale_notes(self, currency: str, timezone: str, where: str = "archer.toml") -> list[str]:
        """A warning when the workspace's currency or time zone is not the data's, naming both
        and the setting to change (``where``: the file or variables that hold it)."""
        wrong = []
        if self.currency and self.currency != currency:
            wrong.append(("currency", self.currency, currency))
        if self.timezone and self.timezone != timezone:
            wrong.append(("timezone", self.timezone, timezone))
        if not wrong:
            return []
        data = " and ".join(theirs for _, theirs, _ in wrong)
        said = " and ".join(ours for _, _, ours in wrong)
        setting = " and ".join(f'{k} = "{theirs}"' for k, theirs, _ in wrong)
        effect = [
            f"its amounts are shown as {currency}"
            if k == "currency"
            else f"its times were read as {timezone} clock times"
            for k, _, _ in wrong
        ]
        again = ""
        if any(k == "timezone" for k, _, _ in wrong):
            again = ", then import the file again and run `archer build`"
        return [
            f"{_a(self.name)} {self.name} file comes from a shop in {data}, but the workspace "
            f"is set to {said}: {' and '.join(effect)}. To change it, set {setting} in "
            f"{where}{again}"
        ]

    def read_options(self) -> dict:
        # Presets group and number rows, so their files are staged unless they say otherwise.
        return {"materialise": True, **self.reader}

    def check(self, src: Source) -> None:
        """Refuse, before anything is read, a file that lacks the format's columns."""
        missing = [h for h in self.required if h not in src.headers]
        if missing:
            raise PresetError(
                f"{src.path}: not {_a(self.name)} {self.name} file: "
                f"column{'s' if len(missing) > 1 else ''} {', '.join(missing)} not found; "
                f"headers found: {', '.join(src.headers)}"
            )

    def build(self, table: ir.Table, ctx: ParseContext) -> dict[str, ir.Table]:
        assert self.shape is not None
        return self.shape(table, ctx)


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def checked(name: str, text: ir.Table, ctx: ParseContext, **kw) -> ir.Table:
    """Validate a preset's text table whose columns already carry canonical names."""
    spec = TABLES[name]
    mapping = ColumnMapping({c: c for c in spec.names if c in text.columns})
    return typed_rows(text, spec, mapping, ctx, **kw)


def _s(v: ir.Value) -> ir.StringValue:
    return v.cast(dt.string)


# -- UCI Online Retail ----------------------------------------------------------------
def _online_retail(t: ir.Table, ctx: ParseContext) -> dict[str, ir.Table]:
    """Invoice lines → order items; invoices → orders; StockCodes → products; ids → customers.

    ``C…`` invoices are credit notes: each of their lines (a negative quantity) is a refund of
    the customer's latest earlier order that has the same product, else of the customer's latest
    earlier order, else (a sale before the file begins, or a guest's credit note) of no order in
    the file: it is kept under the credit note's own number and counts against no sale.
    Lines without a CustomerID are guest orders, kept with an empty customer.
    """
    inv = clean(t.InvoiceNo)
    lines = t.mutate(
        _inv=inv,
        _cust=clean(t.CustomerID).re_replace(r"\.0+$", ""),
        _cancel=inv.startswith("C").fill_null(False),
        _price=t.UnitPrice.strip().try_cast(dt.float64),
        _qty=t.Quantity.strip().try_cast(dt.float64),
        _stock=clean(t.StockCode),
    )
    w = ibis.window(group_by=lines._inv, order_by=lines._line)
    lines = lines.mutate(_lno=_s(ibis.row_number().over(w) + 1))
    sales = lines.filter(~lines._cancel)
    items_text = sales.select(
        "_line",
        order_id=sales._inv,
        line_no=sales._lno,
        product_id=sales._stock,
        quantity=sales.Quantity,
        unit_price=sales.UnitPrice,
    )
    items = checked("order_items", items_text, ctx)
    good = items.filter(items._ok)
    totals = good.group_by(_oid=good.order_id).aggregate(
        _goods=(good.quantity * good.unit_price).sum()
    )
    heads = sales.group_by(order_id=sales._inv).aggregate(
        _line=sales._line.min(),
        created_at=sales.InvoiceDate.min(),
        customer_id=sales._cust.min(),
    )
    heads = heads.left_join(totals, heads.order_id == totals._oid).drop("_oid")
    orders_text = heads.select(
        "_line",
        "order_id",
        "customer_id",
        "created_at",
        paid_at=heads.created_at,
        status=ibis.literal("completed"),
        goods_amount=_s(heads._goods),
        discount_amount=ibis.literal("0"),
        shipping_fee=ibis.literal("0"),
        paid_amount=_s(heads._goods),
        _empty=heads._goods.isnull(),
    )
    orders = checked("orders", orders_text, ctx)
    # An invoice none of whose lines could be taken is no order; its lines are in quarantine.
    orders = _reject_empty_orders(orders, orders_text)
    refunds = checked("refunds", _credit_notes(lines, ctx), ctx)

    buyers = lines.filter(lines._cust.notnull())
    customers_text = buyers.group_by(customer_id=buyers._cust).aggregate(
        _line=buyers._line.min(), _country=buyers.Country.mode()
    )
    customers_text = customers_text.mutate(
        attributes=ibis.struct({"country": customers_text._country}).cast(dt.json).cast(dt.string)
    )
    customers = checked("customers", customers_text, ctx)

    sold = lines.filter(~lines._cancel & (lines._price > 0))
    products_text = lines.group_by(product_id=clean(lines.StockCode)).aggregate(
        _line=lines._line.min(), name=clean(lines.Description).mode()
    )
    prices = sold.group_by(_pid=clean(sold.StockCode)).aggregate(_p=sold._price.median())
    products_text = products_text.left_join(prices, products_text.product_id == prices._pid)
    products_text = products_text.mutate(list_price=_s(products_text._p.round(2))).drop(
        "_pid", "_p"
    )
    products = checked("products", products_text, ctx)
    return {
        "order_items": items,
        "orders": orders,
        "refunds": refunds,
        "customers": customers,
        "products": products,
    }


def _credit_notes(lines: ir.Table, ctx: ParseContext) -> ir.Table:
    """The refunds' text table: one refund per line of a ``C…`` invoice, matched to an order.

    A credit line of customer *c* for product *p* at time *t* refunds the latest invoice of *c*
    at or before *t* with a line of *p* (a sale line: positive quantity, price not negative),
    else the latest invoice of *c* at or before *t*; ties in time go to the larger invoice
    number, so a re-import matches the same way. ``amount`` = −quantity × price.
    """
    when = parse(TABLES["orders"].column("created_at"), clean(lines.InvoiceDate), ctx).value
    lines = lines.mutate(_t=when)
    credit = lines.filter(lines._cancel)
    sale = lines.filter(
        ~lines._cancel & lines._cust.notnull() & (lines._qty > 0) & (lines._price >= 0)
    )
    # "time|invoice" sorts by time, then invoice: its max is the latest sale (stable on ties).
    sale = sale.select(
        _sc=sale._cust, _sp=sale._stock, _st=sale._t, _key=_s(sale._t) + "|" + sale._inv
    ).distinct()
    cr = credit.select("_line", "_cust", "_stock", "_t")

    def latest(on_product: bool) -> ir.Table:
        cond = [cr._cust == sale._sc, sale._st <= cr._t]
        if on_product:
            cond.append(cr._stock == sale._sp)
        j = cr.join(sale, cond)
        key = "_kp" if on_product else "_kc"
        return j.group_by(_ml=j._line).aggregate(**{key: j._key.max()})

    by_product, by_customer = latest(True), latest(False)
    c = credit.left_join(by_product, credit._line == by_product._ml).drop("_ml")
    c = c.left_join(by_customer, c._line == by_customer._ml).drop("_ml")
    matched = c._kp.coalesce(c._kc)
    order_id = matched.re_extract(r"\|(.*)$", 1).nullif("").coalesce(c._inv)
    amount = -(c._qty * c._price)
    how = ibis.cases(
        (c._kp.notnull(), "same product"),
        (c._kc.notnull(), "customer's latest order"),
        else_="no earlier order in the file",
    )
    return c.select(
        "_line",
        refund_id=c._inv + "-" + c._lno,
        order_id=order_id,
        refunded_at=c.InvoiceDate,
        amount=ibis.ifelse(amount.isnull(), c.Quantity + " × " + c.UnitPrice, _s(amount.round(2))),
        reason="credit note " + c._inv + " (" + how + ")",
    )


def _reject_empty_orders(orders: ir.Table, text: ir.Table) -> ir.Table:
    empty = text.filter(text._empty).select(_eo=text.order_id)
    j = orders.left_join(empty, orders.order_id == empty._eo)
    reason = ibis.ifelse(
        j._eo.notnull(),
        "no line of the invoice could be taken (" + j.order_id + ")",
        ibis.null(dt.string),
    )
    return also_reject(j, reason).drop("_eo")


def _online_retail_summary(t: ir.Table) -> dict[str, ir.Value]:
    cust = clean(t.CustomerID)
    return {
        "invoices": t.InvoiceNo.nunique(),
        "credit_notes": t.InvoiceNo.nunique(where=t.InvoiceNo.startswith("C")),
        "credit_lines": t.count(where=t.InvoiceNo.startswith("C")),
        "customers": cust.nunique(),
        "lines": t.count(),
        "guest_lines": t.count(where=cust.isnull()),
    }


# -- CDNOW ----------------------------------------------------------------------------
def _cdnow(t: ir.Table, ctx: ParseContext) -> dict[str, ir.Table]:
    """Both CDNOW layouts: the master file (id date cds dollars, with a header) and the
    1/10 sample (master id, sample id, date, cds, dollars; no header).

    Each line is one purchase; several on a day stay separate orders, as in the file.
    """
    parts = t.line.strip().re_split(r"\s+")
    n = parts.length()
    rows = t.mutate(_p=parts, _n=n).filter(parts[0] != "customer_id")
    date_i = ibis.ifelse(rows._n >= 5, 2, 1)
    cust = rows._p[0]
    date = rows._p[date_i]
    cds = rows._p[date_i + 1]
    dollars = rows._p[date_i + 2]
    base = rows.mutate(
        customer_id=cust,
        created_at=date,
        order_id=cust + "-" + date + "-" + _s(rows._line),
        _cds=cds,
        _dollars=dollars,
        _bad=(rows._n < 4) | (rows._n > 5),
    )
    orders_text = base.select(
        "_line",
        "order_id",
        "customer_id",
        "created_at",
        paid_at=base.created_at,
        status=ibis.literal("completed"),
        goods_amount=base._dollars,
        discount_amount=ibis.literal("0"),
        shipping_fee=ibis.literal("0"),
        paid_amount=base._dollars,
        _bad=base._bad,
    )
    orders = checked("orders", orders_text, ctx)
    orders = also_reject(
        orders,
        ibis.ifelse(
            _bad_col(orders, orders_text),
            "expected 4 (master) or 5 (sample) fields",
            ibis.null(dt.string),
        ),
    )
    price = base._dollars.try_cast(dt.float64) / base._cds.try_cast(dt.float64).nullif(0)
    items_text = base.select(
        "_line",
        "order_id",
        line_no=ibis.literal("1"),
        product_id=ibis.literal("CD"),
        quantity=base._cds,
        unit_price=_s(price.round(2)).coalesce("0"),
    )
    items = checked("order_items", items_text, ctx)
    customers_text = base.group_by("customer_id").aggregate(_line=base._line.min())
    customers = checked("customers", customers_text, ctx)
    products = checked(
        "products",
        ibis.memtable(
            {"_line": [1], "product_id": ["CD"], "name": ["Compact disc"], "category": ["music"]}
        ),
        ctx,
    )
    return {"orders": orders, "order_items": items, "customers": customers, "products": products}


def _bad_col(orders: ir.Table, text: ir.Table) -> ir.BooleanValue:
    return orders._line.isin(text.filter(text._bad)._line)


def _cdnow_summary(t: ir.Table) -> dict[str, ir.Value]:
    first = t.line.strip().re_split(r"\s+")[0]
    data = first != "customer_id"
    return {"purchases": t.count(where=data), "customers": first.nunique(where=data)}


# -- Tianchi UserBehavior ----------------------------------------------------------------
# Alibaba's public Taobao behaviour log (tianchi.aliyun.com, dataset 649): one line per action,
# ``user_id,item_id,category_id,behavior_type,timestamp``, no header, Unix seconds.
USERBEHAVIOR_COLUMNS = ["user_id", "item_id", "category_id", "behavior_type", "timestamp"]
# The log's behaviour words → the event types stored (a ``buy`` is a purchase event).
USERBEHAVIOR_TYPES = {"pv": "view", "cart": "cart_add", "fav": "favorite", "buy": "purchase"}
# Event column ← log column: what ``--map`` would say for the same file.
_USERBEHAVIOR_EVENTS = {
    "customer_id": "user_id",
    "product_id": "item_id",
    "category": "category_id",
    "type": "behavior_type",
    "occurred_at": "timestamp",
}


def _userbehavior(t: ir.Table, ctx: ParseContext) -> dict[str, ir.Table]:
    """Each line → one event; each user id → a customer; each item → a product in its category.

    The log has no event id: it is made from the line's five cells (``content_id``, the same
    id a plain import of the file with ``--columns customer_id,product_id,category,type,
    occurred_at`` makes), so importing the file again changes nothing, and a line given twice
    is one event. A time is a Unix time in seconds (UTC, whatever the shop's zone). A
    behaviour other than pv, cart, fav or buy is refused with the line.
    """
    cm = ColumnMapping(dict(_USERBEHAVIOR_EVENTS), values={"type": USERBEHAVIOR_TYPES})
    ids = content_id("ev-", {c: t[h] for c, h in _USERBEHAVIOR_EVENTS.items()})
    cm.columns["event_id"] = "_event_id"
    events = typed_rows(
        t.mutate(_event_id=ids), TABLES["events"], cm, replace(ctx, date_format="epoch")
    )
    user, item = clean(t.user_id), clean(t.item_id)
    known = t.filter(user.notnull())
    customers_text = known.group_by(customer_id=clean(known.user_id)).aggregate(
        _line=known._line.min()
    )
    seen = t.filter(item.notnull())
    products_text = seen.group_by(product_id=clean(seen.item_id)).aggregate(
        _line=seen._line.min(), category=clean(seen.category_id).max()
    )
    return {
        "events": events,
        "customers": checked("customers", customers_text, ctx),
        "products": checked("products", products_text, ctx),
    }


def _userbehavior_summary(t: ir.Table) -> dict[str, ir.Value]:
    word = clean(t.behavior_type).lower()
    return {
        "lines": t.count(),
        "users": clean(t.user_id).nunique(),
        "items": clean(t.item_id).nunique(),
        **{w: t.count(where=word == w) for w in USERBEHAVIOR_TYPES},
    }


PRESETS: dict[str, Preset] = {
    "online-retail": Preset(
        "online-retail",
        "UCI Online Retail invoice lines (InvoiceNo, StockCode, Description, Quantity, "
        "InvoiceDate, UnitPrice, CustomerID, Country)",
        tables=("orders", "order_items", "refunds", "customers", "products"),
        required=(
            "InvoiceNo",
            "StockCode",
            "Description",
            "Quantity",
            "InvoiceDate",
            "UnitPrice",
            "CustomerID",
            "Country",
        ),
        shape=_online_retail,
        summary=_online_retail_summary,
        currency="GBP",
        timezone="Europe/London",
    ),
    "cdnow": Preset(
        "cdnow",
        "CDNOW purchase log, master (customer_id date number_of_cds dollar_value) or 1/10 sample",
        tables=("orders", "order_items", "customers", "products"),
        reader={"delimiter": "\x1f", "header": False, "columns": ["line"]},
        shape=_cdnow,
        summary=_cdnow_summary,
    ),
    "taobao-userbehavior": Preset(
        "taobao-userbehavior",
        "Tianchi UserBehavior log (user_id, item_id, category_id, behavior_type, timestamp; "
        "no header, Unix seconds)",
        tables=("events", "customers", "products"),
        reader={"delimiter": ",", "header": False, "columns": USERBEHAVIOR_COLUMNS},
        shape=_userbehavior,
        summary=_userbehavior_summary,
        # Members and products known only by id: what other files said of them is kept.
        provides={"customers": ("customer_id",), "products": ("product_id", "category")},
    ),
}


def register(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


def get_preset(name: str) -> Preset:
    _load_plugins()
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}: expected one of {', '.join(sorted(PRESETS))}"
        ) from None


def available() -> dict[str, Preset]:
    """Every preset, those in their own modules too (``taobao-orders``): what a list offers."""
    _load_plugins()
    return dict(PRESETS)


def _load_plugins() -> None:
    """Presets that live in their own module register themselves on import."""
    import importlib

    for mod in ("archer.ingest.taobao",):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
