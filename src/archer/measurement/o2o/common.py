"""Constants, errors and the small checks of the O2O funnel: phones, channels, money and
moments; reading a sign-up or payment file."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import ibis

from archer.errors import Invalid, NotFound, suggest

if TYPE_CHECKING:
    from archer.workspace import Workspace


WALK_IN = "walk-in"
COUPON = "coupon"  # the row of orders with the event's coupon whose buyer is no attendee
TOTAL = "total"
STANDARD_CHANNELS = ("forum", "qq", "wechat", "sem", "site", WALK_IN)
CHANNEL_ALIASES = {
    "forum": ("论坛", "bbs"),
    "qq": ("qq group", "qq群", "qq 群"),
    "wechat": ("微信", "微信群", "weixin", "wx"),
    "sem": ("search ads", "搜索推广", "百度推广", "竞价"),
    "site": ("website", "官网", "网站", "web"),
    WALK_IN: ("walkin", "walk in", "现场", "到店", "自然到店"),
}
MAX_FILE_BYTES = 20_000_000  # a sign-up or payment file
MAX_ROWS = 100_000  # rows of one file or request
MAX_CHANNELS = 20
MAX_WINDOW_DAYS = 365
MAX_EVENT_DAYS = 31
MAX_COST_YUAN = Decimal(100_000_000)
MAX_PAYMENT_YUAN = Decimal(100_000_000)
CHECKIN_SLACK = timedelta(hours=2)  # the desk may open a little early and close a little late
SHOWN_ERRORS = 20
PAYMENT_KINDS = {
    "deposit": ("deposit", "定金", "订金", "预付"),
    "balance": ("balance", "尾款", "余款", "rest"),
    "payment": ("payment", "全款", "full", "付款"),
}
SIGNUP_COLUMNS = {
    "name": ("name", "姓名", "名字", "客户姓名"),
    "phone": (
        "phone",
        "mobile",
        "tel",
        "telephone",
        "手机",
        "手机号",
        "手机号码",
        "电话",
        "联系电话",
    ),
    "customer_id": (
        "customer_id",
        "customer",
        "member id",
        "会员号",
        "会员编号",
        "会员id",
        "客户编号",
        "客户id",
    ),
    "channel": ("channel", "source", "渠道", "来源", "报名渠道"),
    "signed_up_at": ("signed_up_at", "signed up", "signup time", "time", "报名时间", "时间"),
}
PAYMENT_COLUMNS = {
    "payment_id": ("payment_id", "payment", "流水号", "支付流水号", "支付单号"),
    "order_id": ("order_id", "order", "订单号", "订单编号"),
    "amount": ("amount", "paid", "paid amount", "金额", "支付金额", "实付金额"),
    "paid_at": ("paid_at", "time", "支付时间", "付款时间"),
    "kind": ("kind", "type", "stage", "类型", "阶段"),
}

_NAME = re.compile(r"^[^/\x00-\x1f\x7f]{1,100}$")
_CHANNEL = re.compile(r"^[\w-]+( [\w-]+)*$")
_PHONE_SEP = re.compile(r"[ \t\-().\u00a0]")
_MAINLAND = re.compile(r"^1[3-9][0-9]{9}$")
_INTERNATIONAL = re.compile(r"^\+[1-9][0-9]{7,14}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class O2OError(Invalid):
    """Input the funnel cannot take; the message names the file, line and field."""


class UnknownEvent(NotFound):
    pass


# -- small checks -----------------------------------------------------------------------------
def normalise_phone(text: str) -> str | None:
    """A phone as the funnel matches it: a mainland mobile as its 11 digits (``+86``, ``0086``
    and separators dropped), another country's number as ``+`` and its digits; else None."""
    s = _PHONE_SEP.sub("", text.strip())
    for prefix in ("+86", "0086"):
        if s.startswith(prefix):
            s = s[len(prefix) :]
            break
    else:
        if len(s) == 13 and s.startswith("86"):
            s = s[2:]
    if _MAINLAND.match(s) or _INTERNATIONAL.match(s):
        return s
    return None


def phone_key(phone: ibis.expr.types.StringValue) -> ibis.expr.types.StringValue:
    """:func:`normalise_phone` as an Ibis expression, for ``customers.phone`` in the warehouse
    (a number it would refuse comes out unchanged, and so matches no attendee)."""
    s = phone.strip().re_replace(r"[ \t\-().]", "")
    mainland = s.re_search(r"^(\+86|0086|86)1[3-9][0-9]{9}$")
    return ibis.ifelse(mainland, s.right(11), s)


def masked(phone: str | None) -> str:
    """A phone for messages: ``138****8000``."""
    if not phone:
        return "-"
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


def channel_name(text: str) -> str:
    """The canonical name of a channel: a standard one by any of its aliases, else the text
    in lower case."""
    key = " ".join(str(text).replace("_", " ").split()).casefold()
    for name, aliases in CHANNEL_ALIASES.items():
        if key == name or key in aliases or key.replace(" ", "-") == name:
            return name
    return key


def _header(text: str) -> str:
    return " ".join(str(text).replace("_", " ").replace("-", " ").split()).casefold()


