"""Which header of a file fills which canonical column.

Explicit ``--map SRC=DST`` pairs win; then a header named like the column;
then the common names shops' exports use, in English and Chinese.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from archer.schema import Table

_CUSTOMER_ID = (
    "customer id",
    "customerid",
    "cust id",
    "member id",
    "member no",
    "user id",
    "userid",
    "buyer id",
    "client id",
    "会员id",
    "会员编号",
    "会员号",
    "客户id",
    "客户编号",
    "用户id",
    "买家id",
    "买家会员名",
    "会员名",
    "买家昵称",
)
_ORDER_ID = (
    "order id",
    "order no",
    "order number",
    "orderid",
    "invoice",
    "invoiceno",
    "invoice no",
    "invoice number",
    "订单编号",
    "订单号",
    "订单id",
    "主订单编号",
)
_PRODUCT_ID = (
    "product id",
    "productid",
    "sku",
    "sku id",
    "stockcode",
    "stock code",
    "item id",
    "itemid",
    "商品id",
    "商品编号",
    "宝贝id",
    "商家编码",
    "货号",
    "商品编码",
)
_PROVINCE = ("province", "state", "region", "省", "省份", "所在省份", "收货省份")
_CITY = ("city", "城市", "市", "所在城市", "收货城市")

ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "customers": {
        "customer_id": _CUSTOMER_ID,
        "registered_at": (
            "registered",
            "registration date",
            "registration time",
            "signup date",
            "signed up",
            "created at",
            "join date",
            "joined",
            "注册时间",
            "注册日期",
            "入会时间",
            "开卡时间",
        ),
        "name": ("full name", "customer name", "member name", "姓名", "客户姓名", "会员姓名"),
        "email": ("e-mail", "mail", "email address", "邮箱", "电子邮箱", "邮箱地址"),
        "phone": (
            "mobile",
            "telephone",
            "tel",
            "cell",
            "phone number",
            "mobile phone",
            "手机",
            "手机号",
            "手机号码",
            "联系电话",
            "联系手机",
            "电话",
        ),
        "gender": ("sex", "性别"),
        "birthday": ("birth date", "date of birth", "dob", "birthdate", "生日", "出生日期"),
        "province": _PROVINCE,
        "city": _CITY,
        "occupation": ("job", "profession", "职业"),
        "acquisition_channel": (
            "channel",
            "source",
            "signup channel",
            "来源",
            "渠道",
            "注册渠道",
            "获客渠道",
        ),
        "email_opt_in": ("email consent", "accepts email", "email subscribed", "邮件订阅"),
        "sms_opt_in": ("sms consent", "accepts sms", "sms subscribed", "短信订阅"),
    },
    "products": {
        "product_id": _PRODUCT_ID,
        "name": (
            "product name",
            "title",
            "description",
            "item name",
            "商品名称",
            "宝贝标题",
            "商品标题",
            "名称",
        ),
        "category": ("product category", "类目", "品类", "分类", "商品类目", "商品分类"),
        "brand": ("品牌",),
        "list_price": ("price", "unit price", "unitprice", "价格", "售价", "一口价", "吊牌价"),
        "unit_cost": ("cost", "cost price", "成本", "成本价"),
        "stock": ("inventory", "quantity in stock", "库存", "库存数量"),
    },
    "orders": {
        "order_id": _ORDER_ID,
        "customer_id": _CUSTOMER_ID,
        "created_at": (
            "order date",
            "order time",
            "created",
            "invoicedate",
            "invoice date",
            "date",
            "下单时间",
            "订单创建时间",
            "创建时间",
            "下单日期",
        ),
        "paid_at": (
            "paid",
            "payment time",
            "pay time",
            "payment date",
            "付款时间",
            "订单付款时间",
            "支付时间",
        ),
        "cancelled_at": ("cancelled", "canceled at", "cancel time", "取消时间", "关闭时间"),
        "status": ("order status", "订单状态", "状态", "交易状态"),
        "goods_amount": ("goods", "subtotal", "商品金额", "商品总价", "买家应付货款", "货款"),
        "discount_amount": ("discount", "优惠", "优惠金额", "折扣金额", "优惠总额"),
        "shipping_fee": ("shipping", "freight", "postage", "运费", "邮费", "买家应付邮费"),
        "paid_amount": (
            "amount paid",
            "total paid",
            "payment amount",
            "total",
            "实付金额",
            "实付款",
            "买家实际支付金额",
            "支付金额",
        ),
        "coupon_code": ("coupon", "voucher", "优惠券", "优惠券码"),
        "channel": ("platform", "order channel", "下单渠道", "终端", "渠道"),
        "province": _PROVINCE,
        "city": _CITY,
    },
    "order_items": {
        "order_id": _ORDER_ID,
        "line_no": ("line", "line number", "item no", "行号", "序号"),
        "product_id": _PRODUCT_ID,
        "quantity": ("qty", "units", "数量", "购买数量", "宝贝数量", "商品数量"),
        "unit_price": ("price", "unitprice", "单价", "价格", "成交价"),
        "unit_cost": ("cost", "成本", "成本价"),
    },
    "refunds": {
        "refund_id": ("refund no", "refund number", "退款编号", "退款单号", "退款id"),
        "order_id": _ORDER_ID,
        "refunded_at": ("refund time", "refund date", "refunded", "退款时间", "退款完结时间"),
        "amount": ("refund amount", "refund", "退款金额", "金额"),
        "reason": ("refund reason", "退款原因", "原因"),
    },
    "events": {
        "event_id": ("message id", "messageid", "id", "事件id"),
        "customer_id": _CUSTOMER_ID,
        "anonymous_id": ("anonymousid", "cookie id", "device id", "visitor id", "访客id"),
        "type": ("event", "event type", "event name", "action", "事件", "事件类型", "行为类型"),
        "occurred_at": (
            "timestamp",
            "time",
            "event time",
            "occurred",
            "datetime",
            "时间",
            "发生时间",
        ),
        "product_id": _PRODUCT_ID,
        "category": ("product category", "类目", "品类", "分类"),
        "query": ("search term", "search query", "keyword", "keywords", "搜索词", "关键词"),
        "source": ("utm source", "utm_source", "来源"),
        "medium": ("utm medium", "utm_medium", "媒介"),
        "campaign": ("utm campaign", "utm_campaign", "活动"),
        "properties": ("props",),
    },
}

# Unmapped headers of these tables are kept, as JSON, in this column.
CATCH_ALL = {"customers": "attributes", "events": "properties"}

_NON_WORD = re.compile(r"[\s_\-./()（）:：#]+")


def normalise_header(h: str) -> str:
    return _NON_WORD.sub("", h.strip().lstrip("\ufeff").casefold())


@dataclass
class ColumnMapping:
    """``columns``: canonical column → source header; ``extra``: headers left over."""

    columns: dict[str, str]
    extra: list[str] = field(default_factory=list)
    # ``--map-values``: canonical column → {value as written, lower case: value stored}
    values: dict[str, dict[str, str]] = field(default_factory=dict)

    def missing(self, table: Table) -> list[str]:
        return [c for c in table.required if c not in self.columns]


def parse_map_options(pairs: list[str] | None) -> dict[str, str]:
    """``["订单号=order_id", ...]`` → ``{"订单号": "order_id"}``; a clear error otherwise."""
    out: dict[str, str] = {}
    for p in pairs or []:
        src, sep, dst = p.rpartition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ValueError(f"--map {p!r}: expected SOURCE_HEADER=canonical_column")
        out[src.strip()] = dst.strip()
    return out


MAX_COLUMNS = 1_000  # names --columns may give


def parse_column_list(text: str) -> list[str]:
    """``--columns a,b,c``: the names of a CSV file's columns, in order (unique, not empty)."""
    names = [n.strip() for n in text.split(",")]
    if len(names) > MAX_COLUMNS:
        raise ValueError(f"--columns: {len(names):,} names, more than {MAX_COLUMNS:,}")
    if not all(names):
        raise ValueError(f"--columns {text!r}: an empty name; expected NAME,NAME,…")
    long = [n for n in names if len(n) > MAX_VALUE_CHARS]
    if long:
        raise ValueError(f"--columns: a name longer than {MAX_VALUE_CHARS} characters")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"--columns: {', '.join(twice)} given more than once")
    return names


