"""``/audiences``: write a query and watch it count, save it, see its members, export them and
how the audience grew over the builds."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from starlette.background import BackgroundTask

from archer.audiences import AudienceError, NotBuilt, count, snapshots
from archer.audiences import service as svc
from archer.audiences.browse import LIST_FIELDS, PAGE_SIZE
from archer.audiences.evaluate import reference
from archer.audiences.grammar import normalise
from archer.errors import ArcherError
from archer.web.auth import CsrfProtected, CurrentUser
from archer.web.ui import charts, i18n
from archer.web.ui.errors import placed
from archer.web.ui.i18n import N_
from archer.web.ui.overview import translated
from archer.web.ui.render import page, urlpart, user_name

router = APIRouter(include_in_schema=False)
EXAMPLES = (
    'lifecycle in ("lapsing", "lost") and net_spent >= 300',
    'stage = "loyal" and email_reachable',
    'bought(category = "tea", within = 90d) and not bought(within = 14d)',
    "has_open_cart and not has_unpaid_order",
)

# What the money fields mean (archer.audiences.catalog.FIELD_DOCS, the same texts, marked here for
# the catalogue): the field reference shows each beside its name, in the page's language.
# fmt: off
FIELD_DOCS = {
    "net_spent": N_("spent after refunds: paid orders' amounts less the money refunded on them"),
    "gross_spent": N_("spent before refunds: paid orders' amounts, money refunded on them not "
                      "taken off (see net_spent)"),
    "total_spent": N_("the same as gross_spent (its former name): spent before refunds"),
    "total_refunded": N_("money refunded on paid orders (at most each order's amount)"),
    "largest_order": N_("the largest paid order's amount, before refunds"),
}
# fmt: on


def _listing(ws) -> list[dict[str, Any]]:
    out = []
    for a in svc.list_audiences(ws):
        try:
            n = svc.count_of(ws, a["name"])["count"]
            problem = None
        except (AudienceError, NotBuilt, KeyError) as e:
            n, problem = None, str(e)
        out.append({**a, "count": n, "problem": problem})
    return out


def _editor(
    request: Request,
    user: Any,
    *,
    name: str = "",
    query: str = "",
    description: str = "",
    error: dict | None = None,
    status_code: int = 200,
):
    ws = request.app.state.ws
    try:
        ref = reference(ws)
    except (NotBuilt, ArcherError):  # no profile yet, or the warehouse busy: the editor still works
        ref = None
    return page(
        request,
        "audiences.html",
        user,
        section="audiences",
        status_code=status_code,
        audiences=_listing(ws),
        name=name,
        query=query,
        description=description,
        error=error,
        examples=EXAMPLES,
        reference=ref,
    )


@router.get("/audiences", response_class=HTMLResponse)
def audiences_page(request: Request, user: CurrentUser, q: str = ""):
    """The saved audiences and the editor (pre-filled with ``q``)."""
    return _editor(request, user, query=q)


@router.post("/ui/audiences/count")
def count_json(
    request: Request,
    user: CurrentUser,
    _csrf: CsrfProtected,
    query: Annotated[str, Body(embed=True, max_length=20_000)],
) -> JSONResponse:
    """The editor's live count: ``{count, customers, clauses}``, or 422 ``{error}`` with the
    place of the mistake in the query."""
    ws = request.app.state.ws
    try:
        doc = count(ws, query, resolve=svc.resolver(ws))
    except AudienceError as e:
        return JSONResponse({"error": placed(query, e)}, status_code=422)
    except NotBuilt as e:
        return JSONResponse({"error": not_built(e)}, status_code=409)
    return JSONResponse(doc)


@router.get("/ui/audiences/reference")
def reference_json(request: Request, user: CurrentUser) -> JSONResponse:
    """The editor's autocomplete: the fields with their types and known values, and the
    behaviour predicates with their arguments (409 before the first build)."""
    try:
        return JSONResponse(reference(request.app.state.ws))
    except NotBuilt as e:
        return JSONResponse({"error": not_built(e)}, status_code=409)


@router.post("/audiences", response_class=HTMLResponse)
def save_audience(
    request: Request,
    user: CurrentUser,
    _csrf: CsrfProtected,
    name: Annotated[str, Form()] = "",
    query: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
):
    """Save (or update) an audience; a mistake comes back in the editor, at its place."""
    ws = request.app.state.ws
    query = normalise(query)[0] if len(query) <= 20_000 else query  # saved as it is read
    keep = {"name": name, "query": query, "description": description}
    try:
        svc.save(ws, name, query, user=user_name(user), description=description or None)
    except AudienceError as e:
        return _editor(request, user, **keep, error=placed(query, e), status_code=422)
    except NotBuilt as e:
        return _editor(request, user, **keep, error=not_built(e), status_code=409)
    except (ValueError, LookupError) as e:
        return _editor(request, user, **keep, error={"message": str(e)}, status_code=422)
    return RedirectResponse(f"/audiences/{urlpart(name)}", status_code=303)


@router.get("/audiences/{name:path}/export.{fmt}")
def export_audience(request: Request, user: CurrentUser, name: str, fmt: str):
    """The members as a download: ``.csv`` (safe for spreadsheets) or ``.parquet``."""
    if fmt not in ("csv", "parquet"):
        return _missing(request, user, f"exports are .csv or .parquet, not .{fmt}", 404)
    ws = request.app.state.ws
    tmp = Path(tempfile.mkdtemp(prefix="export-", dir=_tmp(ws)))
    out = tmp / f"audience.{fmt}"
    try:
        svc.export(ws, name, out, fields=LIST_FIELDS)
    except svc.UnknownAudience as e:
        out.parent.rmdir()
        return _missing(request, user, str(e), 404)
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/vnd.apache.parquet"
    return FileResponse(
        out,
        media_type=media,
        filename=f"{name}.{fmt}",
        background=BackgroundTask(_remove, tmp),
    )


@router.post("/audiences/{name:path}/delete")
def delete_audience(request: Request, user: CurrentUser, _csrf: CsrfProtected, name: str):
    """Delete the audience (refused while another one uses it)."""
    try:
        svc.delete(request.app.state.ws, name)
    except (svc.UnknownAudience, svc.AudienceInUse) as e:
        return _missing(request, user, str(e), 409, title="Not deleted")
    return RedirectResponse("/audiences", status_code=303)


@router.get("/audiences/{name:path}", response_class=HTMLResponse)
def audience_page(
    request: Request,
    user: CurrentUser,
    name: str,
    page_no: Annotated[int, Query(alias="page", ge=1)] = 1,
):
    """One audience: definition, count per clause, history over the builds, members."""
    ws = request.app.state.ws
    try:
        a = svc.get(ws, name)
    except svc.UnknownAudience as e:
        return _missing(request, user, str(e), 404)
    counted, members, problem, pages = None, [], None, 1
    try:
        counted = svc.count_of(ws, name)
        pages = max(1, -(-counted["count"] // PAGE_SIZE))
        page_no = min(page_no, pages)
        df = svc.members_of(ws, name, fields=LIST_FIELDS, limit=page_no * PAGE_SIZE)
        members = df.iloc[(page_no - 1) * PAGE_SIZE :].to_dict(orient="records")
    except (AudienceError, NotBuilt, KeyError) as e:
        problem = str(e)
    history = snapshots.history(ws, name)
    return page(
        request,
        "audience.html",
        user,
        section="audiences",
        a=a,
        counted=counted,
        members=members,
        problem=problem,
        page_no=page_no,
        pages=pages,
        history=history,
        history_spec=translated(charts.history(history), i18n.translator(i18n.lang_of(request))),
    )


def not_built(e: NotBuilt) -> dict[str, Any]:
    """The editor's error for a shop without a profile: the message and where to build."""
    return {"message": str(e), "not_built": True, "link": "/data"}


def _missing(request: Request, user: Any, message: str, status: int, title: str = "Not found"):
    return page(
        request,
        "missing.html",
        user,
        section="audiences",
        status_code=status,
        title=title,
        message=message,
        back="/audiences",
    )


def _tmp(ws) -> Path:
    d = ws.home / "tmp"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _remove(folder: Path) -> None:
    for f in folder.iterdir():
        f.unlink(missing_ok=True)
    folder.rmdir()
