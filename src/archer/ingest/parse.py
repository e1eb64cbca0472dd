"""Turning text cells into typed values, in the engine, with a reason when it fails.

Each parser takes a string expression and returns ``(value, reason)``: the
typed value (NULL when empty or unreadable) and a string expression that is
NULL when the cell is fine and says what is wrong otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from archer.csvsafe import GUARD, unguard
from archer.schema import MONEY, Column

# -- engine functions Ibis has no portable operation for (the reader is DuckDB) --


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(s: str, fmts: dt.Array(dt.string)) -> dt.timestamp: ...


@ibis.udf.scalar.builtin(name="timezone")
def _local_to_utc_tz(tz: str, ts: dt.timestamp) -> dt.Timestamp(timezone="UTC"): ...


@ibis.udf.scalar.builtin(name="timezone")
def _tz_to_naive(tz: str, ts: dt.Timestamp(timezone="UTC")) -> dt.timestamp: ...


@ibis.udf.scalar.builtin(name="epoch_ms")
def _epoch_ms(ms: dt.int64) -> dt.timestamp: ...


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
# A time that names its zone: 10:00Z, 10:00+08:00, 10:00 +0800, 10:00-05, 10:00 UTC.
_OFFSET_RE = r"(?i)(\d\s*z|\butc|\bgmt|\d\s*[+-]\d{2}(:?\d{2})?)$"
_MONEY_NOISE = r"[¥￥$£€\s]|^(CNY|RMB|USD)|元$"
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
    sole_cities: dict[str, str] = field(default_factory=dict)  # one-city province → city
    place_map: ir.Table | None = None  # _pn, _cn as written → _p, _c canonical

    @property
    def formats(self) -> list[str]:
        own = self.date_format and self.date_format not in EPOCH_UNITS
        return [self.date_format, *TIMESTAMP_FORMATS] if own else list(TIMESTAMP_FORMATS)

    @property
    def epoch_unit(self) -> int | None:
        """Milliseconds per unit of an epoch number (1000 or 1) when the dates are epoch times."""
        return EPOCH_UNITS.get(self.date_format)


# ``--date-format`` words for Unix times (UTC): seconds (also strftime's ``%s``) or milliseconds.
EPOCH_UNITS = {"epoch": 1000, "%s": 1000, "epoch_ms": 1}
# Epoch numbers outside these (in milliseconds: 1653 .. 5138) are not read as times at all.
_EPOCH_MS_RANGE = (-1e13, 1e14)


def check_date_format(fmt: str, con: ibis.BaseBackend, option: str = "--date-format") -> str:
    """``fmt`` as the importer uses it; a format the engine cannot read is a one-line error."""
    fmt = fmt.strip()
    if fmt in EPOCH_UNITS or fmt.lower() in ("epoch", "epoch_ms"):  # not %S: seconds
        return fmt.lower()
    try:
        con.con.execute("SELECT try_strptime('', ?)", [fmt])
    except Exception as e:  # the engine's InvalidInputException: an unknown % code
        detail = str(e).splitlines()[0].split("Error: ", 1)[-1]
        raise ValueError(
            f"{option} {fmt!r}: not a date format ({detail}); write it with strptime codes "
            "such as %d/%m/%Y %H:%M, or epoch / epoch_ms for Unix times"
        ) from None
    return fmt


def epoch_time(s: ir.StringValue, ms_per_unit: int) -> ir.TimestampValue:
    """The UTC time of a cell that is a Unix epoch number (NULL for any other cell)."""
    ms = s.try_cast(dt.float64) * ms_per_unit
    lo, hi = _EPOCH_MS_RANGE
    return ibis.ifelse(ms.between(lo, hi), _epoch_ms(ms.round().cast(dt.int64)), None)


NULL_STR = ibis.null(dt.string)
# Made ids: a prefix and 20 hex digits (80 bits) of the MD5 of the row's content; among
# a billion rows the chance that two differ and share an id is below one in a million.
ID_DIGITS = 20


@ibis.udf.scalar.builtin(name="trim")
def _trim_spaces(s: str) -> str: ...


# A cell that may need cleaning: at either end a character at or below a space (every
# blank ``strip`` removes, and other control characters) or a Unicode separator (what
# the engine's ``trim`` removes besides the space), or the guard quote in front.
_MAY_NEED_CLEANING = r"^[\x00-\x20\pZ']|[\x00-\x20\pZ]$"


def clean(s: ir.StringValue) -> ir.StringValue:
    """Text without surrounding blanks, tabs or line breaks; empty becomes NULL."""
    # Most cells need nothing, and one anchored pattern finds the others: trimming every
    # cell instead copies it, which was half the cost of typing a file.
    return ibis.ifelse(s.re_search(_MAY_NEED_CLEANING), _trimmed(s), s).nullif("")


def _trimmed(s: ir.StringValue) -> ir.StringValue:
    # The engine's one-argument trim (spaces) is several times faster than trimming
    # a set of characters.
    t = _trim_spaces(s)
    # Tabs and line breaks at the edges (Excel guards, stray CRs) are rare: only a
    # cell that holds one pays for the slower trim of a set of characters. So is the
    # ``'`` that guards a formula-like cell in a quarantine file (``archer.csvsafe``):
    # it is removed, so a fixed quarantine file imports as it was written.
    odd = t.contains("\t") | t.contains("\r") | t.contains("\n") | (t.left(1) == GUARD)
    return ibis.ifelse(odd, unguard(t).strip(), t)


def content_id(prefix: str, cells: dict[str, ir.Value]) -> ir.StringValue:
    """A deterministic id for a row that has none: a hash of its cells as written (without
    surrounding blanks), each named (by canonical column or header), in name order. Nothing
    else enters it (not the line, the file or the moment), so the same row gives the same id
    in any file and any order of columns, and importing a file again finds its rows there."""
    parts = []
    for name in sorted(cells):
        # Separators no cell of a text file holds; an empty cell joins as nothing.
        text = _trim_spaces(cells[name].cast(dt.string)).fill_null("")
        parts.append(ibis.literal(name + "\x1e") + text)
    return prefix + ibis.literal("\x1f").join(parts).hexdigest("md5").left(ID_DIGITS)


def reason_if(cond: ir.BooleanValue, message: ir.StringValue | str) -> ir.StringValue:
    return ibis.ifelse(cond.fill_null(False), message, NULL_STR)


def _bad(col: Column, s: ir.StringValue, expected: str) -> ir.StringValue:
    return f"{col.name}: " + s.left(60) + f" is not {expected}"


# Each parser takes the cleaned text ``s`` (a column, so it is computed once) and
# returns a ``Parsed``: the typed value, ``good`` — given the value as a column,
# whether a present value is acceptable (it names the value once, so the engine
# computes it once per row even where a filter is pushed below the projection) —
# and ``reason``, which says in words what is wrong (for the quarantine).
Test = Callable[[ir.Value], ir.BooleanValue]
Check = Callable[[ir.Value], ir.StringValue]


@dataclass
class Parsed:
    value: ir.Value
    good: Test | None  # None: any present value is fine
    reason: Check


def parse_timestamp(col: Column, s: ir.StringValue, ctx: ParseContext) -> Parsed:
    # Only a long value or one ending in Z can name a zone; most are tested by length alone.
    maybe = (s.length() > 19) | s.right(1).isin(("Z", "z"))
    has_offset = ibis.ifelse(maybe, s.re_search(_OFFSET_RE), False)
    # The engine reads "+08:00", "-0500", "+09" and " UTC" but not "Z" nor a blank
    # before a numeric offset: those are rewritten first.
    zoned = (
        s.re_replace(r"\s*[zZ]$", "+00:00")
        .re_replace(r"\s+([+-]\d{2}(:?\d{2})?)$", r"\1")
        # 05:45+00:00 → 05:45:00+00:00, and 05:45 UTC → 05:45:00 UTC
        .re_replace(r"([T ]\d{1,2}:\d{2})(\s*(?:[+-]|(?i:utc|gmt)))", r"\1:00\2")
    )
    aware = _tz_to_naive("UTC", zoned.try_cast(dt.Timestamp(timezone="UTC")))
    local = s.try_cast(dt.timestamp).coalesce(_try_strptime(s, ibis.literal(ctx.formats)))
    value = ibis.ifelse(has_offset, aware, local_to_utc(local, ctx.timezone))
    if ctx.epoch_unit:  # an epoch number is an instant: UTC, whatever the shop's zone
        value = epoch_time(s, ctx.epoch_unit).coalesce(value)
    within = _time_range(col, s, ctx)

    def reason(v: ir.Value) -> ir.StringValue:
        return ibis.coalesce(
            reason_if(
                s.notnull() & v.isnull(), _bad(col, s, "a date/time (e.g. 2024-05-01 13:45:00)")
            ),
            within.reason(v),
        )

    return Parsed(value, within.good, reason)


def _time_range(col: Column, s: ir.StringValue, ctx: ParseContext) -> Parsed:
    """The check of a time's range (``value`` unset): from 1990 to a day after the import."""
    low, high = datetime(1990, 1, 1), ctx.now + timedelta(days=1)

    def reason(v: ir.Value) -> ir.StringValue:
        return reason_if(
            (v < low) | (v > high),
            f"{col.name}: " + s + f" is outside {low:%Y-%m-%d} .. {high:%Y-%m-%d}",
        )

    return Parsed(None, lambda v: v.between(low, high), reason)