# ``--map-values`` bounds: a vocabulary, not a lookup table.
MAX_VALUE_PAIRS = 1_000
MAX_VALUE_CHARS = 200


def parse_map_values(specs: list[str] | None) -> dict[str, dict[str, str]]:
    """``["type:pv=view,cart=cart_add"]`` → ``{"type": {"pv": "view", "cart": "cart_add"}}``.

    The column is a canonical column (or the header mapped to one); values are matched without
    regard to case and blanks around them. A clear error for anything else.
    """
    out: dict[str, dict[str, str]] = {}
    example = "e.g. type:pv=view,buy=purchase"
    for spec in specs or []:
        col, sep, rest = spec.partition(":")
        col = col.strip()
        if not sep or not col or not rest.strip():
            raise ValueError(
                f"--map-values {spec!r}: expected COLUMN:VALUE=stored,VALUE=stored ({example})"
            )
        words = out.setdefault(col, {})
        for pair in rest.split(","):
            src, eq, dst = pair.partition("=")
            src, dst = src.strip(), dst.strip()
            if not eq or not src or not dst:
                raise ValueError(
                    f"--map-values {col}: {pair.strip()!r} is not VALUE=stored ({example})"
                )
            if max(len(src), len(dst)) > MAX_VALUE_CHARS:
                raise ValueError(
                    f"--map-values {col}: a value longer than {MAX_VALUE_CHARS} characters"
                )
            key = src.lower()
            if words.get(key, dst) != dst:
                raise ValueError(
                    f"--map-values {col}: {src!r} is mapped to both {words[key]!r} and {dst!r}"
                )
            words[key] = dst
        if len(words) > MAX_VALUE_PAIRS:
            raise ValueError(
                f"--map-values {col}: {len(words):,} values, more than the "
                f"{MAX_VALUE_PAIRS:,} a mapping may list"
            )
    return out


