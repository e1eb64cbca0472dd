"""Coupons and points (docs/offers.md): coupon templates with their counts, define, issue to a
customer, a pool of the shop's own codes, a customer's coupons; a customer's points, an award
by hand, and an exchange of points for the exchange coupon of ``[points]``.

A template that cannot work is a 422 whose ``field`` names the part to change (``amount``,
``rate``, ``valid_days`` …), as :func:`archer.offers.coupons.define` finds it; a coupon the
template's limits or budget refuse is a 409 whose ``reason`` says which.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from archer.offers import coupons, points
from archer.store.campaigns import CUSTOMER_MAX
from archer.web.api.common import Cursor, Limit, Page, core, page_of_list, plain
from archer.web.auth import ApiPrincipal
from archer.workspace import Workspace

router = APIRouter(tags=["offers"])
MAX_POOL_CODES = 20_000  # a pool page: 20,000 codes of at most 40 characters fit the body limit
CustomerPath = Annotated[str, Path(min_length=1, max_length=CUSTOMER_MAX)]
TemplatePath = Annotated[str, Path(min_length=1, max_length=100)]
Amount = Annotated[float | str, Field(union_mode="left_to_right")]


class CouponTemplateCreate(BaseModel):
    """A coupon template: ``threshold`` (满减: spend ``threshold``, save ``amount``), ``rate``
    (折扣: pay ``rate`` of the price, at most ``max_saving``) or ``cash`` (无门槛: ``amount``
    off); valid ``valid_days`` from issue or until ``valid_until``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: Annotated[str, Field(min_length=1, max_length=100)]
    kind: Annotated[str, Field(max_length=20)]
    amount: Amount = 0.0
    threshold: Amount = 0.0
    rate: float | None = None
    max_saving: Amount | None = None
    valid_days: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    per_customer: int | None = 1
    total_limit: int | None = None
    budget: Amount | None = None
    categories: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=1000
    )
    products: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=10_000
    )
    codes: Annotated[str, Field(max_length=20)] = "generated"


class CouponTemplatePublic(BaseModel):
    name: str
    kind: str
    label: str
    value: float
    threshold: float
    amount: float
    rate: float | None = None
    valid_days: int | None = None
    valid_until: str | None = None
    per_customer: int | None = None
    total_limit: int | None = None
    budget: float | None = None
    scope: dict[str, list[str]]
    codes: str


class CouponTemplateCounts(CouponTemplatePublic):
    issued: int
    outstanding: int
    redeemed: int
    expired: int
    pool: int
    promotion_cost: float


class IssueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: Annotated[str, Field(min_length=1, max_length=CUSTOMER_MAX)]


class CouponPublic(BaseModel):
    code: str
    customer_id: str | None = None
    state: str
    value: float
    source: str
    issued_at: str | None = None
    expires_at: str | None = None
    redeemed_at: str | None = None
    order_id: str | None = None
    template: str
    label: str
    expires_on: str | None = None


class PoolRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    codes: list[Annotated[str, Field(max_length=40)]] = Field(
        min_length=1, max_length=MAX_POOL_CODES
    )


class PoolResult(BaseModel):
    codes: int
    added: int
    duplicates: int


class PointsEntryPublic(BaseModel):
    kind: str
    points: int
    source: str
    note: str | None = None
    at: str
    expires_at: str | None = None
    remaining: int


class PointsAccount(BaseModel):
    customer_id: str
    balance: int
    expiring_30d: int
    entries: list[PointsEntryPublic]


class AwardRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: Annotated[int, Field(ge=1, le=points.MAX_POINTS)]
    days: Annotated[int, Field(ge=1, le=3650)] = 365
    note: Annotated[str | None, Field(max_length=points.MAX_NOTE)] = None
    key: Annotated[
        str | None,
        Field(min_length=1, max_length=points.MAX_KEY,
              description="Makes the award happen once: the same key again awards nothing."),
    ] = None  # fmt: skip


class AwardResult(BaseModel):
    customer_id: str
    awarded: int
    balance: int
    expires_at: str


class ExchangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: Annotated[
        str | None,
        Field(min_length=1, max_length=points.MAX_KEY,
              description="Makes the exchange happen once: the same key again is a 409."),
    ] = None  # fmt: skip


class ExchangeResult(BaseModel):
    coupon: dict[str, Any]
    balance: int


