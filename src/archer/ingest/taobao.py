"""Taobao/Tmall seller-centre order report: ``--preset taobao-orders``.

卖家中心 → 已卖出的宝贝 → 批量导出 → 订单报表 (``ExportOrderList<yyyymmddHHMM>.csv``): one row
per order, GBK, Chinese headers, some of them with a trailing blank (``收货地址 ``,
``订单付款时间 ``). It fills ``orders`` and ``customers`` (one per 买家会员名); its line items
are in the separate 宝贝报表. The rules, where the report leaves room for choice:

- 订单编号 arrives as ``="1234…"`` (or behind a tab or apostrophe) so Excel keeps its digits;
  the guard is removed. A number Excel already turned into ``3.40E+18`` is rejected.
- Times are the shop's local time (the workspace time zone) and stored in UTC.
- status: the Chinese status words; 交易关闭 after a payment (or closed for 退款) is a full
  refund (``refunded``), 交易关闭 without one is ``cancelled``. The report has no close time,
  so ``cancelled_at`` is the latest instant known before the close: the payment time, else
  the creation time.
- goods_amount = 买家应付货款, shipping_fee = 买家应付邮费, paid_amount = 买家实际支付金额
  (empty while unpaid). 总金额 is what the order costs after the shop's order-level
  discounts, so discount_amount = 买家应付货款 + 买家应付邮费 − 总金额 when positive, else 0;
  platform-funded deductions (天猫卡券, 集分宝) that lower 买家实际支付金额 below 总金额 are
  not the shop's discount.
- channel: 是否手机订单 = 手机订单 → ``app``, otherwise ``web``.
- province/city: the leading tokens of 收货地址 (``江苏省 南京市 鼓楼区 …(210000)``) looked
  up in the place aliases; an address written without blanks is matched by prefix.
- customers: name, phone (联系手机, else 联系电话) and place from the buyer's latest order;
  the Alipay account, when given, in ``attributes``.
"""

from __future__ import annotations

import re
from functools import cache

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from archer.ingest.parse import (
    NULL_STR,
    STATUS_WORDS,
    ParseContext,
    clean,
    parse_timestamp,
    place_key,
    reason_if,
)
from archer.ingest.presets import Preset, PresetError, checked, register
from archer.ingest.validate import also_reject
from archer.places import sole_cities
from archer.schema import MONEY, ORDER_STATUSES, ORDERS

# What an order needs (the framework matches these headers exactly; the report never writes
# them with a trailing blank), and one of the amounts. The seller chooses the report's
# columns, so everything else may be missing: it is derived or left empty, and said.
REQUIRED = ("订单编号", "买家会员名", "订单状态", "订单创建时间")
AMOUNTS = ("买家实际支付金额", "买家应付货款", "总金额")
OPTIONAL = {
    "买家应付货款": "goods_amount is taken from 总金额 (or what was paid)",
    "买家应付邮费": "shipping_fee is left empty",
    "总金额": "discount_amount is left empty",
    "买家实际支付金额": "paid_amount is left empty (the amount is goods − discount + shipping)",
    "订单付款时间": "paid_at is left empty: the status tells whether an order was paid",
    "收货地址": "province and city are left empty",
}
PAID_AT = "订单付款时间"  # written "订单付款时间 " by Taobao; looked up without blanks
CLOSED = "交易关闭"
# Statuses of the report that parse.STATUS_WORDS does not know (SELLER_CONSIGNED_PART).
EXTRA_STATUS = {"卖家部分发货": "shipped"}

_BLANKS = "[\\s\u3000]+"
_EXCEL_GUARD = "=\"' \t"  # ="123", '123, a leading tab
_MONEY_NOISE = "[¥￥,\\s]|元$"


def _columns(t: ir.Table) -> dict[str, str]:
    """Header without blanks → the header as the file writes it."""
    return {c.strip(): c for c in t.columns if c != "_line"}


def _get(t: ir.Table, name: str, cols: dict[str, str]) -> ir.StringValue:
    """The text of column ``name``, or NULL when the report version lacks it."""
    return t[cols[name]].cast(dt.string) if name in cols else NULL_STR


def _need(t: ir.Table, name: str, cols: dict[str, str]) -> ir.StringValue:
    if name not in cols:
        raise PresetError(
            f"not a taobao-orders file: column {name} not found; headers found: {', '.join(cols)}"
        )
    return t[cols[name]].cast(dt.string)


@ibis.udf.scalar.builtin(name="trim")
def _trim_chars(s: str, chars: str) -> str: ...


