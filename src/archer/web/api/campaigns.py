"""Campaigns: templates, list, create (from a definition or a template), read with the ledger's
counts, new versions, start / pause / resume / end, the ledger page by page, a message
previewed for a real customer, and a round run now as a background job.

A definition that cannot be used is a 422 whose ``problems`` list each mistake with its place
(``steps[1] "remind".subject, line 2``), as :func:`archer.campaigns.service.check` finds them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from archer.campaigns import service as svc
from archer.errors import Conflict, NotFound
from archer.jobs import Jobs
from archer.web.api.common import Cursor, Limit, Page, core, offset_of, page, page_of_list, plain
from archer.web.api.problems import Problem
from archer.web.auth import ApiPrincipal
from archer.workspace import Workspace

router = APIRouter(tags=["campaigns"])
ROUND = "campaign-round"  # the job kind of a round, here and in the server's scheduler
LEDGER_PAGE = 500
ROUNDS_KEPT = 200
MAX_SETS = 50
Name = Annotated[str, Field(min_length=1, max_length=100)]
DEFINITION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "A campaign definition (docs/campaigns.md) or, to start from "
                    'a template, {"template": "unpaid-reminders", "name": "…", "set": '
                    '["holdout=0.2"]}',
                }
            }
        },
    }
}


class CampaignFromTemplate(BaseModel):
    """Create from a template of the library, with ``KEY=VALUE`` overrides."""

    model_config = {"extra": "forbid"}
    template: Name
    name: Name
    set: list[Annotated[str, Field(max_length=20_000)]] = Field(
        default_factory=list, max_length=MAX_SETS
    )


class CampaignSummary(BaseModel):
    name: str
    kind: str
    status: str
    version: int
    template: str | None = None
    created_by: str
    created_at: str
    updated_at: str
    started_at: str | None = None
    enrolled: int
    holdout: int
    planned: int
    sent: int
    held_back: int
    skipped: int
    skipped_by_reason: dict[str, int] = {}
    failed: int


class LedgerCounts(BaseModel):
    enrolled: int
    runs: dict[str, dict[str, int]]
    messages: dict[str, dict[str, dict[str, int]]]
    sent: int
    skipped: dict[str, int]


class CampaignPublic(CampaignSummary):
    definition: dict[str, Any]
    versions: list[int]
    ledger: LedgerCounts
    notes: list[str] = []


class TemplatePublic(BaseModel):
    name: str
    kind: str
    description: str | None = None
    trigger: str | None = None
    channels: list[str]


class Preview(BaseModel):
    campaign: str
    step: str
    channel: str
    customer_id: str
    to: str | None = None
    subject: str | None = None
    text: str | None = None
    html: str | None = None


class RoundPublic(BaseModel):
    id: str
    state: str
    started_by: str
    started_at: str
    finished_at: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


def _ws(request: Request) -> Workspace:
    return request.app.state.ws


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object of the request (its size is bounded by the middleware)."""
    raw = await request.body()
    try:
        doc = json.loads(raw)
    except RecursionError:
        raise Problem(
            422, "the body nests too deeply to be a campaign definition", kind="too-deep"
        ) from None
    except ValueError as e:
        raise Problem(400, f"the body is not JSON: {e}", kind="invalid-json") from None
    if not isinstance(doc, dict):
        raise Problem(422, "expected a JSON object (a campaign definition)", kind="invalid")
    return doc


def _from_template(ws: Workspace, doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    try:
        t = CampaignFromTemplate.model_validate(doc)
    except ValidationError as e:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
            for err in e.errors()
        ]
        said = "; ".join(f"{x['field']}: {x['message']}" for x in errors[:5])
        raise Problem(
            422, f"a creation from a template takes template, name and set — {said}",
            kind="invalid-request", title="Invalid request", errors=errors,
        ) from None  # fmt: skip
    base = svc.template(t.template, svc.default_lang(ws))
    raw = svc.apply_settings({**base, "name": t.name}, t.set)
    return raw, t.template


def _create(ws: Workspace, doc: dict[str, Any], user: str, start: bool) -> dict[str, Any]:
    template = None
    if "template" in doc:
        doc, template = _from_template(ws, doc)
    return svc.create(ws, doc, user=user, template_name=template, start=start)


@router.get("/campaign-templates")
async def list_templates(request: Request) -> Page[TemplatePublic]:
    """The ready-made campaigns to start from (``archer campaign templates``)."""
    everything = await core(svc.templates_list)
    return page_of_list(request, everything, None, max(1, len(everything)))


@router.get("/campaign-templates/{name}")
async def get_template(name: str) -> dict[str, Any]:
    """A template's definition, as a starting point to edit."""
    return plain(await core(svc.template, name))


@router.get("/campaigns")
async def list_campaigns(
    request: Request, limit: Limit = 100, cursor: Cursor = None
) -> Page[CampaignSummary]:
    """Every campaign with its status and counts, by name."""
    everything = await core(svc.list_campaigns, _ws(request))
    return page_of_list(request, everything, cursor, limit)


@router.post("/campaigns", status_code=201, openapi_extra=DEFINITION_BODY)
async def create_campaign(
    request: Request, who: ApiPrincipal, response: Response, start: bool = False
) -> CampaignPublic:
    """Create a campaign (a draft, or active with ``?start=true``) from a definition or from a
    template; the definition is checked whole first (422 with ``problems``); 409 if the name
    is taken."""
    doc = await _body(request)
    out = await core(_create, _ws(request), doc, who.actor, start)
    response.headers["Location"] = f"/api/campaigns/{quote(out['name'], safe='')}"
    return CampaignPublic(**out)