def _ws(request: Request) -> Workspace:
    return request.app.state.ws


def _aware(ws: Workspace, t: datetime | None) -> datetime | None:
    """A time without a zone is the shop's local time."""
    return t.replace(tzinfo=ws.tz) if t is not None and t.tzinfo is None else t


@router.get("/coupon-templates")
async def list_coupon_templates(
    request: Request, limit: Limit = 100, cursor: Cursor = None
) -> Page[CouponTemplateCounts]:
    """Every coupon template, by name, with its coupons issued (ever handed out),
    outstanding, redeemed, expired, in the pool, and the promotion cost."""
    everything = await core(coupons.summary, _ws(request))
    return page_of_list(request, plain(everything), cursor, limit)


@router.post("/coupon-templates", status_code=201)
async def define_coupon_template(
    request: Request, body: CouponTemplateCreate, who: ApiPrincipal, response: Response
) -> CouponTemplatePublic:
    """Define a template, checked first: a 422 names the ``field`` that cannot work; 409 if
    the name is taken."""
    ws = _ws(request)
    fields = body.model_dump()
    fields["valid_from"] = _aware(ws, body.valid_from)
    fields["valid_until"] = _aware(ws, body.valid_until)
    name = fields.pop("name")
    doc = await core(coupons.define, ws, name, user=who.actor, **fields)
    response.headers["Location"] = f"/api/coupon-templates/{quote(doc['name'], safe='')}"
    return CouponTemplatePublic(**plain(doc))


@router.get("/coupon-templates/{name}")
async def get_coupon_template(request: Request, name: TemplatePath) -> CouponTemplateCounts:
    """A template with its counts."""
    return CouponTemplateCounts(**plain(await core(coupons.get, _ws(request), name)))


@router.post("/coupon-templates/{name}/issue", status_code=201)
async def issue_coupon(request: Request, name: TemplatePath, body: IssueRequest) -> CouponPublic:
    """Give one coupon to a customer by hand; its limits and budget apply (409 with the
    ``reason`` when they refuse)."""
    return CouponPublic(**plain(await core(coupons.issue_to, _ws(request), name, body.customer)))


@router.post("/coupon-templates/{name}/pool")
async def add_to_pool(request: Request, name: TemplatePath, body: PoolRequest) -> PoolResult:
    """Add the shop's own codes (at most 20,000 a request, 40 characters each) to a template
    with ``codes = "pool"``; each is handed out once, a code already known is counted as a
    duplicate."""
    return PoolResult(**await core(coupons.import_pool, _ws(request), name, body.codes))


@router.get("/customers/{customer_id}/coupons")
async def customer_coupons(
    request: Request, customer_id: CustomerPath, limit: Limit = 100, cursor: Cursor = None
) -> Page[CouponPublic]:
    """A customer's coupons, newest first (the last 1,000)."""
    everything = await core(coupons.of_customer, _ws(request), customer_id)
    return page_of_list(request, plain(everything), cursor, limit)


@router.get("/points/{customer_id}")
async def get_points(request: Request, customer_id: CustomerPath) -> PointsAccount:
    """A customer's balance, what expires within 30 days, and the last 200 entries."""
    return PointsAccount(**plain(await core(points.account, _ws(request), customer_id)))


@router.post("/points/{customer_id}/award", status_code=201)
async def award_points(
    request: Request, customer_id: CustomerPath, body: AwardRequest, response: Response
) -> AwardResult:
    """Give points by hand: a lot valid ``days`` with a ``note``. With a ``key`` seen before
    for this customer nothing is awarded (``awarded`` 0, status 200)."""
    doc = await core(points.adjust, _ws(request), customer_id, body.points, days=body.days,
                     note=body.note, key=body.key)  # fmt: skip
    if not doc["awarded"]:
        response.status_code = 200
    return AwardResult(**doc)


@router.post("/points/{customer_id}/exchange", status_code=201)
async def exchange_points(
    request: Request, customer_id: CustomerPath, body: ExchangeRequest | None = None
) -> ExchangeResult:
    """Exchange ``[points] exchange_rate`` points for one coupon of ``[points]
    exchange_template``, in one transaction: 409 when the balance is short or the template
    refuses (nothing is spent then), or when ``key`` was used before."""
    key = body.key if body else None
    doc = await core(points.exchange_at_rate, _ws(request), customer_id, key=key)
    return ExchangeResult(**plain(doc))