def _unguarded(s: ir.StringValue) -> ir.StringValue:
    """A cell without the marks that stop Excel from reading it as a number."""
    return clean(_trim_chars(s, _EXCEL_GUARD))


def _amount(s: ir.StringValue) -> ir.DecimalValue:
    return clean(s).re_replace(_MONEY_NOISE, "").try_cast(MONEY)


@cache
def _status_words() -> dict[str, str]:
    """Status text (lower case) → canonical status."""
    return {**{w.lower(): s for s, ws in STATUS_WORDS.items() for w in ws}, **EXTRA_STATUS}


def _status(t: ir.Table, cols: dict[str, str]) -> tuple[ir.StringValue, ir.StringValue]:
    """(canonical status or NULL when unknown, the text to validate)."""
    raw = clean(_need(t, "订单状态", cols)).replace(",", "，")  # some tools rewrite the comma
    paid = clean(_get(t, PAID_AT, cols)).notnull()
    refund = _get(t, "订单关闭原因", cols).contains("退款").fill_null(False)
    # One map lookup: a CASE per status costs ten times as much on a large report.
    known = ibis.map(_status_words())[raw.lower().coalesce("")]
    canonical = ibis.ifelse((raw == CLOSED) & (paid | refund), "refunded", known)
    return canonical, canonical.coalesce(raw)


# -- places ---------------------------------------------------------------------------
@cache
def _prefix_regex() -> str:
    """Leading (province)(city) of an address written without blanks, for RE2."""
    from archer.places import city_aliases, province_aliases

    def alternation(keys) -> str:
        cjk = sorted((k for k in keys if re.search("[\u4e00-\u9fff]", k)), key=len, reverse=True)
        return "|".join(map(re.escape, cjk))

    prov, city = alternation(province_aliases()), alternation(city_aliases())
    return (
        f"^(?:中国|中华人民共和国)?(?:({prov})(?:省|市)?"
        f"(?:(?:省|自治区)?直辖县级行政区划|市辖区)?)?({city})?"
    )


def _with_places(t: ir.Table, address: ir.StringValue, ctx: ParseContext) -> ir.Table:
    """``t`` with ``_prov`` and ``_city`` (canonical) read from the start of ``address``.

    Taobao writes ``省 市 区 详细地址``, so the first two tokens are looked up by equality; only
    an address whose first token is no province goes through the (slower) prefix regex.
    """
    if ctx.places is None:
        return t.mutate(_prov=NULL_STR, _city=NULL_STR)
    p = ctx.places
    prov = p.filter(p.kind == "province")
    city = p.filter(p.kind == "city")
    tokens = address.re_split(_BLANKS)
    t = t.mutate(_t1=place_key(tokens[0]), _t2=place_key(tokens[1]), _head=address)
    pk1 = prov.select(_k1=prov.key, _p1=prov.province)
    ck1 = city.select(_k2=city.key, _cp1=city.province, _cc1=city.city)
    j = t.left_join(pk1, t._t1 == pk1._k1)
    j = j.left_join(ck1, j._t2 == ck1._k2)
    head = j._head.re_replace(_BLANKS, "").left(40)
    unspaced = j._p1.isnull() & j._head.notnull()
    j = j.mutate(
        _f1=ibis.ifelse(unspaced, head.re_extract(_prefix_regex(), 1), NULL_STR).nullif(""),
        _f2=ibis.ifelse(unspaced, head.re_extract(_prefix_regex(), 2), NULL_STR).nullif(""),
    )
    pk2 = prov.select(_k3=prov.key, _p2=prov.province)
    ck2 = city.select(_k4=city.key, _cp2=city.province, _cc2=city.city)
    j = j.left_join(pk2, j._f1 == pk2._k3)
    j = j.left_join(ck2, j._f2 == ck2._k4)
    province = ibis.coalesce(j._p1, j._p2, j._cp1, j._cp2)
    sole = ibis.cases(
        *[(province == p_, c_) for p_, c_ in tuple(sole_cities().items())], else_=NULL_STR
    )
    # A city token that belongs to another province (北京市 朝阳区 vs 朝阳, Liaoning) is a
    # district of the province instead: keep only a city of the same province.
    city_ = ibis.coalesce(
        ibis.ifelse(j._cp1 == province, j._cc1, NULL_STR),
        ibis.ifelse(j._cp2 == province, j._cc2, NULL_STR),
        sole,
    )
    return j.mutate(_prov=province, _city=city_).drop(
        "_t1", "_t2", "_head", "_k1", "_p1", "_k2", "_cp1", "_cc1",
        "_f1", "_f2", "_k3", "_p2", "_k4", "_cp2", "_cc2",
    )  # fmt: skip


