"""``/customers``: find customers with the audience language; one customer's whole story."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from archer.audiences import AudienceError, NotBuilt, browse
from archer.customers import describe
from archer.customers import timeline as data
from archer.offers import coupons, points
from archer.web.auth import CurrentUser
from archer.web.ui import i18n
from archer.web.ui.errors import placed
from archer.web.ui.render import page

router = APIRouter(include_in_schema=False)
COUPONS_SHOWN = 20


@router.get("/customers", response_class=HTMLResponse)
def customer_list(
    request: Request,
    user: CurrentUser,
    q: str = "",
    page_no: Annotated[int, Query(alias="page", ge=1)] = 1,
):
    """A page of the customers the query selects (everyone without one)."""
    ws = request.app.state.ws
    result, error, not_built = None, None, None
    try:
        result = browse.search(ws, q, page_no)
    except AudienceError as e:
        error = placed(q, e)
    except NotBuilt as e:
        not_built = str(e)
    status = 422 if error else 200
    return page(
        request,
        "customers.html",
        user,
        section="customers",
        status_code=status,
        q=q,
        result=result,
        error=error,
        not_built=not_built,
    )


@router.get("/customers/{customer_id:path}", response_class=HTMLResponse)
def customer_page(request: Request, user: CurrentUser, customer_id: str):
    """State, stage, RFM, preferences, scores, timeline, the audiences with their why, and
    the customer's coupons and points."""
    ws = request.app.state.ws
    try:
        if "\x00" in customer_id:  # no id has one, and the warehouse's SQL cannot carry it
            raise describe.UnknownCustomer(f"no customer {customer_id!r} in the profile")
        profile = describe.load_profile(ws, customer_id)
    except (describe.UnknownCustomer, describe.NotBuilt) as e:
        return page(
            request,
            "missing.html",
            user,
            section="customers",
            status_code=404,
            title="No such customer",
            message=str(e),
            back="/customers",
        )
    lang = i18n.lang_of(request)
    return page(
        request,
        "customer.html",
        user,
        section="customers",
        t=i18n.translator(lang),
        coupons=coupons.of_customer(ws, customer_id, limit=COUPONS_SHOWN + 1),
        points=points.balance(ws, customer_id),
        p=profile,
        words=describe.sentences(profile, ws.settings.currency),
        contact=data.contact(ws, customer_id),
        timeline=data.timeline(ws, customer_id),
        audiences=browse.audiences_of(ws, customer_id),
    )
