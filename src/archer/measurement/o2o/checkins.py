"""O2O check-ins: the desk's scans, idempotent per scan id; walk-ins count as their own
channel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from archer.errors import Conflict
from archer.measurement.o2o.common import (
    CHECKIN_SLACK,
    WALK_IN,
    O2OError,
    _phone,
    _text,
    masked,
    parse_moment,
)
from archer.measurement.o2o.events import (
    _event,
)
from archer.store.o2o import (
    CUSTOMER_MAX,
    PERSON_NAME_MAX,
    SCAN_MAX,
    O2OCheckin,
    O2OEvent,
    O2OSignup,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from archer.workspace import Workspace


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
