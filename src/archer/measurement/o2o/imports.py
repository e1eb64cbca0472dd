"""O2O imports: sign-ups by channel and staged payments, from files or rows; a file with a bad
row is refused whole."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from archer.errors import Conflict, did_you_mean
from archer.measurement.o2o.common import (
    MAX_PAYMENT_YUAN,
    MAX_ROWS,
    PAYMENT_COLUMNS,
    PAYMENT_KINDS,
    SIGNUP_COLUMNS,
    WALK_IN,
    O2OError,
    _columns,
    _fen,
    _missing,
    _phone,
    _refuse,
    _text,
    channel_name,
    parse_moment,
    read_rows,
)
from archer.measurement.o2o.events import (
    _channels,
    _event,
)
from archer.store.o2o import (
    CUSTOMER_MAX,
    PAYMENT_MAX,
    PERSON_NAME_MAX,
    O2OPayment,
    O2OSignup,
)

if TYPE_CHECKING:
    from archer.workspace import Workspace


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