@cache
def fixed_offset_since_2000(timezone: str) -> timedelta | None:
    """The zone's UTC offset if it never changed from 2000 to 2100 (no DST), else None."""
    tz = ZoneInfo(timezone)
    offsets = {
        datetime(y, m, 1, tzinfo=tz).utcoffset() for y in range(2000, 2101) for m in (1, 4, 7, 10)
    }
    return offsets.pop() if len(offsets) == 1 else None


def local_to_utc(local: ir.TimestampValue, timezone: str) -> ir.TimestampValue:
    """Shop-local wall-clock time → UTC. A zone without DST since 2000 (Asia/Shanghai)
    is a subtraction, many times faster than the engine's time-zone database."""
    exact = _tz_to_naive("UTC", _local_to_utc_tz(timezone, local))
    off = fixed_offset_since_2000(timezone)
    if off is None:
        return exact
    shifted = local - ibis.interval(seconds=int(off.total_seconds()))
    return ibis.ifelse(local >= datetime(2000, 1, 1), shifted, exact)


def parse_date(col: Column, s: ir.StringValue, ctx: ParseContext) -> Parsed:
    value = s.try_cast(dt.date).coalesce(_try_strptime(s, ibis.literal(ctx.formats)).date())
    if ctx.epoch_unit:  # the shop-local day of the instant
        utc = epoch_time(s, ctx.epoch_unit)
        value = _tz_to_naive(ctx.timezone, _local_to_utc_tz("UTC", utc)).date().coalesce(value)
    within = _date_range(col, s, ctx)

    def reason(v: ir.Value) -> ir.StringValue:
        return ibis.coalesce(
            reason_if(s.notnull() & v.isnull(), _bad(col, s, "a date (e.g. 1990-05-01)")),
            within.reason(v),
        )

    return Parsed(value, within.good, reason)