@router.post("/campaigns/run", status_code=202)
async def run_round(request: Request, who: ApiPrincipal, response: Response) -> RoundPublic:
    """Run one round now (enrol, advance, send) as a background job; 409 while one runs."""
    st = request.app.state
    job = await run_in_threadpool(start_round, st.ws, st.jobs, who.actor)
    response.headers["Location"] = f"/api/campaign-rounds/{job['id']}"
    return RoundPublic(**job)


@router.get("/campaign-rounds")
async def list_rounds(
    request: Request, limit: Limit = 20, cursor: Cursor = None
) -> Page[RoundPublic]:
    """The last rounds (the scheduler's and those started here), newest first."""
    jobs = await run_in_threadpool(request.app.state.jobs.recent, ROUND, ROUNDS_KEPT)
    return page_of_list(request, jobs, cursor, limit)


@router.get("/campaign-rounds/{round_id}")
async def get_round(request: Request, round_id: str) -> RoundPublic:
    """A round's state and, once done, what it enrolled, planned, sent and skipped."""
    return RoundPublic(**await run_in_threadpool(_round, request.app.state.jobs, round_id))


@router.get("/campaigns/{name}")
async def get_campaign(request: Request, name: str) -> CampaignPublic:
    """A campaign: its current definition, its versions and its ledger's counts per arm, step
    and state."""
    return CampaignPublic(**await core(svc.get, _ws(request), name))


@router.put("/campaigns/{name}", openapi_extra=DEFINITION_BODY)
async def update_campaign(request: Request, name: str, who: ApiPrincipal) -> CampaignPublic:
    """Store a new version of the definition: new subjects enter it, enrolled ones finish on
    the version they entered."""
    doc = await _body(request)
    doc.setdefault("name", name)
    return CampaignPublic(**await core(svc.update, _ws(request), name, doc, user=who.actor))


ACTIONS = {"start": "active", "pause": "paused", "resume": "active", "end": "ended"}


def _status_route(action: str):
    async def endpoint(request: Request, name: str, who: ApiPrincipal) -> CampaignPublic:
        return CampaignPublic(**await core(svc.set_status, _ws(request), name, ACTIONS[action]))

    endpoint.__name__ = f"{action}_campaign"
    endpoint.__doc__ = {
        "start": "Start a draft: the next round enrols its subjects.",
        "pause": "Pause: nothing is enrolled, advanced or sent until it is resumed.",
        "resume": "Resume a paused campaign.",
        "end": "End a campaign for good (its ledger stays).",
    }[action]
    return endpoint


for _action in ACTIONS:
    router.add_api_route(f"/campaigns/{{name}}/{_action}", _status_route(_action), methods=["POST"])


@router.get("/campaigns/{name}/ledger")
async def campaign_ledger(
    request: Request,
    name: str,
    customer: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=LEDGER_PAGE)] = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Who entered with which key, what was sent when, what was skipped and why — newest runs
    first, ``limit`` runs a page (at most 500)."""
    offset = offset_of(cursor)
    doc = await core(svc.ledger, _ws(request), name, limit=limit + 1, offset=offset,
                     customer=customer or None)  # fmt: skip
    runs = doc["runs"]
    return {"campaign": doc["campaign"],
            **page(request, runs[:limit], offset, limit, len(runs) > limit)}  # fmt: skip


@router.get("/campaigns/{name}/results")
async def campaign_results(
    request: Request,
    name: str,
    window: Annotated[str | None, Query(max_length=20)] = None,
    as_of: Annotated[str | None, Query(max_length=10)] = None,
    min_lift: Annotated[float, Query(ge=0.01, le=10)] = 0.2,
) -> dict[str, Any]:
    """What the campaign earned over its holdout, intention-to-treat over ``window`` from
    each run's entry: per arm buyers, refund users, sales net of refunds, gross profit, margin
    and promotion cost; the uplift per run with 95% intervals, the minimum detectable effect
    and a verdict; incremental gross profit and ROI; per step, channel and variant, and the
    variants compared with the first (no winner before ``min_lift`` can be seen;
    docs/measure.md)."""
    return await core(_results, _ws(request), name, window, as_of, min_lift)


def _results(
    ws: Workspace, name: str, window: str | None, as_of: str | None, min_lift: float = 0.2
) -> dict[str, Any]:
    from archer.measurement.results import as_of_day, results

    return results(ws, name, window=window, as_of=as_of_day(as_of), min_lift=min_lift).to_dict()


@router.get("/campaigns/{name}/preview")
async def preview_message(
    request: Request,
    name: str,
    customer: Annotated[str, Query(min_length=1, max_length=200)],
    step: Annotated[str | None, Query(max_length=64)] = None,
) -> Preview:
    """A message of the campaign rendered for a real customer; nothing is stored or sent."""
    return Preview(**await core(svc.preview, _ws(request), name, customer, step))


# -- rounds as jobs ------------------------------------------------------------------------------
def start_round(ws: Workspace, jobs: Jobs, who: str) -> dict[str, Any]:
    """Start a round as a background job; a 409 problem while one runs (here or elsewhere)."""
    try:
        return jobs.start(ROUND, lambda report: svc.run_round(ws), who=who)
    except Conflict as e:
        job = e.extra.get("job")
        raise Problem(
            409,
            f"{e}" + (f": follow it at /api/campaign-rounds/{job}" if job else ""),
            kind="round-running",
            round=job,
        ) from None


def _round(jobs: Jobs, round_id: str) -> dict[str, Any]:
    try:
        job = jobs.get(round_id)
    except NotFound:
        job = None
    if job is None or job["kind"] != ROUND:
        raise Problem(404, f"no round {round_id!r}: see GET /api/campaign-rounds", kind="not-found")
    return job
