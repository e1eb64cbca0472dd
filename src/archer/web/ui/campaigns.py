"""``/campaigns``: the campaigns with their status and counts, new ones from a template or a
pasted definition (its problems shown at their places), and a page per campaign — its
definition, start / pause / resume / end, counts per arm and step, the ledger page by page, a
message previewed for a real customer, and a new version. Chinese by default (:mod:`.i18n`)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from archer.campaigns import service as svc
from archer.campaigns.definition import CampaignError
from archer.errors import ArcherError, Invalid
from archer.web.auth import CsrfProtected, CurrentUser
from archer.web.ui import i18n
from archer.web.ui.render import page, urlpart, user_name

router = APIRouter(include_in_schema=False)
LEDGER_PAGE = 50
MAX_SETS = 50
ACTIONS = {"start": "active", "pause": "paused", "resume": "active", "end": "ended"}
TEXT_MAX = 1_000_000


def _render(request: Request, template: str, user: Any, status_code: int = 200, **ctx: Any):
    lang = i18n.lang_of(request)
    r = page(request, template, user, section="campaigns", status_code=status_code,
             lang=lang, t=i18n.translator(lang), **ctx)  # fmt: skip
    return i18n.remember(request, r)


def _failure(e: ArcherError) -> dict[str, Any]:
    """What the pages show of a refusal: its message and, for a definition, each problem."""
    problems = e.problems if isinstance(e, CampaignError) else []
    return {"message": str(e) if not problems else None, "problems": problems}


# -- the list and creating -----------------------------------------------------------------------
def _list_page(request: Request, user: Any, status_code: int = 200, **ctx: Any):
    ws = request.app.state.ws
    form = {"source": "template", "template": "", "name": "", "holdout": "", "sets": "",
            "definition": "", **ctx.pop("form", {})}  # fmt: skip
    return _render(
        request, "campaigns.html", user, status_code,
        campaigns=svc.list_campaigns(ws), templates_=svc.templates_list(), form=form,
        error=ctx.pop("error", None), **ctx,
    )  # fmt: skip


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, user: CurrentUser):
    """Every campaign with its status and counts, and the forms that make new ones."""
    return _list_page(request, user)


def _sets(holdout: str, sets: str) -> list[str]:
    lines = [x.strip() for x in sets.splitlines() if x.strip() and not x.strip().startswith("#")]
    if len(lines) > MAX_SETS:
        raise Invalid(f"at most {MAX_SETS} overrides, one KEY=VALUE a line")
    if holdout.strip():
        try:
            pct = float(holdout)
        except ValueError:
            raise Invalid(f"holdout: expected a percentage from 0 to 90, got {holdout!r}") from None
        if not 0 <= pct <= 90:
            raise Invalid(f"holdout: expected a percentage from 0 to 90, got {holdout!r}")
        lines.insert(0, f"holdout={pct / 100:g}")
    return lines


@router.post("/campaigns", response_class=HTMLResponse)
def create_campaign(
    request: Request,
    user: CurrentUser,
    _csrf: CsrfProtected,
    source: Annotated[str, Form()] = "template",
    template: Annotated[str, Form(max_length=100)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    holdout: Annotated[str, Form(max_length=20)] = "",
    sets: Annotated[str, Form(max_length=100_000)] = "",
    definition: Annotated[str, Form(max_length=TEXT_MAX)] = "",
    start: Annotated[str, Form(max_length=10)] = "",
):
    """Create from a template (name, holdout, overrides) or from a pasted TOML/JSON definition;
    a refusal comes back on the list page with each problem at its place."""
    ws = request.app.state.ws
    keep = {"source": source, "template": template, "name": name, "holdout": holdout,
            "sets": sets, "definition": definition}  # fmt: skip
    try:
        if source == "definition":
            raw = svc.parse_text(definition)
            if name.strip():
                raw["name"] = name.strip()
            used = None
        else:
            if not template:
                raise Invalid("pick a template")
            if not name.strip():
                raise Invalid("give the campaign a name")
            base = svc.template(template, svc.default_lang(ws))
            raw = svc.apply_settings({**base, "name": name.strip()}, _sets(holdout, sets))
            used = template
        doc = svc.create(ws, raw, user=user_name(user), template_name=used, start=bool(start))
    except ArcherError as e:
        return _list_page(request, user, e.status, form=keep, error=_failure(e))
    return RedirectResponse(f"/campaigns/{urlpart(doc['name'])}", status_code=303)


# -- one campaign --------------------------------------------------------------------------------
def _message_steps(definition: dict[str, Any]) -> list[str]:
    return [s["id"] for s in definition.get("steps", []) if s.get("type") == "message"]


def _step_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Counts per arm and message step, in the definition's order of steps."""
    order = {sid: i for i, sid in enumerate(_message_steps(doc["definition"]))}
    out = []
    for arm, steps in sorted(doc["ledger"]["messages"].items()):
        for step, st in sorted(steps.items(), key=lambda kv: order.get(kv[0], len(order))):
            out.append({
                "arm": arm, "step": step,
                "planned": st.get("planned", 0) + st.get("claimed", 0),
                "sent": st.get("sent", 0), "skipped": st.get("skipped", 0),
                "failed": st.get("failed", 0),
            })  # fmt: skip
    return out