# -- the preset -----------------------------------------------------------------------
def _taobao_orders(t: ir.Table, ctx: ParseContext) -> dict[str, ir.Table]:
    """Report rows → orders; buyers (买家会员名) → customers."""
    cols = _columns(t)
    if not any(a in cols for a in AMOUNTS):
        raise PresetError(
            f"not a taobao-orders file: none of {', '.join(AMOUNTS)} found (an order needs an "
            f"amount); headers found: {', '.join(cols)}"
        )
    canonical, status = _status(t, cols)
    created = clean(_need(t, "订单创建时间", cols))
    paid = clean(_get(t, PAID_AT, cols))
    goods = ibis.coalesce(*(_get(t, a, cols) for a in ("买家应付货款", *AMOUNTS[2:], AMOUNTS[0])))
    ship = _get(t, "买家应付邮费", cols)
    total = clean(_get(t, "总金额", cols))
    discount = _amount(goods) + _amount(ship).fill_null(0) - _amount(total)
    if "买家应付货款" not in cols or "总金额" not in cols:
        discount = ibis.null(MONEY)
    closed = canonical.isin(["cancelled", "refunded"]).fill_null(False)
    oid = _unguarded(_need(t, "订单编号", cols))
    mobile = clean(_get(t, "是否手机订单", cols))
    channel = ibis.ifelse(mobile == "手机订单", "app", "web")
    base = t.mutate(
        _oid=oid,
        _buyer=clean(_need(t, "买家会员名", cols)),
        _created=created,
        _paid=paid,
        _status=status,
        _discount=ibis.ifelse(
            discount.isnull(),
            NULL_STR,
            ibis.ifelse(discount > 0, discount, ibis.literal(0, MONEY)).cast(dt.string),
        ),
        _channel=channel if "是否手机订单" in cols else NULL_STR,
        _extra=ibis.coalesce(_bad_order_id(oid), _bad_total(total)),
    )
    base = _with_places(base, clean(_get(t, "收货地址", cols)), ctx)
    orders_text = base.select(
        "_line",
        order_id=base._oid,
        customer_id=base._buyer,
        created_at=base._created,
        paid_at=base._paid,
        cancelled_at=ibis.ifelse(closed, base._paid.coalesce(base._created), NULL_STR),
        status=base._status,
        goods_amount=goods,
        discount_amount=base._discount,
        shipping_fee=ship,
        paid_amount=ibis.ifelse(base._paid.notnull(), _get(t, "买家实际支付金额", cols), NULL_STR),
        channel=base._channel,
        province=base._prov,
        city=base._city,
        _extra=base._extra,
    )
    orders = _add_reasons(checked("orders", orders_text, ctx), orders_text)
    return {"orders": orders, "customers": _customers(base, cols, ctx)}


def _bad_order_id(oid: ir.StringValue) -> ir.StringValue:
    excel = ibis.ifelse(
        oid.re_search("^[0-9.]+[eE][+]?[0-9]+$"),
        " (Excel turned it into a number: export the report again and import it as downloaded)",
        "",
    )
    return reason_if(
        oid.notnull() & ~oid.re_search("^[0-9]+$"),
        "order_id: " + oid.left(40) + " is not a Taobao order number" + excel,
    )


def _bad_total(total: ir.StringValue) -> ir.StringValue:
    return reason_if(
        total.notnull() & _amount(total).isnull(),
        "总金额: " + total.left(60) + " is not an amount (e.g. 129.90)",
    )


def _add_reasons(rows: ir.Table, text: ir.Table) -> ir.Table:
    """Append the preset's own findings (``text._extra``) to the validator's reasons."""
    extra = text.filter(text._extra.notnull()).select(_l=text._line, _x=text._extra)
    j = rows.left_join(extra, rows._line == extra._l)
    return also_reject(j, j._x).drop("_l", "_x")


