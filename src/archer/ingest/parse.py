"""Turning text cells into typed values, in the engine, with a reason when it fails.

Each parser takes a string expression and returns ``(value, reason)``: the
typed value (NULL when empty or unreadable) and a string expression that is
NULL when the cell is fine and says what is wrong otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from archer.schema import MONEY, Column

# -- engine functions Ibis has no portable operation for (the reader is DuckDB) --


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(s: str, fmts: dt.Array(dt.string)) -> dt.timestamp: ...


@ibis.udf.scalar.builtin(name="timezone")
def _local_to_utc_tz(tz: str, ts: dt.timestamp) -> dt.Timestamp(timezone="UTC"): ...


@ibis.udf.scalar.builtin(name="timezone")
def _tz_to_naive(tz: str, ts: dt.Timestamp(timezone="UTC")) -> dt.timestamp: ...


TIMESTAMP_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d",
    "%Y%m%d%H%M%S",
    "%Y%m%d",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日",
)
_OFFSET_RE = r"(Z|z|[+-]\d{2}:?\d{2})$"
_MONEY_NOISE = r"[¥￥$£€,\s]|^(CNY|RMB|USD)|元$"
TRUE_WORDS = ("true", "t", "yes", "y", "1", "是", "√", "on", "subscribed", "opt-in", "opted in")
FALSE_WORDS = ("false", "f", "no", "n", "0", "否", "×", "off", "unsubscribed", "opt-out")
GENDERS = {
    "f": ("f", "female", "woman", "w", "女", "女性", "女士"),
    "m": ("m", "male", "man", "男", "男性", "先生"),
}
STATUS_WORDS = {
    "created": ("created", "new", "pending", "unpaid", "待付款", "等待买家付款", "未付款"),
    "paid": ("paid", "已付款", "买家已付款，等待卖家发货", "待发货", "等待卖家发货"),
    "shipped": ("shipped", "已发货", "卖家已发货，等待买家确认", "待收货", "等待买家确认收货"),
    "completed": ("completed", "complete", "done", "delivered", "交易成功", "已完成", "已签收"),
    "cancelled": ("cancelled", "canceled", "closed", "交易关闭", "已取消", "已关闭"),
    "refunded": ("refunded", "已退款", "退款成功"),
}


@dataclass
class ParseContext:
    """What parsing needs to know about the shop and the moment of the import."""

    timezone: str = "Asia/Shanghai"
    now: datetime = field(default_factory=lambda: datetime(2100, 1, 1))
    date_format: str = ""
    places: ir.Table | None = None  # kind, key, province, city

    @property
    def formats(self) -> list[str]:
        return [self.date_format, *TIMESTAMP_FORMATS] if self.date_format else list(TIMESTAMP_FORMATS)


NULL_STR = ibis.null(dt.string)


def clean(s: ir.StringValue) -> ir.StringValue:
    """Trimmed text; empty becomes NULL."""
    t = s.strip()
    return ibis.ifelse(t == "", NULL_STR, t)


def reason_if(cond: ir.BooleanValue, message: ir.StringValue | str) -> ir.StringValue:
    return ibis.ifelse(cond.fill_null(False), message, NULL_STR)


def _bad(col: Column, s: ir.StringValue, expected: str) -> ir.StringValue:
    return f"{col.name}: " + s.left(60) + f" is not {expected}"


def parse_timestamp(col: Column, s: ir.StringValue, ctx: ParseContext):
    has_offset = s.re_search(_OFFSET_RE)
    aware = _tz_to_naive("UTC", s.try_cast(dt.Timestamp(timezone="UTC")))
    local = s.try_cast(dt.timestamp).coalesce(_try_strptime(s, ibis.literal(ctx.formats)))
    local_utc = _tz_to_naive("UTC", _local_to_utc_tz(ctx.timezone, local))
    value = ibis.ifelse(has_offset, aware, local_utc)
    low, high = datetime(1990, 1, 1), ctx.now + timedelta(days=1)
    reason = ibis.coalesce(
        reason_if(s.notnull() & value.isnull(), _bad(col, s, "a date/time (e.g. 2024-05-01 13:45:00)")),
        reason_if(
            (value < low) | (value > high),
            f"{col.name}: " + s + f" is outside {low:%Y-%m-%d} .. {high:%Y-%m-%d}",
        ),
    )
    return value, reason


def parse_date(col: Column, s: ir.StringValue, ctx: ParseContext):
    value = s.try_cast(dt.date).coalesce(_try_strptime(s, ibis.literal(ctx.formats)).date())
    reason = ibis.coalesce(
        reason_if(s.notnull() & value.isnull(), _bad(col, s, "a date (e.g. 1990-05-01)")),
        reason_if(
            (value < ibis.date(1900, 1, 1)) | (value > ibis.literal(ctx.now.date())),
            f"{col.name}: " + s + " is not a possible date",
        ),
    )
    return value, reason


def parse_money(col: Column, s: ir.StringValue, ctx: ParseContext):
    value = s.re_replace(_MONEY_NOISE, "").try_cast(MONEY)
    reason = reason_if(s.notnull() & value.isnull(), _bad(col, s, "an amount (e.g. 129.90)"))
    if col.nonnegative:
        reason = reason.coalesce(reason_if(value < 0, f"{col.name}: " + s + " is negative"))
    return value, reason


def parse_int(col: Column, s: ir.StringValue, ctx: ParseContext):
    f = s.replace(",", "").try_cast(dt.float64)
    value = ibis.ifelse(f == f.round(), f.try_cast(dt.int64), ibis.null(dt.int64))
    reason = reason_if(s.notnull() & value.isnull(), _bad(col, s, "a whole number"))
    if col.nonnegative:
        reason = reason.coalesce(reason_if(value < 0, f"{col.name}: " + s + " is negative"))
    return value, reason


def parse_bool(col: Column, s: ir.StringValue, ctx: ParseContext):
    low = s.lower()
    value = ibis.cases(
        (low.isin(TRUE_WORDS), True), (low.isin(FALSE_WORDS), False), else_=ibis.null(dt.boolean)
    )
    reason = reason_if(s.notnull() & value.isnull(), _bad(col, s, "true/false (or yes/no, 1/0, 是/否)"))
    return value, reason


def parse_gender(col: Column, s: ir.StringValue, ctx: ParseContext):
    low = s.lower()
    value = ibis.cases(*[(low.isin(words), g) for g, words in GENDERS.items()], else_=NULL_STR)
    return value, NULL_STR  # anything else (保密, unknown, other) is kept as unknown


def parse_choice(col: Column, s: ir.StringValue, ctx: ParseContext):
    low = s.lower()
    value = ibis.cases(
        *[(low.isin(words), v) for v, words in STATUS_WORDS.items() if v in col.choices],
        else_=NULL_STR,
    )
    reason = reason_if(
        s.notnull() & value.isnull(), _bad(col, s, "one of " + ", ".join(col.choices))
    )
    return value, reason


def parse_text(col: Column, s: ir.StringValue, ctx: ParseContext):
    return s, NULL_STR


PARSERS = {
    "timestamp": parse_timestamp,
    "date": parse_date,
    "money": parse_money,
    "int": parse_int,
    "bool": parse_bool,
    "gender": parse_gender,
    "id": parse_text,
    "text": parse_text,
    "json": parse_text,
    "province": parse_text,
    "city": parse_text,
}


def parse(col: Column, raw: ir.StringValue, ctx: ParseContext):
    """Typed value and failure reason of one cell expression."""
    s = clean(raw)
    if col.choices:
        return parse_choice(col, s, ctx)
    return PARSERS[col.kind](col, s, ctx)


def place_key(s: ir.StringValue) -> ir.StringValue:
    """The lookup key of a place name: lower case, no blanks (as archer.places does)."""
    return s.re_replace(r"\s+", "").lower()