def _campaign_page(
    request: Request,
    user: Any,
    name: str,
    *,
    page_no: int = 1,
    customer: str = "",
    step: str = "",
    status_code: int = 200,
    error: dict | None = None,
    draft: str | None = None,
):
    ws = request.app.state.ws
    try:
        doc = svc.get(ws, name)
    except ArcherError as e:
        return _missing(request, user, str(e), e.status)
    offset = (page_no - 1) * LEDGER_PAGE
    runs = svc.ledger(ws, name, limit=LEDGER_PAGE + 1, offset=offset)["runs"]
    preview, preview_error = None, None
    if customer:
        try:
            preview = svc.preview(ws, name, customer, step or None)
        except ArcherError as e:
            preview_error = str(e)
    definition = json.dumps(doc["definition"], ensure_ascii=False, indent=2)
    return _render(
        request, "campaign.html", user, status_code,
        c=doc, definition=definition, steps=_step_rows(doc),
        message_steps=_message_steps(doc["definition"]), runs=runs[:LEDGER_PAGE],
        page_no=page_no, more=len(runs) > LEDGER_PAGE, customer=customer, step=step,
        preview=preview, preview_error=preview_error, error=error,
        draft=definition if draft is None else draft,
    )  # fmt: skip


@router.get("/campaigns/{name}", response_class=HTMLResponse)
def campaign_page(
    request: Request,
    user: CurrentUser,
    name: str,
    page_no: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    customer: Annotated[str, Query(max_length=200)] = "",
    step: Annotated[str, Query(max_length=64)] = "",
):
    """A campaign: definition, status buttons, counts, ledger, preview, new version."""
    return _campaign_page(request, user, name, page_no=page_no, customer=customer.strip(),
                          step=step)  # fmt: skip


@router.post("/campaigns/{name}/versions", response_class=HTMLResponse)
def new_version(
    request: Request,
    user: CurrentUser,
    _csrf: CsrfProtected,
    name: str,
    definition: Annotated[str, Form(max_length=TEXT_MAX)] = "",
):
    """Store the edited definition as a new version; a refusal shows its problems."""
    ws = request.app.state.ws
    try:
        raw = svc.parse_text(definition)
        raw.setdefault("name", name)
        svc.update(ws, name, raw, user=user_name(user))
    except ArcherError as e:
        return _campaign_page(request, user, name, status_code=e.status, error=_failure(e),
                              draft=definition)  # fmt: skip
    return RedirectResponse(f"/campaigns/{urlpart(name)}", status_code=303)


@router.post("/campaigns/{name}/{action}", response_class=HTMLResponse)
def change_status(
    request: Request, user: CurrentUser, _csrf: CsrfProtected, name: str, action: str
):
    """Start, pause, resume or end; a refusal (e.g. its channel is not set up) is shown."""
    if action not in ACTIONS:
        return _missing(request, user, f"no action {action!r} (start, pause, resume, end)", 404)
    try:
        svc.set_status(request.app.state.ws, name, ACTIONS[action])
    except ArcherError as e:
        return _campaign_page(request, user, name, status_code=e.status, error=_failure(e))
    return RedirectResponse(f"/campaigns/{urlpart(name)}", status_code=303)


def _missing(request: Request, user: Any, message: str, status: int):
    t = i18n.translator(i18n.lang_of(request))
    return page(request, "missing.html", user, section="campaigns", status_code=status,
                title=t("Not found") if status == 404 else t("Not changed"), message=message,
                back="/campaigns")  # fmt: skip