def resolve(
    table: Table,
    headers: list[str],
    explicit: dict[str, str] | None = None,
    values: dict[str, dict[str, str]] | None = None,
) -> ColumnMapping:
    """Match the file's headers to the table's columns; ``values`` (``--map-values``) is
    checked against the result: each names a column the file fills."""
    explicit = explicit or {}
    by_norm = {normalise_header(h): h for h in headers}
    columns: dict[str, str] = {}
    for src, dst in explicit.items():
        if dst not in table.names:
            raise ValueError(
                f"--map {src}={dst}: {table.name} has no column {dst!r}; "
                f"its columns are {', '.join(table.names)}"
            )
        actual = src if src in headers else by_norm.get(normalise_header(src))
        if actual is None:
            raise ValueError(
                f"--map {src}={dst}: the file has no header {src!r}; "
                f"headers found: {', '.join(headers)}"
            )
        columns[dst] = actual
    used = set(columns.values())
    aliases = ALIASES.get(table.name, {})
    for col in table.names:
        if col in columns:
            continue
        for cand in (col, *aliases.get(col, ())):
            h = by_norm.get(normalise_header(cand))
            if h is not None and h not in used:
                columns[col] = h
                used.add(h)
                break
    extra = [h for h in headers if h not in used]
    return ColumnMapping(columns, extra, _value_columns(table, columns, values or {}))


def _value_columns(
    table: Table, columns: dict[str, str], values: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    """``--map-values`` keyed by canonical column (a header mapped to one names it too)."""
    by_header = {h: c for c, h in columns.items()}
    by_norm = {normalise_header(h): c for h, c in by_header.items()}
    out: dict[str, dict[str, str]] = {}
    for name, words in values.items():
        col = name if name in table.names else by_header.get(name)
        col = col or by_norm.get(normalise_header(name))
        if col is None or col not in columns:
            known = name in table.names
            raise ValueError(
                f"--map-values {name}: "
                + (
                    f"the file fills no column {name!r} of {table.name}"
                    if known
                    else f"{table.name} has no column {name!r} and the file no header mapped "
                    f"to one; its columns are {', '.join(table.names)}"
                )
            )
        out[col] = words
    return out


# A leftover header this close to a column the file does not fill is taken for a slip of
# the keyboard (``paid_amoutn``, ``provnce``), not for a column of its own; the import
# stops on it rather than lose the column silently. Measured on shops' real headers:
# ``Shipping Method`` (0.72 to ``shipping``), ``Note Attributes`` (0.83) stay below.
NEAR_MISS = 0.85


def near_misses(table: Table, cm: ColumnMapping) -> dict[str, list[str]]:
    """Leftover headers that look like a misspelt column the file leaves empty, each with
    the column(s) meant."""
    from archer.errors import suggest  # the one name-suggestion policy

    names: dict[str, str] = {}  # a spelling of an open column → the column
    aliases = ALIASES.get(table.name, {})
    for col in table.names:
        if col not in cm.columns:
            for spelling in (col, *aliases.get(col, ())):
                names.setdefault(normalise_header(spelling), col)
    out: dict[str, list[str]] = {}
    for h in cm.extra:
        hits = suggest(normalise_header(h), list(names), cutoff=NEAR_MISS)
        cols = list(dict.fromkeys(names[x] for x in hits))
        if cols:
            out[h] = cols
    return out