def _date_range(col: Column, s: ir.StringValue, ctx: ParseContext) -> Parsed:
    """The check of a date's range (``value`` unset): from 1900 to the day of the import."""
    low, high = ibis.date(1900, 1, 1), ibis.literal(ctx.now.date())

    def reason(v: ir.Value) -> ir.StringValue:
        return reason_if((v < low) | (v > high), f"{col.name}: " + s + " is not a possible date")

    return Parsed(None, lambda v: v.between(low, high), reason)


def _number(col: Column, s: ir.StringValue, value: ir.Value, expected: str | None) -> Parsed:
    """``expected``: what a cell that is not a number should have been (None: it is one)."""

    def reason(v: ir.Value) -> ir.StringValue:
        r = (
            NULL_STR
            if expected is None
            else reason_if(s.notnull() & v.isnull(), _bad(col, s, expected))
        )
        if col.nonnegative:
            r = r.coalesce(reason_if(v < 0, f"{col.name}: " + s + " is negative"))
        return r

    good = (lambda v: v >= 0) if col.nonnegative else (lambda v: v.notnull())
    return Parsed(value, good, reason)


def parse_money(col: Column, s: ir.StringValue, ctx: ParseContext) -> Parsed:
    # A plain number is cast at once; only other spellings pay for the rules below.
    # Currency signs and blanks go; "12,50" (a comma then one or two digits) and
    # "1.250,00" write the decimal with a comma; in "1,250" and "1,250.00" the
    # comma groups thousands.
    def spelled(t: ir.StringValue) -> ir.StringValue:
        return ibis.cases(
            (t.re_search(r"^-?\d{1,3}(\.\d{3})+,\d{1,2}$"), t.replace(".", "").replace(",", ".")),
            (t.re_search(r"^-?\d+,\d{1,2}$"), t.replace(",", ".")),
            else_=t.replace(",", ""),
        )

    # The cell without its noise is named once, inside a one-element list's lambda: named
    # several times, the engine would compute it for every cell, not only for those the
    # plain cast refused (it shares repeated expressions by computing them beforehand).
    number = ibis.array([s.re_replace(_MONEY_NOISE, "")]).map(spelled)[0]
    value = s.try_cast(MONEY).coalesce(number.try_cast(MONEY))
    return _number(col, s, value, "an amount (e.g. 129.90)")


