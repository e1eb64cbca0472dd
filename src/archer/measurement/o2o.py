"""The O2O group-buy funnel: an offline event (a home-furnishing mall's group-buy day), who
signed up through which channel, who came, and what they bought.

* **Event**: a name, a start and an end (the shop's time zone), the channels it was promoted
  through with what each cost, an optional event coupon code, and how many days after its end
  orders still count (``window_days``).
* **Sign-ups** by channel (forum, QQ group, WeChat, SEM, site, walk-in, or the event's own),
  imported from CSV/Excel or sent as rows; a person is their normalised phone (or customer id),
  so importing again adds nothing. A file with a bad row is refused whole, every problem named
  by file, line, field and what was expected.
* **Check-ins**: the desk sends each scan with its id; a scan id seen before is answered as a
  duplicate (the same person) or refused (another person), so a double scan counts once. A
  person who checks in without a sign-up is a **walk-in**.
* **Orders** created from the event's start to ``window_days`` after its end are the event's
  when their customer is an attendee — by customer id, or by a customer whose phone is an
  attendee's — or when they carry the event's coupon code (then, if no attendee matches, they
  are the ``coupon`` row). What "paid", "refunded" and "net" mean comes from
  :mod:`archer.facts`. An order with **staged payments** (a deposit, then the rest) counts the
  payments made by the report's moment instead, less its refunds.
* **Report** per channel: sign-ups → check-ins → buyers → orders → sales, customer unit price
  (sales ÷ buyers), and cost per sign-up, per attendee and per order.

Money is counted in integer fen and shown in yuan.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import ibis
import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from archer.errors import Conflict, Invalid, NotFound, did_you_mean, suggest
from archer.facts import Snapshot
from archer.store.o2o import (
    CHANNEL_MAX,
    CODE_MAX,
    CUSTOMER_MAX,
    PAYMENT_MAX,
    PERSON_NAME_MAX,
    SCAN_MAX,
    O2OChannel,
    O2OCheckin,
    O2OEvent,
    O2OPayment,
    O2OSignup,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

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


# -- events -----------------------------------------------------------------------------------
def create_event(
    ws: Workspace,
    name: str,
    *,
    starts: Any,
    ends: Any,
    channels: dict[str, Any] | None = None,
    coupon: str | None = None,
    window_days: int = 30,
    user: str = "cli",
) -> dict[str, Any]:
    """Store an event after checking it; every problem names its field."""
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise O2OError("name: expected 1–100 characters, no '/' or control characters")
    name = name.strip()
    start = parse_moment(starts, ws.tz, "start")
    end = parse_moment(ends, ws.tz, "end")
    if end <= start:
        raise O2OError("end: expected a time after the start")
    if end - start > timedelta(days=MAX_EVENT_DAYS):
        raise O2OError(f"end: an event lasts at most {MAX_EVENT_DAYS} days")
    if not isinstance(window_days, int) or not 0 <= window_days <= MAX_WINDOW_DAYS:
        raise O2OError(f"window_days: expected a whole number of days from 0 to {MAX_WINDOW_DAYS}")
    code = _text(coupon, "coupon", CODE_MAX)
    costs: dict[str, int] = {}
    for raw, cost in (channels or {}).items():
        ch = channel_name(raw)
        if not ch or len(ch) > CHANNEL_MAX or not _CHANNEL.match(ch):
            raise O2OError(
                f"channels: {str(raw)[:50]!r} is not a channel name (letters, digits, "
                f"'-', at most {CHANNEL_MAX} characters)"
            )
        if ch in costs:
            raise O2OError(f"channels: {ch!r} is given twice")
        costs[ch] = _fen(cost, f"channels: the cost of {ch!r}", most=MAX_COST_YUAN, allow_zero=True)
    if len(costs) > MAX_CHANNELS:
        raise O2OError(f"channels: {len(costs)} given; an event has at most {MAX_CHANNELS}")
    now = ws.now()
    try:
        with ws.session(write=True) as s:
            if s.scalar(select(O2OEvent.id).where(O2OEvent.name == name)) is not None:
                raise Conflict(f"an event named {name!r} exists already")
            ev = O2OEvent(
                name=name,
                starts_at=start,
                ends_at=end,
                window_days=window_days,
                coupon_code=code.upper() if code else None,
                created_by=user,
                created_at=now,
            )
            s.add(ev)
            s.flush()
            for i, (ch, fen) in enumerate(costs.items()):
                s.add(O2OChannel(event_id=ev.id, channel=ch, position=i, cost_fen=fen))
    except IntegrityError:
        raise Conflict(f"an event named {name!r} exists already") from None
    return get_event(ws, name)


def _event(s: Session, name: str) -> O2OEvent:
    ev = s.scalar(select(O2OEvent).where(O2OEvent.name == name))
    if ev is None:
        known = list(s.scalars(select(O2OEvent.name)))
        raise UnknownEvent(f"no event named {name!r}{did_you_mean(name, known)}")
    return ev


def _channels(s: Session, ev: O2OEvent) -> dict[str, int]:
    rows = s.execute(
        select(O2OChannel.channel, O2OChannel.cost_fen)
        .where(O2OChannel.event_id == ev.id)
        .order_by(O2OChannel.position)
    )
    return {ch: fen for ch, fen in rows}


def _event_doc(ws: Workspace, ev: O2OEvent, costs: dict[str, int]) -> dict[str, Any]:
    tz = ws.tz
    return {
        "name": ev.name,
        "starts_at": ev.starts_at.astimezone(tz).isoformat(),
        "ends_at": ev.ends_at.astimezone(tz).isoformat(),
        "window_days": ev.window_days,
        "orders_until": (ev.ends_at + timedelta(days=ev.window_days)).astimezone(tz).isoformat(),
        "coupon": ev.coupon_code,
        "channels": {ch: _yuan(fen) for ch, fen in costs.items()},
        "created_by": ev.created_by,
        "created_at": ev.created_at.isoformat(),
    }


def get_event(ws: Workspace, name: str) -> dict[str, Any]:
    with ws.session() as s:
        ev = _event(s, name)
        return _event_doc(ws, ev, _channels(s, ev))


def list_events(ws: Workspace) -> list[dict[str, Any]]:
    """Every event, the latest first, with its sign-ups and check-ins (scans)."""
    with ws.session() as s:
        events = list(s.scalars(select(O2OEvent).order_by(O2OEvent.starts_at.desc())))
        docs = []
        for ev in events:
            doc = _event_doc(ws, ev, _channels(s, ev))
            doc["signups"] = s.scalar(select(func.count()).where(O2OSignup.event_id == ev.id))
            doc["scans"] = s.scalar(select(func.count()).where(O2OCheckin.event_id == ev.id))
            docs.append(doc)
        return docs


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


# -- sign-ups --------------------------------------------------------------------------------
@dataclass
class _Signup:
    line: int
    person: str
    channel: str
    name: str | None
    phone: str | None
    customer_id: str | None
    signed_up_at: datetime


def import_signups(
    ws: Workspace, event: str, path: Path | str, *, name: str | None = None
) -> dict[str, Any]:
    """Import a file of sign-ups (CSV or Excel: name, phone, customer id, channel, signed-up
    time) into ``event``; all rows or none."""
    label = name or str(path)
    with ws.session() as s:
        _event(s, event)  # an unknown event is said before the file is read
    rows = read_rows(ws, path, label)
    return add_signups(ws, event, rows, label=label)


def add_signups(
    ws: Workspace,
    event: str,
    rows: list[dict[str, Any]],
    *,
    label: str = "request",
    unit: str = "line",
) -> dict[str, Any]:
    """Add sign-ups (dicts by field name or a file's headers; ``_line`` numbers them) to
    ``event``, all or none. A person already signed up (the same phone, or customer id when
    there is no phone) is left as they were."""
    if len(rows) > MAX_ROWS:
        raise O2OError(f"{label}: {len(rows):,} rows; at most {MAX_ROWS:,} at once")
    headers = list(dict.fromkeys(k for r in rows[:1] for k in r if k != "_line"))
    cols = _columns(headers, SIGNUP_COLUMNS)
    if rows and "channel" not in cols:
        raise _missing(label, headers, SIGNUP_COLUMNS, ["channel"])
    if rows and "phone" not in cols and "customer_id" not in cols:
        raise _missing(label, headers, SIGNUP_COLUMNS, ["phone", "customer_id"])
    now = ws.now()
    with ws.session(write=True) as s:
        ev = _event(s, event)
        costs = _channels(s, ev)
        allowed = [*costs, *([] if WALK_IN in costs else [WALK_IN])]
        good: list[_Signup] = []
        errors: list[str] = []
        for i, r in enumerate(rows):
            line = int(r.get("_line") or i + 1)
            try:
                good.append(_signup(r, cols, line, allowed, ev.name, ws.tz, now))
            except O2OError as e:
                errors.append(f"{unit} {line}: {e}")
        if errors:
            raise _refuse(label, errors, len(rows))
        known = set(s.scalars(select(O2OSignup.person).where(O2OSignup.event_id == ev.id)))
        in_file: set[str] = set()
        added = already = repeated = 0
        for g in good:
            if g.person in known:
                already += 1
            elif g.person in in_file:
                repeated += 1  # the first row of a person in the file counts
            else:
                in_file.add(g.person)
                s.add(
                    O2OSignup(
                        event_id=ev.id,
                        person=g.person,
                        channel=g.channel,
                        name=g.name,
                        phone=g.phone,
                        customer_id=g.customer_id,
                        signed_up_at=g.signed_up_at,
                        imported_at=now,
                    )
                )
                added += 1
    return {
        "event": event,
        "rows": len(rows),
        "added": added,
        "already": already,
        "repeated": repeated,
        "ignored_columns": [h for h in headers if h not in cols.values()],
    }


def _signup(
    r: dict,
    cols: dict[str, str],
    line: int,
    allowed: list[str],
    event: str,
    tz: ZoneInfo,
    now: datetime,
) -> _Signup:
    def cell(f: str) -> Any:
        return r.get(cols[f]) if f in cols else None

    raw_ch = _text(cell("channel"), "channel", 200)
    if raw_ch is None:
        raise O2OError("channel: empty; expected one of " + ", ".join(allowed))
    ch = channel_name(raw_ch)
    if ch not in allowed:
        raise O2OError(
            f"channel: {raw_ch[:40]!r} is not a channel of event {event!r}; expected "
            f"one of {', '.join(allowed)}{did_you_mean(ch, allowed)}"
        )
    phone = _phone(cell("phone"))
    customer = _text(cell("customer_id"), "customer_id", CUSTOMER_MAX)
    if phone is None and customer is None:
        raise O2OError("phone: empty; expected a phone or a customer id")
    when = cell("signed_up_at")
    at = now if when in (None, "") else parse_moment(when, tz, "signed_up_at")
    return _Signup(
        line,
        phone or f"id:{customer}",
        ch,
        _text(cell("name"), "name", PERSON_NAME_MAX),
        phone,
        customer,
        at,
    )


# -- check-ins ---------------------------------------------------------------------------------
def check_in(
    ws: Workspace,
    event: str,
    *,
    scan_id: str,
    phone: str | None = None,
    customer_id: str | None = None,
    name: str | None = None,
    at: Any = None,
    who: str = "cli",
) -> dict[str, Any]:
    """Record one scan of the check-in desk, once: the same scan id again is answered as a
    duplicate (``duplicate`` true) when it names the same person, and refused (409) when it
    names another. Says whether the person signed up, and through which channel."""
    sid = _text(scan_id, "scan_id", SCAN_MAX)
    if sid is None:
        raise O2OError("scan_id: empty; expected the id of the scan (at most 100 characters)")
    p = _phone(phone)
    cid = _text(customer_id, "customer_id", CUSTOMER_MAX)
    if p is None and cid is None:
        raise O2OError("phone: empty; a check-in needs a phone or a customer id")
    person_name = _text(name, "name", PERSON_NAME_MAX)
    moment = ws.now() if at in (None, "") else parse_moment(at, ws.tz, "checked_in_at")
    for attempt in range(2):  # a unique-key race on PostgreSQL is answered by reading again
        try:
            return _record_scan(ws, event, sid, p, cid, person_name, moment, who)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def _record_scan(ws, event, sid, phone, cid, person_name, moment, who) -> dict[str, Any]:
    with ws.session(write=True) as s:
        ev = _event(s, event)
        old = s.scalar(
            select(O2OCheckin).where(O2OCheckin.event_id == ev.id, O2OCheckin.scan_id == sid)
        )
        if old is not None:
            if (old.phone, old.customer_id) != (phone, cid):
                raise Conflict(
                    f"scan {sid!r} was recorded at {old.checked_in_at.astimezone(ws.tz):%H:%M:%S}"
                    f" for another person (phone {masked(old.phone)}, customer "
                    f"{old.customer_id or '-'}); a scan id names one scan: nothing was changed"
                )
            return _scan_doc(s, ev, old, duplicate=True, tz=ws.tz)
        if not ev.starts_at - CHECKIN_SLACK <= moment <= ev.ends_at + CHECKIN_SLACK:
            tz = ws.tz
            raise O2OError(
                f"checked_in_at: {moment.astimezone(tz):%Y-%m-%d %H:%M} is outside event "
                f"{ev.name!r} ({ev.starts_at.astimezone(tz):%Y-%m-%d %H:%M} to "
                f"{ev.ends_at.astimezone(tz):%Y-%m-%d %H:%M}, {tz.key}, two hours either side)"
            )
        row = O2OCheckin(
            event_id=ev.id,
            scan_id=sid,
            phone=phone,
            customer_id=cid,
            name=person_name,
            checked_in_at=moment,
            recorded_by=who,
        )
        s.add(row)
        s.flush()
        return _scan_doc(s, ev, row, duplicate=False, tz=ws.tz)


def _scan_doc(s: Session, ev: O2OEvent, row: O2OCheckin, *, duplicate: bool, tz) -> dict:
    signup = None
    if row.phone is not None:
        signup = s.scalar(
            select(O2OSignup).where(O2OSignup.event_id == ev.id, O2OSignup.phone == row.phone)
        )
    if signup is None and row.customer_id is not None:
        signup = s.scalar(
            select(O2OSignup)
            .where(O2OSignup.event_id == ev.id, O2OSignup.customer_id == row.customer_id)
            .order_by(O2OSignup.signed_up_at, O2OSignup.id)
            .limit(1)
        )
    return {
        "event": ev.name,
        "scan_id": row.scan_id,
        "duplicate": duplicate,
        "signed_up": signup is not None,
        "channel": signup.channel if signup is not None else WALK_IN,
        "name": row.name or (signup.name if signup is not None else None),
        "checked_in_at": row.checked_in_at.astimezone(tz).isoformat(),
    }


# -- staged payments ---------------------------------------------------------------------------
def import_payments(ws: Workspace, path: Path | str, *, name: str | None = None) -> dict:
    """Import a file of payments (payment id, order id, amount, paid time, kind); all or none."""
    label = name or str(path)
    return add_payments(ws, read_rows(ws, path, label), label=label)


def add_payments(
    ws: Workspace, rows: list[dict[str, Any]], *, label: str = "request", unit: str = "line"
) -> dict:
    """Record payments of orders paid in stages (a deposit, then the balance), all or none; a
    payment id seen before with the same content is left alone, with other content refused."""
    if len(rows) > MAX_ROWS:
        raise O2OError(f"{label}: {len(rows):,} rows; at most {MAX_ROWS:,} at once")
    headers = list(dict.fromkeys(k for r in rows[:1] for k in r if k != "_line"))
    cols = _columns(headers, PAYMENT_COLUMNS)
    need = [f for f in ("payment_id", "order_id", "amount", "paid_at") if f not in cols]
    if rows and need:
        raise _missing(label, headers, PAYMENT_COLUMNS, need)
    seen: dict[str, tuple] = {}
    errors: list[str] = []
    for i, r in enumerate(rows):
        line = int(r.get("_line") or i + 1)
        try:
            p = _payment(r, cols, ws.tz)
        except O2OError as e:
            errors.append(f"{unit} {line}: {e}")
            continue
        if seen.setdefault(p[0], p) != p:
            errors.append(
                f"{unit} {line}: payment_id: {p[0]!r} is given twice with different contents"
            )
    if errors:
        raise _refuse(label, errors, len(rows))
    now = ws.now()
    added = same = 0
    with ws.session(write=True) as s:
        ids = list(seen)
        old: dict[str, O2OPayment] = {}
        for k in range(0, len(ids), 500):
            chunk = ids[k : k + 500]
            old.update(
                {
                    p.payment_id: p
                    for p in s.scalars(select(O2OPayment).where(O2OPayment.payment_id.in_(chunk)))
                }
            )
        clash = [pid for pid, p in seen.items() if pid in old and _payment_key(old[pid]) != p]
        if clash:
            raise Conflict(
                f"{label}: payment {clash[0]!r} is recorded already with other "
                f"contents ({len(clash)} such); nothing was stored"
            )
        for pid, (_, order, fen, at, kind) in seen.items():
            if pid in old:
                same += 1
                continue
            s.add(
                O2OPayment(
                    payment_id=pid,
                    order_id=order,
                    kind=kind,
                    amount_fen=fen,
                    paid_at=at,
                    recorded_at=now,
                )
            )
            added += 1
    return {"rows": len(rows), "added": added, "already": same}


def _payment_key(p: O2OPayment) -> tuple:
    return (p.payment_id, p.order_id, p.amount_fen, p.paid_at, p.kind)


def _payment(r: dict, cols: dict[str, str], tz: ZoneInfo) -> tuple:
    def cell(f: str) -> Any:
        return r.get(cols[f]) if f in cols else None

    pid = _text(cell("payment_id"), "payment_id", PAYMENT_MAX)
    order = _text(cell("order_id"), "order_id", 200)
    if pid is None or order is None:
        raise O2OError(f"{'payment_id' if pid is None else 'order_id'}: empty")
    amount = cell("amount")
    if amount in (None, ""):
        raise O2OError("amount: empty; expected the amount paid in yuan")
    fen = _fen(amount, "amount", most=MAX_PAYMENT_YUAN, allow_zero=False)
    if cell("paid_at") in (None, ""):
        raise O2OError("paid_at: empty; expected when it was paid, e.g. 2026-05-01 10:30")
    at = parse_moment(cell("paid_at"), tz, "paid_at")
    raw_kind = _text(cell("kind"), "kind", 40)
    kind = "payment"
    if raw_kind is not None:
        for k, words in PAYMENT_KINDS.items():
            if raw_kind.casefold() in words:
                kind = k
                break
        else:
            raise O2OError(f"kind: {raw_kind!r} is not deposit (定金), balance (尾款) or payment")
    return (pid, order, fen, at.replace(microsecond=0), kind)


# -- the report --------------------------------------------------------------------------------
@dataclass
class _Person:
    channel: str
    signed_up: bool
    phones: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    came: bool = False


@dataclass
class _Row:
    channel: str
    cost_fen: int = 0
    signups: int = 0
    checkins: int = 0
    buyers: set = field(default_factory=set)
    orders: int = 0
    sales_fen: int = 0

    def doc(self) -> dict[str, Any]:
        b = len(self.buyers)
        return {
            "channel": self.channel,
            "signups": self.signups,
            "checkins": self.checkins,
            "buyers": b,
            "orders": self.orders,
            "sales": _yuan(self.sales_fen),
            "unit_price": _yuan(_per(self.sales_fen, b)),
            "cost": _yuan(self.cost_fen),
            "cost_per_signup": _yuan(_per(self.cost_fen, self.signups)),
            "cost_per_attendee": _yuan(_per(self.cost_fen, self.checkins)),
            "cost_per_order": _yuan(_per(self.cost_fen, self.orders)),
        }


def report(ws: Workspace, event: str, *, at: datetime | None = None) -> dict[str, Any]:
    """The event's funnel per channel and in total, as of ``at`` (default: now)."""
    moment = (at or ws.now()).astimezone(ZoneInfo("UTC"))
    with ws.session() as s:
        ev = _event(s, event)
        costs = _channels(s, ev)
        signups = list(
            s.scalars(
                select(O2OSignup)
                .where(O2OSignup.event_id == ev.id)
                .order_by(O2OSignup.signed_up_at, O2OSignup.id)
            )
        )
        scans = list(
            s.scalars(
                select(O2OCheckin)
                .where(O2OCheckin.event_id == ev.id, O2OCheckin.checked_in_at <= moment)
                .order_by(O2OCheckin.checked_in_at, O2OCheckin.id)
            )
        )
        doc = _event_doc(ws, ev, costs)
    people, by_phone, by_id = _people(signups, scans)
    names = [*costs, *([] if WALK_IN in costs else [WALK_IN])]
    rows = {ch: _Row(ch, costs.get(ch, 0)) for ch in names}
    if ev.coupon_code:
        rows[COUPON] = _Row(COUPON)
    for p in people:
        rows[p.channel].signups += p.signed_up
        rows[p.channel].checkins += p.came
    orders = _event_orders(ws, ev, moment, people)
    for o in orders:
        # By customer id first, then by a phone of the customer's that an attendee gave.
        found = [by_id.get(o["customer_id"]), *(by_phone.get(x) for x in sorted(o["phones"]))]
        who = next((i for i in found if i is not None and people[i].came), None)
        if who is not None:
            row, buyer = rows[people[who].channel], who
        elif o["coupon"]:
            row, buyer = rows[COUPON], o["customer_id"] or f"order:{o['order_id']}"
        else:
            continue
        row.buyers.add(buyer)
        row.orders += 1
        row.sales_fen += o["sales_fen"]
    total = _Row(TOTAL, sum(r.cost_fen for r in rows.values()))
    for r in rows.values():
        total.signups += r.signups
        total.checkins += r.checkins
        total.buyers |= {(r.channel, b) for b in r.buyers}
        total.orders += r.orders
        total.sales_fen += r.sales_fen
    out = total.doc()
    out["scans"] = len(scans)
    return {
        "event": doc,
        "as_of": moment.astimezone(ws.tz).isoformat(),
        "channels": [r.doc() for r in rows.values()],
        "total": out,
    }


def _people(
    signups: list[O2OSignup], scans: list[O2OCheckin]
) -> tuple[list[_Person], dict[str, int], dict[str, int]]:
    """Everyone the event knows — each sign-up, and each walk-in — with who came; a scan finds
    its person by phone, then by customer id; the earliest sign-up owns a phone or id."""
    people: list[_Person] = []
    by_phone: dict[str, int] = {}
    by_id: dict[str, int] = {}

    def know(i: int, phone: str | None, cid: str | None) -> None:
        if phone:
            people[i].phones.add(phone)
            by_phone.setdefault(phone, i)
        if cid:
            people[i].ids.add(cid)
            by_id.setdefault(cid, i)

    for su in signups:
        people.append(_Person(su.channel, True))
        know(len(people) - 1, su.phone, su.customer_id)
    for sc in scans:
        i = by_phone.get(sc.phone) if sc.phone else None
        if i is None and sc.customer_id:
            i = by_id.get(sc.customer_id)
        if i is None:
            people.append(_Person(WALK_IN, False))
            i = len(people) - 1
        people[i].came = True
        know(i, sc.phone, sc.customer_id)
    return people, by_phone, by_id


def _event_orders(
    ws: Workspace, ev: O2OEvent, moment: datetime, people: list[_Person]
) -> list[dict[str, Any]]:
    """The orders that may be the event's, each with the customer's phone when it is an
    attendee's, whether it carries the coupon, and its sales in fen as of ``moment``."""
    came = [p for p in people if p.came]
    ids = sorted({i for p in came for i in p.ids})
    phones = sorted({x for p in came for x in p.phones})
    start = ev.starts_at.replace(tzinfo=None)
    until = (ev.ends_at + timedelta(days=ev.window_days)).replace(tzinfo=None)
    code = ev.coupon_code
    with ws.warehouse() as wh:
        if not wh.has_table("orders") or not wh.has_table("customers"):
            return []
        snap = Snapshot.instant(wh, moment, ws.tz)
        c = snap.customers
        pk = ibis.memtable(pa.table({"_phone": pa.array(phones, pa.string())}))
        cp = c.select("customer_id", _phone=phone_key(c.phone))
        by_phone = cp.inner_join(pk, "_phone").select("customer_id", "_phone")
        keys = ibis.memtable(pa.table({"customer_id": pa.array(ids, pa.string())}))
        wanted = keys.mutate(_phone=ibis.null("string")).union(by_phone).distinct()
        f = snap.order_facts()
        f = f.filter((f.created_at >= start) & (f.created_at < until))
        coupon = f.coupon_code.strip().upper() == code if code else ibis.literal(False)
        f = f.mutate(_coupon=coupon.fill_null(False))
        j = f.left_join(wanted, f.customer_id == wanted.customer_id)
        j = j.filter(j.customer_id_right.notnull() | j._coupon)
        r = snap.refunds
        ref = r.group_by(_oid=r.order_id).aggregate(_refunds=r.amount.cast("float64").sum())
        j = j.left_join(ref, j.order_id == ref._oid)
        cols = j.select(
            "order_id",
            "customer_id",
            "_phone",
            "_coupon",
            "is_paid",
            "net",
            _refunds=j._refunds.fill_null(0.0),
        )
        found = cols.to_pyarrow().to_pylist()
    staged = _staged(ws, sorted({o["order_id"] for o in found}), moment)
    orders: dict[str, dict[str, Any]] = {}
    for o in found:  # a customer with two attendee phones joins twice: one order, once
        oid = o["order_id"]
        if oid in staged:
            received = staged[oid] - round(o["_refunds"] * 100)
            paid = staged[oid] > 0
        else:
            received = round((o["net"] or 0.0) * 100)
            paid = bool(o["is_paid"])
        if not paid:
            continue
        doc = orders.setdefault(
            oid,
            {
                "order_id": oid,
                "customer_id": o["customer_id"],
                "phones": set(),
                "coupon": bool(o["_coupon"]),
                "sales_fen": max(received, 0),
            },
        )
        if o["_phone"] is not None:
            doc["phones"].add(o["_phone"])
    return sorted(orders.values(), key=lambda o: o["order_id"])


def _staged(ws: Workspace, order_ids: list[str], moment: datetime) -> dict[str, int]:
    """Fen paid by ``moment`` on each of ``order_ids`` that has staged payments."""
    out: dict[str, int] = {}
    with ws.session() as s:
        for k in range(0, len(order_ids), 500):
            chunk = order_ids[k : k + 500]
            for p in s.scalars(select(O2OPayment).where(O2OPayment.order_id.in_(chunk))):
                out.setdefault(p.order_id, 0)
                if p.paid_at <= moment:
                    out[p.order_id] += p.amount_fen
    return out
