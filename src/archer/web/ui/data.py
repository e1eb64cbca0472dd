"""``/data``: upload a file for import (the CLI's rules: table, preset, mapping, quarantine),
the last imports with their rejected rows, and a build to start and watch.

An upload is imported as an ``import`` job (:mod:`archer.jobs`): one at a time, its stage and
progress readable at ``GET /ui/import/progress`` while the form waits for its answer, and by
anyone else who opens the page meanwhile. Times are shown in the shop's time zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from archer.config import Settings
from archer.errors import ArcherError, Conflict
from archer.ingest import presets, uploads
from archer.schema import LOAD_ORDER
from archer.web.api.builds import start
from archer.web.api.problems import Problem
from archer.web.auth import CsrfProtected, CurrentUser
from archer.web.ui.render import page, user_name
from archer.workspace import Workspace

router = APIRouter(include_in_schema=False)
UPLOADS = "uploads"
SHOWN_IMPORTS = 15


def last_imports(ws: Workspace) -> list[dict[str, Any]]:
    """The newest imports, each with the file name of its quarantine (if rows were rejected)."""
    with ws.warehouse() as wh:
        rows = wh.last_imports(SHOWN_IMPORTS)
    for r in rows:
        r["finished_local"] = local(ws, r.get("finished_at"))
        q = r.get("quarantine")
        r["quarantine_file"] = Path(q).name if q and Path(q).is_file() else None
        r["source_name"] = _shown_name(r.get("source") or "")
    return rows


def local(ws: Workspace, at: datetime | str | None) -> datetime | None:
    """A stored moment (UTC, naive or aware, or ISO text) in the shop's time zone."""
    if at is None:
        return None
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(ws.tz)