def _fen(value: Any, what: str, *, most: Decimal, allow_zero: bool) -> int:
    """Yuan (a number, or text such as ``1,280.00``, ``¥99``, ``99元``) as integer fen."""
    text = str(value).strip().replace(",", "").removeprefix("¥").removeprefix("￥")
    text = text.removesuffix("元").strip()
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise O2OError(f"{what}: {str(value)[:40]!r} is not an amount in yuan") from None
    if not d.is_finite() or d < 0 or (d == 0 and not allow_zero) or d > most:
        low = "0" if allow_zero else "more than 0"
        raise O2OError(f"{what}: {str(value)[:40]!r} is not an amount from {low} to {most:,}")
    if d != d.quantize(Decimal("0.01")):
        raise O2OError(f"{what}: {str(value)[:40]!r} has more than 2 decimals (fen)")
    return int(d * 100)


def _yuan(fen: int | None) -> float | None:
    return None if fen is None else fen / 100


def _per(fen: int, n: int) -> int | None:
    """``fen / n`` rounded half up to the fen; None when ``n`` is 0."""
    return None if n == 0 else (2 * fen + n) // (2 * n)


def parse_moment(value: Any, tz: ZoneInfo, what: str) -> datetime:
    """A moment typed as ``2026-05-01 09:00`` (the shop's time zone), ISO 8601 with an offset,
    ``2026/05/01 09:00``, or a ``datetime``; aware in UTC."""
    if isinstance(value, datetime):
        m = value
    else:
        text = str(value).strip().replace("/", "-")
        try:
            m = datetime.fromisoformat(text)
        except ValueError:
            raise O2OError(
                f"{what}: {str(value)[:40]!r} is not a time; expected e.g. 2026-05-01 09:00"
            ) from None
    if m.tzinfo is None:
        m = m.replace(tzinfo=tz)
    return m.astimezone(ZoneInfo("UTC"))


def _phone(value: Any) -> str | None:
    raw = _text(value, "phone", 40)
    if raw is None:
        return None
    p = normalise_phone(raw)
    if p is None:
        raise O2OError(
            f"phone: {raw!r} is not a phone number; expected a mobile of 11 digits such as "
            "13800138000 (+86 allowed), or + country code and number"
        )
    return p


def _text(value: Any, what: str, most: int) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    if not s:
        return None
    if len(s) > most:
        raise O2OError(f"{what}: {len(s):,} characters; expected at most {most}")
    if _CONTROL.search(s):
        raise O2OError(f"{what}: contains a control character")
    return s


# -- reading a file ----------------------------------------------------------------------------
def read_rows(ws: Workspace, path: Path | str, label: str | None = None) -> list[dict[str, Any]]:
    """The rows of a CSV or Excel file as dicts (header → text), each with ``_line``: read by
    the importer's reader (encodings, delimiters, Excel checked before it is opened), bounded
    to :data:`MAX_FILE_BYTES` and :data:`MAX_ROWS` before the work."""
    from archer.ingest.limits import Limits
    from archer.ingest.scratch import scratch_dir
    from archer.ingest.sources import SourceError, close_source, open_source

    path = Path(path)
    label = label or str(path)
    if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
        raise O2OError(
            f"{label}: {path.stat().st_size:,} bytes; a file here may have at most "
            f"{MAX_FILE_BYTES:,} (split it)"
        )
    limits = Limits(
        inflated_bytes=MAX_FILE_BYTES * 10,
        sheet_cells=MAX_ROWS * 50,
        excel_memory_bytes=1 << 30,
        excel_seconds=120,
    )
    with scratch_dir(ws.home / "tmp") as workdir:
        con = ibis.duckdb.connect()
        src = None
        try:
            src = open_source(
                con, path, materialise=True, workdir=workdir, name=label, limits=limits
            )
            if src.n_parse_rejects:
                first = src.parse_rejects.order_by("line").limit(1).to_pyarrow().to_pylist()[0]
                raise O2OError(f"{label}: line {first['line']}: {first['reason']}")
            t = src.scan("lines")
            n = t.count().execute()
            if n > MAX_ROWS:
                raise O2OError(f"{label}: {n:,} rows; a file here may have at most {MAX_ROWS:,}")
            rows = t.order_by("_line").to_pyarrow().to_pylist()
        except SourceError as e:
            raise O2OError(str(e)) from None
        finally:
            if src is not None:
                close_source(src)
            con.disconnect()
    return rows


def _columns(headers: Iterable[str], known: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Which header holds which field (by name or alias, case and ``_`` ignored)."""
    found: dict[str, str] = {}
    for h in headers:
        key = _header(h)
        for fld, aliases in known.items():
            if fld not in found and key in {_header(a) for a in (fld, *aliases)}:
                found[fld] = h
    return found


def _missing(label: str, headers: list[str], known: dict, need: list[str]) -> O2OError:
    names = [a for f in known for a in (f, *known[f])]
    hints = [f"{h!r} (did you mean {c[0]!r}?)" for h in headers for c in [suggest(h, names)] if c]
    said = f"; {', '.join(hints)}" if hints else ""
    return O2OError(
        f"{label}: no column for {' or '.join(need)}; headers found: "
        f"{', '.join(headers) or '(none)'}{said}"
    )


def _refuse(label: str, errors: list[str], total: int) -> O2OError:
    shown = "\n".join(f"  {label}: {e}" for e in errors[:SHOWN_ERRORS])
    more = f"\n  … and {len(errors) - SHOWN_ERRORS:,} more" if len(errors) > SHOWN_ERRORS else ""
    return O2OError(
        f"{label}: {len(errors):,} of {total:,} rows refused; nothing was stored:\n{shown}{more}",
        errors=errors[:1000],
    )