def _customers(base: ir.Table, cols: dict[str, str], ctx: ParseContext) -> ir.Table:
    """One customer per buyer, described by the latest order (ties: the later line)."""
    when = parse_timestamp(ORDERS.column("created_at"), base._created, ctx).value
    buyers = base.filter(base._buyer.notnull()).mutate(
        _when=when.coalesce(ibis.timestamp("1900-01-01 00:00:00")),
        _name=clean(_get(base, "收货人姓名", cols)),
        _phone=ibis.coalesce(
            _unguarded(_get(base, "联系手机", cols)), _unguarded(_get(base, "联系电话", cols))
        ),
        _alipay=_unguarded(_get(base, "买家支付宝账号", cols)),
    )
    latest = ibis.window(
        group_by=buyers._buyer, order_by=[ibis.desc(buyers._when), ibis.desc(buyers._line)]
    )
    alipay_first = ibis.window(
        group_by=buyers._buyer,
        order_by=[buyers._alipay.isnull(), ibis.desc(buyers._when), ibis.desc(buyers._line)],
    )
    ranked = buyers.mutate(
        _rank=ibis.row_number().over(latest),
        _first=buyers._line.min().over(group_by=buyers._buyer),
        _acct=buyers._alipay.first().over(alipay_first),
    )
    top = ranked.filter(ranked._rank == 0)
    attributes = ibis.struct({"alipay_account": top._acct}).cast(dt.json).cast(dt.string)
    customers_text = top.select(
        _line=top._first,
        customer_id=top._buyer,
        name=top._name,
        phone=top._phone,
        province=top._prov,
        city=top._city,
        attributes=ibis.ifelse(top._acct.isnull(), NULL_STR, attributes),
    )
    return checked("customers", customers_text, ctx)


def _taobao_summary(t: ir.Table) -> dict[str, ir.Value]:
    cols = _columns(t)
    canonical, _ = _status(t, cols)
    out: dict[str, ir.Value] = {
        "rows": t.count(),
        "orders": _unguarded(_need(t, "订单编号", cols)).nunique(),
        "buyers": clean(_need(t, "买家会员名", cols)).nunique(),
    }
    for s in ORDER_STATUSES:
        out[f"status_{s}"] = t.count(where=canonical == s)
    out["status_unknown"] = t.count(where=canonical.isnull())
    return out


PRESET = register(
    Preset(
        "taobao-orders",
        "Taobao/Tmall seller-centre order report (已卖出的宝贝 → 批量导出 → 订单报表, "
        "ExportOrderList*.csv): one row per order, GBK, Chinese headers",
        tables=("orders", "customers"),
        required=REQUIRED,
        # Encoding detected: GBK as downloaded, UTF-8 when saved again. Staged once, with line
        # numbers in every scan: customers group rows by buyer and the preset's own findings
        # are joined back by line.
        reader={"encoding": None, "materialise": True},
        shape=_taobao_orders,
        summary=_taobao_summary,
        notes=lambda headers: _missing(headers, OPTIONAL),
        # The buyers' contact and place from their latest order; their attributes (the Alipay
        # account) fill in only where the member list left none.
        provides={"customers": ("customer_id", "name", "phone", "province", "city")},
        currency="CNY",
        timezone="Asia/Shanghai",
    )
)


def _missing(headers: list[str], optional: dict[str, str]) -> list[str]:
    """What the import did about each optional column the file lacks."""
    have = {h.strip() for h in headers}
    return [f"no {name} column: {what}" for name, what in optional.items() if name not in have]


# -- 宝贝报表: the order lines --------------------------------------------------------------
# 已卖出的宝贝 → 批量导出 → 宝贝报表 (ExportOrderDetailList*.csv): one row per line of an
# order, GBK; 订单编号 carries the same Excel guard as in the order report.
ITEMS_REQUIRED = ("订单编号", "标题", "价格", "购买数量")
ITEMS_OPTIONAL = {
    "商家编码": "the product id is 外部系统编号, else a key made from the title",
    "外部系统编号": "the product id is 商家编码, else a key made from the title",
    "商品属性": "lines are not told apart by SKU",
}


def _product_key(title: ir.StringValue, sku: ir.StringValue) -> ir.StringValue:
    """A stable id for a product the report gives no code for: ``tb:`` + a hash of its title
    (the listing; SKU attributes are not products of their own)."""
    del sku
    return "tb:" + title.hash().abs().cast(dt.string)


