"""Builds: ``POST /api/builds`` starts ``archer build`` as a background job (:mod:`archer.jobs`)
and answers its id at once; ``GET /api/builds/{id}`` tells its state and the progress of each
stage, as the build reports it. One build runs at a time per workspace, whether started here,
on the Data page or by ``archer build``; builds are kept in the store.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from archer.errors import Conflict, NotFound
from archer.jobs import Jobs
from archer.pipeline import build
from archer.web.api.common import Cursor, Limit, Page, page_of_list
from archer.web.api.problems import Problem
from archer.web.auth import ApiPrincipal
from archer.workspace import Workspace

router = APIRouter(tags=["builds"])
KEEP = 200  # builds listed


class BuildCreate(BaseModel):
    as_of: date | None = None


class StageProgress(BaseModel):
    done: int
    total: int


class BuildPublic(BaseModel):
    id: str
    state: Literal["running", "done", "failed", "interrupted"]
    as_of: str | None
    started_by: str
    started_at: str
    finished_at: str | None = None
    stage: str | None = None
    progress: dict[str, StageProgress] = {}
    result: dict[str, Any] | None = None
    error: str | None = None


def _public(job: dict[str, Any]) -> dict[str, Any]:
    as_of = (job["result"] or {}).get("as_of") or job["params"].get("as_of")
    return {
        "id": job["id"],
        "state": job["state"],
        "as_of": as_of,
        "started_by": job["started_by"],
        "started_at": job["started_at"],
        "finished_at": job["finished_at"],
        "stage": job["stage"],
        "progress": job["progress"],
        "result": job["result"],
        "error": job["error"],
    }


def start(ws: Workspace, jobs: Jobs, as_of: date | None, who: str) -> dict[str, Any]:
    """Start a build as a background job (one at a time per workspace): its document."""
    try:
        job = jobs.start(
            "build",
            lambda report: build(ws, as_of, report).to_dict(),
            who=who,
            params={"as_of": as_of.isoformat() if as_of else None},
        )
    except Conflict as e:
        raise Problem(
            409,
            f"{e}: follow it at /api/builds/{e.extra.get('job')}",
            kind="build-running",
            build=e.extra.get("job"),
        ) from None
    return _public(job)


def _get(jobs: Jobs, build_id: str) -> dict[str, Any]:
    try:
        job = jobs.get(build_id)
    except NotFound:
        job = None
    if job is None or job["kind"] != "build":
        raise Problem(404, f"no build {build_id!r}: see GET /api/builds", kind="not-found")
    return _public(job)


@router.post("/builds", status_code=202)
async def start_build(
    request: Request, response: Response, who: ApiPrincipal, body: BuildCreate | None = None
) -> BuildPublic:
    """Start a build of the profiles, the shop views and the audience snapshots."""
    st = request.app.state
    b = start(st.ws, st.jobs, body.as_of if body else None, who.actor)
    response.headers["Location"] = f"/api/builds/{b['id']}"
    return BuildPublic(**b)


@router.get("/builds")
async def list_builds(
    request: Request, limit: Limit = 20, cursor: Cursor = None
) -> Page[BuildPublic]:
    """The builds, newest first (kept in the store: a restarted server still lists them)."""
    jobs = await run_in_threadpool(request.app.state.jobs.recent, "build", KEEP)
    return page_of_list(request, [_public(j) for j in jobs], cursor, limit)


@router.get("/builds/{build_id}")
async def get_build(request: Request, build_id: str) -> BuildPublic:
    """A build's state (running, done, failed), its current stage and the progress of each."""
    return BuildPublic(**await run_in_threadpool(_get, request.app.state.jobs, build_id))