def parse_int(col: Column, s: ir.StringValue, ctx: ParseContext) -> Parsed:
    # Through a float, so that "3.0" is 3 and "1.5" is refused (a cast would round it).
    f = s.replace(",", "").try_cast(dt.float64)
    value = ibis.ifelse(f == f.round(), f.try_cast(dt.int64), ibis.null(dt.int64))
    return _number(col, s, value, "a whole number")


def lookup(s: ir.StringValue, words: dict) -> ir.Value:
    """The value a word stands for (case-insensitive), NULL for an unknown word."""
    return s.lower().substitute(
        words, else_=ibis.null(ibis.literal(next(iter(words.values()))).type())
    )


def _word(col: Column, s: ir.StringValue, value: ir.Value, expected: str) -> Parsed:
    def reason(v: ir.Value) -> ir.StringValue:
        return reason_if(s.notnull() & v.isnull(), _bad(col, s, expected))

    return Parsed(value, lambda v: v.notnull(), reason)


def _fine(v: ir.Value) -> ir.StringValue:
    return NULL_STR


def parse_bool(col: Column, s: ir.StringValue, ctx: ParseContext) -> Parsed:
    value = lookup(s, {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)})
    return _word(col, s, value, "true/false (or yes/no, 1/0, 是/否)")


def parse_gender(col: Column, s: ir.StringValue, ctx: ParseContext) -> Parsed:
    # Anything else (保密, unknown, other) is kept as unknown, not refused.
    return Parsed(lookup(s, {w: g for g, ws in GENDERS.items() for w in ws}), None, _fine)


def parse_choice(col: Column, s: ir.StringValue, ctx: ParseContext) -> Parsed:
    words = {w: v for v, ws in STATUS_WORDS.items() if v in col.choices for w in ws}
    return _word(col, s, lookup(s, words), "one of " + ", ".join(col.choices))


