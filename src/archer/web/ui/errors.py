"""Errors on the pages: an audience language error placed in its query (for the pages to mark
where it is), and the core's errors (:mod:`archer.errors`) answered with a page, once for every
route."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from archer.audiences import AudienceError
from archer.errors import ArcherError
from archer.web.api.problems import RETRY_AFTER_SECONDS, problem_response, retry_headers
from archer.web.auth import signed_in
from archer.web.errorlog import record
from archer.web.ui.i18n import N_


def offset_of(query: str, line: int, column: int) -> int:
    """The character offset of a 1-based line and column in ``query``."""
    lines = query.split("\n")
    line = max(1, min(line, len(lines)))
    return min(len(query), sum(len(s) + 1 for s in lines[: line - 1]) + max(0, column - 1))


def placed(query: str, e: AudienceError) -> dict[str, Any]:
    """The error as a dict with the query cut around its place: ``before``, ``at``, ``after``
    (``at`` is at least one character wide, or empty at the very end)."""
    start = e.start if e.start is not None else offset_of(query, e.line, e.column)
    start = max(0, min(start, len(query)))
    end = e.end if e.end is not None and e.end > start else min(len(query), start + 1)
    return {
        **e.to_dict(),
        "before": query[:start],
        "at": query[start:end],
        "after": query[end:],
    }


# -- the core's errors on a page ------------------------------------------------------------------
TITLES = {
    "unavailable": N_("Busy: try again in a moment"),
    "not-built": N_("No profile yet"),
    "not-found": N_("Not found"),
    "conflict": N_("Not done"),
    "invalid": N_("Invalid input"),
}
# the other titles pages give (shown through the catalogue by error.html and missing.html)
OTHER_TITLES = (N_("Something went wrong"), N_("Too deeply nested"), N_("Not deleted"),
                N_("No such customer"), N_("No such file"))  # fmt: skip
NOT_PAGES = ("/api/", "/v1/", "/ui/", "/static/")  # JSON endpoints: problem details there


def wants_page(request: Request) -> bool:
    """True for the operator's pages (an HTML answer), false for the API, tracking and the
    pages' JSON endpoints, and for a script that asks for JSON."""
    path = request.url.path
    if path.startswith(NOT_PAGES) or path in ("/api", "/health", "/openapi.json"):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept or "application/json" not in accept


def error_page(
    request: Request,
    status: int,
    kind: str,
    message: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    error_id: str | None = None,
) -> Response:
    """The layout with what went wrong and what to do (the signed-in operator's navigation if
    the request got as far as knowing them)."""
    from archer.web.ui.render import page

    response = page(
        request,
        "error.html",
        signed_in(request),
        status_code=status,
        kind=kind,
        title=title or TITLES.get(kind, "Something went wrong"),
        message=message,
        here=request.url.path + ("?" + request.url.query if request.url.query else ""),
        back=request.headers.get("referer") if _same_site(request) else "/",
        retry_after=RETRY_AFTER_SECONDS,
        error_id=error_id,
    )
    response.headers.update(headers or {})
    return response


def _same_site(request: Request) -> bool:
    ref = request.headers.get("referer", "")
    return ref.startswith(f"{request.url.scheme}://{request.url.netloc}/")


def install(app: FastAPI) -> None:
    """Answer the core's errors on a page with a page (the API keeps its problem details):
    503 and ``Retry-After`` while another process writes the warehouse, 409 before the first
    build, 404, 409 and 422 as :mod:`archer.errors` says; an expression too deep to evaluate is
    a 422. Installed once, for every route."""
    api_handler = app.exception_handlers[ArcherError]

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ArcherError)
        if not wants_page(request):
            return await api_handler(request, exc)
        headers = retry_headers(exc)
        return error_page(request, exc.status, exc.kind, str(exc), title=None, headers=headers)

    async def on_too_deep(request: Request, exc: Exception) -> Response:
        message = "the request nests too deeply to evaluate: write it more simply"
        if not wants_page(request):
            return problem_response(request.url.path, 422, message, kind="too-deep")
        return error_page(request, 422, "too-deep", message, title="Too deeply nested")

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        where = f"{request.method} {request.url.path}"
        error_id = record(request.app.state.ws.home, exc, where)
        message = (
            f"something went wrong that should not have (error {error_id}); the details are "
            "in the workspace's logs/errors.log"
        )
        if not wants_page(request):
            return problem_response(request.url.path, 500, message, error_id=error_id)
        return error_page(request, 500, "internal", message, error_id=error_id)

    app.add_exception_handler(ArcherError, on_error)
    app.add_exception_handler(RecursionError, on_too_deep)
    app.add_exception_handler(Exception, on_unexpected)  # Starlette's outermost: every 500