def _taobao_items(t: ir.Table, ctx: ParseContext) -> dict[str, ir.Table]:
    """Report rows → order_items (line_no: the row's place in its order); titles → products."""
    cols = _columns(t)
    title = clean(_need(t, "标题", cols)).left(500)
    code = ibis.coalesce(
        _unguarded(_get(t, "商家编码", cols)), _unguarded(_get(t, "外部系统编号", cols))
    )
    lines = t.mutate(
        _oid=_unguarded(_need(t, "订单编号", cols)),
        _pid=code.coalesce(_product_key(title, _get(t, "商品属性", cols))),
        _title=title,
        _price=clean(_need(t, "价格", cols)).re_replace(_MONEY_NOISE, ""),
    )
    w = ibis.window(group_by=lines._oid, order_by=lines._line)
    items_text = lines.select(
        "_line",
        order_id=lines._oid,
        line_no=(ibis.row_number().over(w) + 1).cast(dt.string),
        product_id=lines._pid,
        quantity=clean(_need(t, "购买数量", cols)),
        unit_price=lines._price,
        _extra=_bad_order_id(lines._oid),
    )
    items = _add_reasons(checked("order_items", items_text, ctx), items_text)
    # A product: its latest line's title and price (the report has no list price of its own).
    latest = ibis.window(group_by=lines._pid, order_by=ibis.desc(lines._line))
    top = lines.mutate(_rank=ibis.row_number().over(latest)).filter(lambda x: x._rank == 0)
    products_text = top.select("_line", product_id=top._pid, name=top._title, list_price=top._price)
    return {"order_items": items, "products": checked("products", products_text, ctx)}


ITEMS = register(
    Preset(
        "taobao-items",
        "Taobao/Tmall seller-centre order-items report (已卖出的宝贝 → 批量导出 → 宝贝报表, "
        "ExportOrderDetailList*.csv): one row per order line, GBK",
        tables=("order_items", "products"),
        required=ITEMS_REQUIRED,
        reader={"encoding": None, "materialise": True},
        shape=_taobao_items,
        notes=lambda headers: _missing(headers, ITEMS_OPTIONAL),
        currency="CNY",
        timezone="Asia/Shanghai",
    )
)


# -- 客户列表: the shop's members -------------------------------------------------------------
# 客户运营平台 → 客户管理 → 客户列表 → 导出: one row per member. The buyer is named by their
# member name (the same as the order report's 买家会员名, so the two meet); columns vary with
# the version and the seller's choice, so each is looked for under the names it goes by.
MEMBER_ID = ("买家会员名", "会员名", "客户昵称", "买家昵称", "昵称")
MEMBER_COLUMNS = {
    "name": ("姓名", "收货人姓名", "客户姓名"),
    "phone": ("手机号码", "手机", "手机号", "联系手机"),
    "email": ("邮箱", "电子邮箱", "Email"),
    "gender": ("性别",),
    "birthday": ("生日", "出生日期"),
    "province": ("省份", "所在省份", "省"),
    "city": ("城市", "所在城市", "市"),
    "registered_at": ("入会时间", "注册时间", "成为会员时间"),
}


def _first_of(t: ir.Table, names: tuple[str, ...], cols: dict[str, str]) -> str | None:
    return next((cols[n] for n in names if n in cols), None)


def _taobao_members(t: ir.Table, ctx: ParseContext) -> dict[str, ir.Table]:
    """Members → customers; every other column (会员等级, 交易总额, 交易笔数, 最后交易时间, …)
    kept in ``attributes`` under its own name, for ``[fields]`` (``member_level`` is known)."""
    cols = _columns(t)
    id_col = _first_of(t, MEMBER_ID, cols)
    if id_col is None:
        raise PresetError(
            f"not a taobao-members file: no member column ({', '.join(MEMBER_ID)}); "
            f"headers found: {', '.join(cols)}"
        )
    used = {id_col}
    fields: dict[str, ir.Value] = {}
    for canon, names in MEMBER_COLUMNS.items():
        col = _first_of(t, names, cols)
        if col is not None:
            used.add(col)
            fields[canon] = clean(_unguarded(t[col].cast(dt.string)))
    rest = [c for c in t.columns if c != "_line" and c not in used and c.strip()]
    attributes = (
        ibis.struct({c.strip(): clean(t[c].cast(dt.string)) for c in rest})
        .cast(dt.json)
        .cast(dt.string)
        if rest
        else NULL_STR
    )
    text = t.select("_line", customer_id=clean(t[id_col].cast(dt.string)), **fields,
                    attributes=attributes)  # fmt: skip
    return {"customers": checked("customers", text, ctx)}


MEMBERS = register(
    Preset(
        "taobao-members",
        "Taobao/Tmall member list (客户运营平台 → 客户列表 → 导出): one row per member; "
        "会员等级 becomes the field member_level",
        tables=("customers",),
        reader={"encoding": None, "materialise": True},
        shape=_taobao_members,
        notes=lambda headers: (
            []
            if "会员等级" not in {h.strip() for h in headers}
            else [
                '会员等级 is kept: the field member_level (e.g. member_level in ("VIP2", "VIP3"))'
            ]
        ),  # fmt: skip
        currency="CNY",
        timezone="Asia/Shanghai",
    )
)