def parse_text(col: Column, s: ir.StringValue, ctx: ParseContext) -> Parsed:
    return Parsed(s, None, _fine)


# The longest value a text column keeps: an id must fit the operational store's columns
# (campaign ledgers, coupons, consent key on it), other text stays readable.
MAX_CHARS = {"id": 200, "text": 2_000, "json": 100_000, "province": 100, "city": 100}


@ibis.udf.scalar.builtin(name="strlen")
def _bytes(s: str) -> int: ...


def _bounded(parser):
    def parse_bounded(col: Column, s: ir.StringValue, ctx: ParseContext) -> Parsed:
        got = parser(col, s, ctx)
        most = MAX_CHARS[col.kind]

        def good(v: ir.Value) -> ir.BooleanValue:
            # Bytes are never fewer than characters, and counting them is free.
            fits = (_bytes(s) <= most) | (s.length() <= most)
            return fits if got.good is None else fits & got.good(v)

        def reason(v: ir.Value) -> ir.StringValue:
            long = f"{col.name}: " + s.left(40) + f"… is longer than {most:,} characters"
            return reason_if(s.length() > most, long).coalesce(got.reason(v))

        return Parsed(got.value, good, reason)

    return parse_bounded


PARSERS = {
    "timestamp": parse_timestamp,
    "date": parse_date,
    "money": parse_money,
    "int": parse_int,
    "bool": parse_bool,
    "gender": parse_gender,
    "id": _bounded(parse_text),
    "text": _bounded(parse_text),
    "json": _bounded(parse_text),
    "province": _bounded(parse_text),
    "city": _bounded(parse_text),
}


def parse_native(col: Column, v: ir.Value, ctx: ParseContext) -> Parsed | None:
    """A cell of a typed file (Parquet) that already holds what the column stores, taken as
    it is rather than written as text and read back; None when it must go through text.

    Only where the result is exactly the text's: naive times (shop-local, as a text time
    without a zone), dates, whole numbers, booleans, and decimals of at most 18 digits with
    at most 2 after the point. A reason names the value as the text would have.
    """
    t = v.type()
    s = v.cast(dt.string)  # for reasons only: a failing row's value in words
    if col.kind == "timestamp" and t.is_timestamp() and t.timezone is None:
        return replace(_time_range(col, s, ctx), value=local_to_utc(v, ctx.timezone))
    if col.kind == "date" and t.is_date():
        return replace(_date_range(col, s, ctx), value=v)
    if col.kind == "money" and t.is_decimal() and (t.precision or 38) <= 18 and (t.scale or 0) <= 2:
        return _number(col, s, v.cast(MONEY), None)
    if col.kind == "int" and t.is_integer():
        return _number(col, s, v.cast(dt.int64), None)
    if col.kind == "bool" and t.is_boolean() and not col.choices:
        return Parsed(v, lambda x: x.notnull(), _fine)
    return None


def is_native(t: dt.DataType) -> bool:
    """Whether a typed file's column of type ``t`` may stay typed (``parse_native``)."""
    if t.is_timestamp():
        return t.timezone is None
    if t.is_decimal():
        return (t.precision or 38) <= 18 and (t.scale or 0) <= 2
    return t.is_date() or t.is_integer() or t.is_boolean()


def parse(col: Column, s: ir.StringValue, ctx: ParseContext) -> Parsed:
    """Typed value of the cleaned cell column ``s``, and the check of that value."""
    if col.choices:
        return parse_choice(col, s, ctx)
    return PARSERS[col.kind](col, s, ctx)


def place_key(s: ir.StringValue) -> ir.StringValue:
    """The lookup key of a place name, as ``archer.places.normalise_key`` makes it:
    lower case without blanks, apostrophes, hyphens or dots (plain replaces: a
    regular expression per row costs several times more)."""
    for ch in (" ", "\t", "\u3000", "'", "’", "`", "-", "."):
        s = s.replace(ch, "")
    return s.lower()
