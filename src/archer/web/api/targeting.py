"""Coupons targeted by uplift over REST: ``GET /api/campaigns/{name}/targeting`` answers what
``archer measure target --json`` prints — the learners' fit on held-out customers, whom the
budget goes to and what it is expected to earn beside RFM and random at the same budget, the
cut-offs and the expected uplift curve — without writing anything; ``POST`` the same with a
``save_as`` name writes ``uplift_scores`` and saves the chosen group as that audience
(:func:`archer.measurement.targeting.target`, docs/measure.md).

The inputs are bounded before any work: the budget above 0 and at most
:data:`~archer.measurement.targeting.MAX_BUDGET` yuan, a coupon template's name of at most 100
characters, the audience to choose among (a saved audience's name or a query) of at most
20,000. A value out of bounds is a 422 whose ``errors`` name the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from archer.measurement.targeting import MAX_AMONG, MAX_BUDGET
from archer.web.api.common import core
from archer.web.auth import ApiPrincipal

router = APIRouter(tags=["campaigns"])
NAME_MAX = 100

Budget = Annotated[float, Field(gt=0, le=MAX_BUDGET, description="Yuan of expected cost.")]
Coupon = Annotated[str | None, Field(min_length=1, max_length=NAME_MAX)]
Among = Annotated[str | None, Field(min_length=1, max_length=MAX_AMONG)]
Window = Annotated[str | None, Field(min_length=1, max_length=20)]


class TargetingSave(BaseModel):
    """Choose and save: the chosen group becomes the audience ``save_as``."""

    model_config = {"extra": "forbid"}
    budget: Budget
    save_as: Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
    coupon: Coupon = None
    audience: Among = None
    window: Window = None


@router.get("/campaigns/{name}/targeting")
async def targeting(
    request: Request,
    name: str,
    budget: Annotated[float, Query(gt=0, le=MAX_BUDGET, description="Yuan of expected cost.")],
    coupon: Annotated[str | None, Query(min_length=1, max_length=NAME_MAX)] = None,
    audience: Annotated[str | None, Query(min_length=1, max_length=MAX_AMONG)] = None,
    window: Annotated[str | None, Query(min_length=1, max_length=20)] = None,
) -> dict[str, Any]:
    """Learn from campaign ``name``'s treated and holdout customers who a coupon persuades and
    choose, within ``budget`` yuan of expected promotion cost, whom a coupon (``coupon``, by
    default the campaign's) should go to — among ``audience``'s members when given. Nothing is
    written: the answer is what ``archer measure target --json`` prints."""
    ws = request.app.state.ws
    return await core(_target, ws, name, budget, coupon, audience, window, None, "api")


@router.post("/campaigns/{name}/targeting", status_code=201)
async def save_targeting(
    request: Request, name: str, body: TargetingSave, who: ApiPrincipal
) -> dict[str, Any]:
    """The same choice, written: ``uplift_scores`` and the audience ``save_as`` (its query
    ``uplift_rank <= N``)."""
    ws = request.app.state.ws
    return await core(_target, ws, name, body.budget, body.coupon, body.audience, body.window,
                      body.save_as, who.actor)  # fmt: skip


def _target(ws, name, budget, coupon, among, window, save_as, user) -> dict[str, Any]:
    from archer.measurement.targeting import target

    got = target(ws, name, budget, coupon=coupon, window=window, among=among,
                 save=save_as is not None, audience=save_as, user=user)  # fmt: skip
    return got.to_dict()
