"""RFC 9457 problem details: every error of the REST API and of sign-in, as
``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and ``instance``.

``detail`` says what was wrong and what to do about it. Extra members carry what a client can
act on: ``line``, ``column`` and ``suggestions`` for an audience that does not parse,
``errors`` for a body that does not validate.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from archer.errors import ArcherError

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://archer.invalid/problems/"  # names, not links: see docs/api.md
TOO_LARGE = "archer_body_too_large"  # scope state: the body passed this many bytes


class Problem(Exception):
    """An error answer: raise it from a route or a dependency."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.kind = kind or self.title.lower().replace(" ", "-")
        self.headers = headers
        self.extra = extra

    def document(self, instance: str) -> dict[str, Any]:
        return {
            "type": TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            **self.extra,
        }

    def response(self, instance: str) -> JSONResponse:
        return JSONResponse(
            self.document(instance), self.status, self.headers, media_type=MEDIA_TYPE
        )


RETRY_AFTER_SECONDS = 5  # what a 503 asks a client to wait before trying again


def retry_headers(e: ArcherError) -> dict[str, str] | None:
    """``Retry-After`` for an error that passes (a busy warehouse), else None."""
    return {"Retry-After": str(RETRY_AFTER_SECONDS)} if e.status == 503 else None


def from_error(e: ArcherError) -> Problem:
    """The one mapping of the core's error family to problem details."""
    extra = {k: v for k, v in e.extra.items() if isinstance(v, str | int | float | list | None)}
    return Problem(e.status, str(e), kind=e.kind, title=e.title, headers=retry_headers(e), **extra)


async def _on_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ArcherError)
    return from_error(exc).response(request.url.path)


def problem_response(request_path: str, status: int, detail: str, **kw: Any) -> JSONResponse:
    return Problem(status, detail, **kw).response(request_path)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return exc.response(request.url.path)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        errors.append({"field": where, "message": str(e.get("msg", "invalid"))})
    said = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return Problem(
        422,
        f"the request does not have the expected form — {said}",
        kind="invalid-request",
        title="Invalid request",
        errors=errors[:50],
    ).response(request.url.path)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    path = request.url.path
    limit = request.scope.get("state", {}).get(TOO_LARGE)
    if limit:
        detail = f"the request body is larger than {limit:,} bytes, the most this endpoint takes"
        return Problem(413, detail, kind="too-large").response(path)
    if not (path.startswith("/api/") or path == "/api"):
        from fastapi.exception_handlers import http_exception_handler

        return await http_exception_handler(request, exc)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no API endpoint at {path}: see /docs for the list"
    elif exc.status_code == 405:
        allowed = (getattr(exc, "headers", None) or {}).get("Allow", "")
        detail = f"{request.method} is not allowed on {path}; it takes {allowed or 'see /docs'}"
    return Problem(exc.status_code, detail, headers=getattr(exc, "headers", None)).response(path)


def install(app: FastAPI) -> None:
    """Answer Problem, validation errors and HTTP errors under /api as problem details."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(ArcherError, _on_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
