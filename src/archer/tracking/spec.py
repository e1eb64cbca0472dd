"""The Segment HTTP tracking spec: checking a call and bringing it into one stored form.

Pure functions, no I/O: a route reads the body, and :func:`normalise` returns the events to
store or raises :class:`SpecError` naming the field that is wrong (``batch[3].userId``).

What is stored per event (JSON): the spec's own fields — ``type``, ``messageId``, ``userId``,
``anonymousId``, ``previousId``, ``groupId``, ``event``, ``name``, ``category``,
``properties``, ``traits``, ``context``, ``integrations`` — plus the three instants of the
spec: ``originalTimestamp`` (the client's ``timestamp``), ``sentAt``, ``receivedAt``, and
``timestamp`` corrected for the client's clock: ``receivedAt - (sentAt - originalTimestamp)``.

Limits, each checked before the work it bounds: an event is at most :data:`MAX_EVENT_BYTES`
*with* the batch's shared ``context`` and ``integrations`` merged into it (they are copied into
every event); one request stores at most :data:`MAX_STORED_BYTES` in all; objects and arrays
nest at most :data:`MAX_NESTING` levels; ids have no control characters and no text has a NUL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
# What one request may store, the fields Archer adds (messageId, timestamps) and the shared
# context copied into each event included: 500 KB of the smallest events grow about 7.3 times.
MAX_STORED_BYTES = 8 * MAX_BATCH_BYTES
MAX_NESTING = 254  # levels of objects and arrays in an event (orjson writes no deeper)
ID_MAX = 200
TYPES = ("track", "identify", "page", "screen", "alias", "group")
_OBJECTS = ("properties", "traits", "context", "integrations")
_STRINGS = ("event", "name", "category")
_IDS = ("userId", "anonymousId", "previousId", "groupId")


class SpecError(ValueError):
    """The call breaks the spec; ``field`` is where (``batch[2].timestamp``), if anywhere."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Event:
    message_id: str
    body: str  # the stored JSON


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise SpecError(f"the body is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise SpecError(f"the body must be a JSON object, not {_kind(doc)}")
    return doc


def normalise(kind: str, doc: dict[str, Any], received: datetime) -> list[Event]:
    """The events of one call to ``/v1/<kind>`` (``batch`` included), ready to store."""
    if kind != "batch":
        size = len(_dumps(doc, ""))
        if size > MAX_EVENT_BYTES:
            raise SpecError(_too_big(size))
        return [_event(doc, kind, "", received, None, {}, {})]
    items = doc.get("batch")
    if not isinstance(items, list):
        raise SpecError(f"batch: expected an array of events, got {_kind(items)}", "batch")
    sent_at = _instant(doc, "sentAt", "")
    context = _object(doc, "context", "")
    integrations = _object(doc, "integrations", "")
    # Copied into every event: an upper bound of what each event grows by, known before any copy.
    shared = sum(
        len(_dumps(v, f)) for f, v in (("context", context), ("integrations", integrations)) if v
    )
    out = []
    stored = 0
    for i, item in enumerate(items):
        where = f"batch[{i}]."
        if not isinstance(item, dict):
            raise SpecError(
                f"batch[{i}]: expected an event object, got {_kind(item)}", f"batch[{i}]"
            )
        size = len(_dumps(item, f"batch[{i}]"))
        if size + shared > MAX_EVENT_BYTES:
            with_shared = f" with the batch's context and integrations ({shared:,} bytes)"
            raise SpecError(
                f"batch[{i}]: {_too_big(size + shared, with_shared if shared else '')}",
                f"batch[{i}]",
            )
        kind_i = item.get("type")
        if kind_i not in TYPES:
            raise SpecError(
                f"{where}type: expected one of {', '.join(TYPES)}, got {_show(kind_i)}",
                f"{where}type",
            )
        event = _event(item, kind_i, where, received, sent_at, context, integrations)
        stored += len(event.body)
        if stored > MAX_STORED_BYTES:
            raise SpecError(
                f"batch: the events would take more than {MAX_STORED_BYTES:,} bytes to store"
                f" (at batch[{i}] of {len(items):,}); at most {MAX_STORED_BYTES:,}"
                f" ({MAX_STORED_BYTES // 1024:,} KB) per request, the shared context"
                " counted once in every event: send a smaller context or fewer events per batch",
                "batch",
            )
        out.append(event)
    return out


def _event(
    doc: dict[str, Any],
    kind: str,
    where: str,
    received: datetime,
    batch_sent_at: datetime | None,
    batch_context: dict,
    batch_integrations: dict,
) -> Event:
    out: dict[str, Any] = {"type": kind}
    for f in _IDS:
        v = doc.get(f)
        if v is None or v == "":
            continue
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise SpecError(f"{where}{f}: expected a string, got {_kind(v)}", where + f)
        v = str(v)
        if len(v) > ID_MAX:
            raise SpecError(f"{where}{f}: longer than {ID_MAX} characters", where + f)
        _printable(v, where + f)
        out[f] = v
    _require_ids(kind, out, where)
    for f in _STRINGS:
        v = doc.get(f)
        if v is not None:
            if not isinstance(v, str):
                raise SpecError(f"{where}{f}: expected a string, got {_kind(v)}", where + f)
            if "\x00" in v:
                raise SpecError(f"{where}{f}: contains a NUL character (\\0)", where + f)
            out[f] = v
    if kind == "track" and not out.get("event"):
        raise SpecError(f"{where}event: a track call needs the event's name", where + "event")
    for f in _OBJECTS:
        v = _object(doc, f, where)
        if f == "context":
            v = _merge(batch_context, v)
        elif f == "integrations":
            v = {**batch_integrations, **v}
        if v:
            out[f] = v
    mid = doc.get("messageId")
    if mid is None or mid == "":
        mid = f"archer-{uuid.uuid4()}"
    elif isinstance(mid, bool) or not isinstance(mid, str | int):
        raise SpecError(
            f"{where}messageId: expected a string, got {_kind(mid)}", where + "messageId"
        )
    mid = str(mid)
    if len(mid) > ID_MAX:
        raise SpecError(f"{where}messageId: longer than {ID_MAX} characters", where + "messageId")
    _printable(mid, where + "messageId")
    out["messageId"] = mid

    original = _instant(doc, "timestamp", where) or _instant(doc, "originalTimestamp", where)
    sent_at = _instant(doc, "sentAt", where) or batch_sent_at
    out["timestamp"] = _iso(corrected(original, sent_at, received))
    out["receivedAt"] = _iso(received)
    if original is not None:
        out["originalTimestamp"] = _iso(original)
    if sent_at is not None:
        out["sentAt"] = _iso(sent_at)
    return Event(mid, _dumps(out, where.rstrip(".")).decode())


def corrected(original: datetime | None, sent_at: datetime | None, received: datetime) -> datetime:
    """When it happened, on the server's clock (the spec's skew correction).

    The client's clock may be off by minutes or years; the interval it measured between the
    event and the send is trusted, its absolute time is not.
    """
    if original is None:
        return received
    if sent_at is None:
        return original
    return received - (sent_at - original)


def _printable(v: str, field: str) -> None:
    """Ids name customers and messages in the warehouse: no control character (NUL included)."""
    bad = next((c for c in v if c < " " or c == "\x7f"), None)
    if bad is not None:
        raise SpecError(
            f"{field}: contains the control character {bad!r} (at character {v.index(bad) + 1});"
            " an id is printable text",
            field,
        )


def _dumps(v: Any, field: str) -> bytes:
    """``v`` as JSON, or a :class:`SpecError` at ``field`` when it nests too deeply to write."""
    try:
        return orjson.dumps(v)
    except orjson.JSONEncodeError as e:
        where = f"{field}: " if field else ""
        if "recursion" not in str(e).lower():
            raise SpecError(f"{where}cannot be stored as JSON: {e}", field or None) from None
        raise SpecError(
            f"{where}objects and arrays nested more than {MAX_NESTING} levels deep",
            field or None,
        ) from None


def _require_ids(kind: str, out: dict, where: str) -> None:
    if kind == "alias":
        for f in ("userId", "previousId"):
            if f not in out:
                raise SpecError(f"{where}{f}: an alias call needs userId and previousId", where + f)
        return
    if "userId" not in out and "anonymousId" not in out:
        raise SpecError(
            f"{where}userId: a {kind} call needs userId or anonymousId", where + "userId"
        )
    if kind == "group" and "groupId" not in out:
        raise SpecError(f"{where}groupId: a group call needs groupId", where + "groupId")


def _object(doc: dict, f: str, where: str) -> dict:
    v = doc.get(f)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise SpecError(f"{where}{f}: expected an object, got {_kind(v)}", where + f)
    return v


def _merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``, objects merged key by key (the event's own values win)."""
    if not base:
        return over
    out = dict(base)
    for k, v in over.items():
        b = out.get(k)
        out[k] = _merge(b, v) if isinstance(b, dict) and isinstance(v, dict) else v
    return out


def _instant(doc: dict, f: str, where: str) -> datetime | None:
    v = doc.get(f)
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise SpecError(
            f"{where}{f}: expected an ISO 8601 date-time string, got {_kind(v)}", where + f
        )
    try:
        t = datetime.fromisoformat(v.strip())
    except ValueError:
        raise SpecError(f"{where}{f}: {v[:60]!r} is not an ISO 8601 date-time", where + f) from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _too_big(size: int, with_shared: str = "") -> str:
    return (
        f"the event is {size:,} bytes{with_shared}; at most {MAX_EVENT_BYTES:,} (32 KB) per event"
    )


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


def _show(v: Any) -> str:
    return repr(v) if isinstance(v, str) else _kind(v)
