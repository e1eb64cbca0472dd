"""O2O events: create, read and list a group-buy event with its channels and costs."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from archer.errors import Conflict, did_you_mean
from archer.measurement.o2o.common import (
    _CHANNEL,
    _NAME,
    MAX_CHANNELS,
    MAX_COST_YUAN,
    MAX_EVENT_DAYS,
    MAX_WINDOW_DAYS,
    O2OError,
    UnknownEvent,
    _fen,
    _text,
    _yuan,
    channel_name,
    parse_moment,
)
from archer.store.o2o import (
    CHANNEL_MAX,
    CODE_MAX,
    O2OChannel,
    O2OCheckin,
    O2OEvent,
    O2OSignup,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from archer.workspace import Workspace


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