def _shown_name(source: str) -> str:
    """An uploaded file's own name (older uploads carried a stamp prefix: dropped)."""
    name = Path(source).name
    return re.sub(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{6}-", "", name)


def _data_page(request: Request, user: Any, status_code: int = 200, **context: Any):
    ctx = {
        "tables": LOAD_ORDER,
        "presets": {name: p.description for name, p in presets.available().items()},
        "imports": last_imports(request.app.state.ws),
        "timezone": request.app.state.ws.settings.timezone,
        "importing": import_state(request),
        "result": None,
        "error": None,
        "form": {"table": "customers", "preset": "", "mapping": ""},
        "build": build_state(request),
        **context,
    }
    return page(request, "data.html", user, section="data", status_code=status_code, **ctx)


@router.get("/data", response_class=HTMLResponse)
def data_page(request: Request, user: CurrentUser):
    return _data_page(request, user)


@router.post("/data/import", response_class=HTMLResponse)
async def import_upload(
    request: Request,
    user: CurrentUser,
    _csrf: CsrfProtected,
    file: Annotated[UploadFile, File()],
    table: Annotated[str, Form()],
    preset: Annotated[str, Form()] = "",
    mapping: Annotated[str, Form()] = "",
    ignore_unknown_columns: Annotated[bool, Form()] = False,
):
    """Import the uploaded file; rejected rows go to the quarantine, as with ``archer import``."""
    ws = request.app.state.ws
    form = {
        "table": table,
        "preset": preset,
        "mapping": mapping,
        "ignore_unknown_columns": ignore_unknown_columns,
    }
    path = None
    try:
        lines = uploads.parse_mapping(mapping)
        path = await uploads.save(ws, file.filename, uploads.chunks_of(file))

        def work(report):
            return uploads.import_upload(
                ws,
                table,
                path,
                preset or None,
                lines,
                ignore_unknown_columns=ignore_unknown_columns,
                progress=report,
            )

        params = {"file": path.name, "table": table, "preset": preset or None}
        job = await run_in_threadpool(
            request.app.state.jobs.run, "import", work, who=user_name(user), params=params
        )
        result = job["result"]
    except Conflict:
        if path is not None:
            uploads.discard(path)  # refused before the import began: another one runs
        now = import_state(request)
        message = (
            f"an import is running already ({now['file']} into {now['table']}, started by "
            f"{now['started_by']} at {now['started_at']}): wait for it to finish, then send "
            "the file again"
        )
        return await run_in_threadpool(_data_page, request, user, 409, error=message, form=form)
    except ArcherError as e:
        return await run_in_threadpool(
            _data_page, request, user, e.status if e.status < 500 else 503, error=str(e), form=form
        )
    result["source_name"] = result["source"]
    result["by"] = user_name(user)
    return await run_in_threadpool(_data_page, request, user, result=result, form=form)


@router.get("/data/quarantine/{filename}")
def quarantine_file(request: Request, user: CurrentUser, filename: str):
    """One quarantine file (the rejected rows of an import, with line numbers and reasons)."""
    settings: Settings = request.app.state.settings
    folder = settings.quarantine_dir.resolve()
    target = (folder / filename).resolve()
    if target.parent != folder or not target.is_file() or target.suffix != ".csv":
        return page(
            request,
            "missing.html",
            user,
            section="data",
            status_code=404,
            title="No such file",
            message=f"no quarantine file {filename!r}",
            back="/data",
        )
    return FileResponse(target, media_type="text/csv; charset=utf-8", filename=target.name)


def build_state(request: Request) -> dict[str, Any]:
    """The latest build of this app (started here or through ``POST /api/builds``; one runs at
    a time) as the page shows it: ``{state, stage, done, total, seconds, result, error}``."""
    everyone = request.app.state.jobs.recent("build", 1)
    if not everyone:
        return {"state": "idle", "stage": "", "done": 0, "total": 0, "seconds": None,
                "result": None, "error": None, "started_by": None}  # fmt: skip
    b = everyone[0]
    now = b["progress"].get(b["stage"] or "", {"done": 0, "total": 0})
    seconds = None
    if b["finished_at"]:
        took = datetime.fromisoformat(b["finished_at"]) - datetime.fromisoformat(b["started_at"])
        seconds = took.total_seconds()
    return {
        "state": b["state"],
        "stage": b["stage"] or "",
        "done": now["done"],
        "total": now["total"],
        "seconds": seconds,
        "result": b["result"],
        "error": b["error"],
        "started_by": b["started_by"],
    }


def import_state(request: Request) -> dict[str, Any]:
    """The latest import started on this page (``{state, file, table, stage, done, total,
    started_by, started_at, error}``; ``state`` is ``idle`` when there was none)."""
    ws: Workspace = request.app.state.ws
    latest = request.app.state.jobs.recent("import", 1)
    if not latest:
        return {"state": "idle", "file": None, "table": None, "stage": "", "done": 0,
                "total": 0, "started_by": None, "started_at": None, "error": None}  # fmt: skip
    j = latest[0]
    now = j["progress"].get(j["stage"] or "", {"done": 0, "total": 0})
    started = local(ws, j["started_at"])
    return {
        "state": j["state"],
        "file": j["params"].get("file"),
        "table": j["params"].get("table"),
        "stage": j["stage"] or "",
        "done": now["done"],
        "total": now["total"],
        "started_by": j["started_by"],
        "started_at": started.strftime("%Y-%m-%d %H:%M") if started else None,
        "error": j["error"],
    }


@router.get("/ui/import/progress")
def import_progress(request: Request, user: CurrentUser) -> JSONResponse:
    """``{state, file, table, stage, done, total, started_by, started_at, error}`` of the
    latest import started on the Data page."""
    return JSONResponse(import_state(request))


@router.post("/data/build")
def start_build(request: Request, user: CurrentUser, _csrf: CsrfProtected):
    """Start a build in the background unless one runs; the page polls its progress."""
    st = request.app.state
    try:
        start(st.ws, st.jobs, None, user_name(user))
        started = True
    except Problem:  # one is running already (maybe started through the API): follow it
        started = False
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"started": started, **build_state(request)}, status_code=202)
    return RedirectResponse("/data#build", status_code=303)


@router.get("/ui/build/progress")
def build_progress(request: Request, user: CurrentUser) -> JSONResponse:
    """``{state, stage, done, total, seconds, result, error}`` of the app's latest build."""
    return JSONResponse(build_state(request))
