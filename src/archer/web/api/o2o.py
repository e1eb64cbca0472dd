"""Offline group-buy events (docs/o2o.md): events with their channels' costs, sign-ups, the
check-in desk's scans, staged payments and the funnel per channel.

The check-in desk calls ``POST /api/o2o/events/{name}/checkins`` with an API key (``archer
apikey create desk``): a new scan is a 201, the same scan id again for the same person a 200
with ``duplicate`` true (a double scan counts once), and the same scan id for another person a
409 — nothing changes. Rows that do not fit are a 422 naming each ``row``, field and what was
expected, and nothing of the request is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from archer.measurement import o2o
from archer.store.o2o import CHANNEL_MAX, CODE_MAX, CUSTOMER_MAX, PAYMENT_MAX, SCAN_MAX
from archer.web.api.common import Cursor, Limit, Page, core, page_of_list, plain
from archer.web.auth import ApiPrincipal
from archer.workspace import Workspace

router = APIRouter(tags=["o2o"])
MAX_ROWS_PER_REQUEST = 5_000  # sign-ups or payments in one body (the body is at most 1 MiB)
EventPath = Annotated[str, Path(min_length=1, max_length=100)]
Money = Annotated[float | str, Field(union_mode="left_to_right")]
Short = Annotated[str | None, Field(max_length=200)]


class EventCreate(BaseModel):
    """An event: when it runs (without an offset: the shop's time zone), its channels with what
    each cost in yuan, an optional coupon code, and how many days after its end orders count."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: Annotated[str, Field(min_length=1, max_length=100)]
    starts_at: Annotated[str, Field(max_length=40)]
    ends_at: Annotated[str, Field(max_length=40)]
    channels: Annotated[
        dict[Annotated[str, Field(max_length=CHANNEL_MAX)], Money],
        Field(max_length=o2o.MAX_CHANNELS),
    ] = {}
    coupon: Annotated[str | None, Field(max_length=CODE_MAX)] = None
    window_days: Annotated[int, Field(ge=0, le=o2o.MAX_WINDOW_DAYS)] = 30


class EventPublic(BaseModel):
    name: str
    starts_at: str
    ends_at: str
    window_days: int
    orders_until: str
    coupon: str | None = None
    channels: dict[str, float]
    created_by: str
    created_at: str


class EventListed(EventPublic):
    signups: int
    scans: int


class SignupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Annotated[str, Field(max_length=200)]
    name: Short = None
    phone: Annotated[str | None, Field(max_length=40)] = None
    customer_id: Annotated[str | None, Field(max_length=CUSTOMER_MAX)] = None
    signed_up_at: Annotated[str | None, Field(max_length=40)] = None


class SignupsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[SignupIn] = Field(min_length=1, max_length=MAX_ROWS_PER_REQUEST)


class SignupsResult(BaseModel):
    event: str
    rows: int
    added: int
    already: int
    repeated: int


class CheckinIn(BaseModel):
    """One scan of the desk: its id, and the person's phone or customer id (or both)."""

    model_config = ConfigDict(extra="forbid")
    scan_id: Annotated[str, Field(min_length=1, max_length=SCAN_MAX)]
    phone: Annotated[str | None, Field(max_length=40)] = None
    customer_id: Annotated[str | None, Field(max_length=CUSTOMER_MAX)] = None
    name: Short = None
    checked_in_at: datetime | None = None


class CheckinResult(BaseModel):
    event: str
    scan_id: str
    duplicate: bool
    signed_up: bool
    channel: str
    name: str | None = None
    checked_in_at: str


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    payment_id: Annotated[str, Field(min_length=1, max_length=PAYMENT_MAX)]
    order_id: Annotated[str, Field(min_length=1, max_length=200)]
    amount: Money
    paid_at: Annotated[str, Field(max_length=40)]
    kind: Annotated[str | None, Field(max_length=40)] = None


class PaymentsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payments: list[PaymentIn] = Field(min_length=1, max_length=MAX_ROWS_PER_REQUEST)


class PaymentsResult(BaseModel):
    rows: int
    added: int
    already: int


class FunnelRow(BaseModel):
    channel: str
    signups: int
    checkins: int
    buyers: int
    orders: int
    sales: float
    unit_price: float | None = None
    cost: float
    cost_per_signup: float | None = None
    cost_per_attendee: float | None = None
    cost_per_order: float | None = None


class FunnelTotal(FunnelRow):
    scans: int


class FunnelReport(BaseModel):
    event: EventPublic
    as_of: str
    channels: list[FunnelRow]
    total: FunnelTotal


def _ws(request: Request) -> Workspace:
    return request.app.state.ws


def _rows(items: list[BaseModel]) -> list[dict[str, Any]]:
    return [{**m.model_dump(), "_line": i} for i, m in enumerate(items, 1)]


@router.get("/o2o/events")
async def list_events(
    request: Request, limit: Limit = 100, cursor: Cursor = None
) -> Page[EventListed]:
    """Every event, the latest first, with its sign-ups and scans."""
    everything = await core(o2o.list_events, _ws(request))
    return page_of_list(request, plain(everything), cursor, limit)


@router.post("/o2o/events", status_code=201)
async def create_event(
    request: Request, body: EventCreate, who: ApiPrincipal, response: Response
) -> EventPublic:
    """Create an event; a 422 names the field that cannot work, 409 if the name is taken."""
    doc = await core(
        o2o.create_event,
        _ws(request),
        body.name,
        starts=body.starts_at,
        ends=body.ends_at,
        channels=body.channels,
        coupon=body.coupon,
        window_days=body.window_days,
        user=who.actor,
    )
    response.headers["Location"] = f"/api/o2o/events/{quote(doc['name'], safe='')}"
    return EventPublic(**doc)


@router.get("/o2o/events/{name}")
async def get_event(request: Request, name: EventPath) -> EventPublic:
    return EventPublic(**await core(o2o.get_event, _ws(request), name))


@router.post("/o2o/events/{name}/signups")
async def add_signups(request: Request, name: EventPath, body: SignupsIn) -> SignupsResult:
    """Add sign-ups (at most 5,000 a request), all or none; a person already signed up is
    left as they were."""
    doc = await core(
        o2o.add_signups, _ws(request), name, _rows(body.rows), label="rows", unit="row"
    )
    return SignupsResult(**doc)


@router.post("/o2o/events/{name}/checkins", status_code=201)
async def check_in(
    request: Request, name: EventPath, body: CheckinIn, who: ApiPrincipal, response: Response
) -> CheckinResult:
    """The check-in desk's scan: 201 the first time, 200 with ``duplicate`` for the same scan
    again, 409 when the scan id was used for another person."""
    at = body.checked_in_at
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=_ws(request).tz)
    doc = await core(
        o2o.check_in,
        _ws(request),
        name,
        scan_id=body.scan_id,
        phone=body.phone,
        customer_id=body.customer_id,
        name=body.name,
        at=at,
        who=who.actor,
    )
    if doc["duplicate"]:
        response.status_code = 200
    return CheckinResult(**doc)


@router.post("/o2o/payments")
async def add_payments(request: Request, body: PaymentsIn) -> PaymentsResult:
    """Payments of orders paid in stages (deposit, balance), at most 5,000 a request, all or
    none; a payment id already recorded with the same content is left alone."""
    rows = _rows(body.payments)
    return PaymentsResult(
        **await core(o2o.add_payments, _ws(request), rows, label="payments", unit="row")
    )


@router.get("/o2o/events/{name}/report")
async def report(
    request: Request,
    name: EventPath,
    at: Annotated[datetime | None, Query(description="As of this moment (default: now).")] = None,
) -> FunnelReport:
    """The funnel per channel and in total: sign-ups → check-ins → buyers → orders → sales,
    unit price, cost per sign-up, attendee and order."""
    ws = _ws(request)
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=ws.tz)
    return FunnelReport(**plain(await core(o2o.report, ws, name, at=at)))
