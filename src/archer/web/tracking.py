"""The tracking API: ``POST /v1/{track,identify,page,screen,alias,group,batch}`` (Segment spec).

A route reads the body (at most 500 KB, gzip allowed), finds the source by its write key
(HTTP Basic user, or ``writeKey`` in the body), checks and normalises the events
(:mod:`archer.tracking.spec`), hands them to the inbox writer and answers ``{"success": true}``
only once they are committed. Errors are RFC 9457 problem details; they also carry the
``code``/``message`` pair the Segment SDKs read, so a client logs a reason, not a parse error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import zlib

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from archer.store import sources
from archer.store.db import session
from archer.store.inbox import Batch, InboxWriter
from archer.tracking.spec import MAX_BATCH_BYTES, MAX_EVENT_BYTES, SpecError, normalise, parse_body

router = APIRouter(tags=["tracking"])
SUCCESS = b'{"success":true}'
log = logging.getLogger(__name__)


class Problem(Exception):
    """An answer in RFC 9457 form: status, a title, and a detail a person can act on."""

    def __init__(
        self, status: int, title: str, detail: str, *, field: str | None = None, code: str = ""
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.field = status, title, detail, field
        self.code = code or title.lower().replace(" ", "_")

    def response(self) -> JSONResponse:
        doc = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,  # what the Segment SDKs log
            "message": self.detail,
        }
        if self.field:
            doc["field"] = self.field
        headers = (
            {"WWW-Authenticate": 'Basic realm="archer tracking"'} if self.status == 401 else None
        )
        return JSONResponse(doc, self.status, headers, media_type="application/problem+json")


async def _problem(_request: Request, exc: Problem) -> JSONResponse:
    return exc.response()


def install(app: FastAPI) -> None:
    """Add the tracking routes and their error answers to ``app``."""
    app.include_router(router)
    app.add_exception_handler(Problem, _problem)


def _bad(detail: str, field: str | None = None) -> Problem:
    return Problem(400, "Bad Request", detail, field=field, code="invalid_request")


async def _read(request: Request, limit: int) -> bytes:
    """The body, unzipped, refused as soon as it passes ``limit`` bytes.

    A client that goes away mid-body is one line in the log (no traceback: it is the network,
    not a fault), and a gzip body must be whole, up to its trailer (CRC and length).
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _bad(_too_large(int(declared), limit))
    chunks: list[bytes] = []
    n = 0
    try:
        async for chunk in request.stream():
            n += len(chunk)
            if n > limit:
                raise _bad(_too_large(n, limit))
            chunks.append(chunk)
    except ClientDisconnect:
        client = request.client.host if request.client else "?"
        log.warning(
            "%s %s: the client (%s) disconnected mid-body (%d bytes read); nothing stored",
            request.method,
            request.url.path,
            client,
            n,
        )
        raise Problem(
            400, "Bad Request", "the body ended early: the client disconnected", code="incomplete"
        ) from None
    raw = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise _bad(f"Content-Encoding {encoding!r} is not supported: send gzip or plain JSON")
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(raw, limit + 1)
    except zlib.error as e:
        raise _bad(f"the gzip body cannot be read: {e}") from None
    if len(out) > limit:
        raise _bad(_too_large(len(out), limit, "unzipped"))
    if not d.eof:  # cut short: without its trailer, nothing checks the CRC and length
        raise _bad("the gzip body is cut short: it ends before the end of its gzip stream")
    return out


def _too_large(n: int, limit: int, what: str = "") -> str:
    per = "per event" if limit == MAX_EVENT_BYTES else "per batch"
    kb = limit // 1024
    return (
        f"the {what + ' ' if what else ''}body is {n:,} bytes or more; "
        f"at most {limit:,} ({kb} KB) {per}"
    )


def _basic_user(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if not auth:
        return None
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "basic":
        raise Problem(401, "Unauthorized", "send the write key as the HTTP Basic user name")
    try:
        user = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Problem(401, "Unauthorized", "the Authorization header is not valid Basic") from None
    return user.partition(":")[0]


def _authenticate(request: Request, key: str | None) -> sources.Caller:
    if not key:
        raise Problem(
            401,
            "Unauthorized",
            "no write key: send it as the HTTP Basic user name or as writeKey in the body",
        )
    settings = request.app.state.settings
    with session(settings) as s:
        caller = sources.authenticate(s, key)
    if caller is None:
        raise Problem(401, "Unauthorized", "the write key is unknown or revoked")
    return caller


async def _handle(request: Request, kind: str) -> Response:
    received = request.app.state.ws.now()
    header_key = _basic_user(request)
    caller = None
    if header_key:
        caller = await run_in_threadpool(_authenticate, request, header_key)
    raw = await _read(request, MAX_BATCH_BYTES if kind == "batch" else MAX_EVENT_BYTES)
    try:
        doc = parse_body(raw)
        if caller is None:
            key = doc.get("writeKey")
            caller = await run_in_threadpool(
                _authenticate, request, key if isinstance(key, str) else None
            )
        events = normalise(kind, doc, received)
    except SpecError as e:
        raise _bad(str(e), e.field) from None
    if events:
        writer: InboxWriter = request.app.state.inbox_writer
        batch = Batch(caller.id, received, [(e.message_id, e.body) for e in events])
        try:
            await asyncio.wrap_future(writer.submit(batch))
        except Exception as e:  # the SDKs retry a 5xx: nothing is lost
            raise Problem(
                503, "Service Unavailable", f"the event could not be stored, send it again ({e})"
            ) from None
    return Response(SUCCESS, media_type="application/json")


def _route(kind: str):
    async def endpoint(request: Request) -> Response:
        return await _handle(request, kind)

    endpoint.__name__ = f"tracking_{kind}"
    endpoint.__doc__ = (
        "Send a batch of events (Segment spec)."
        if kind == "batch"
        else f"Send one {kind} call (Segment spec)."
    )
    return endpoint


for _kind in ("track", "identify", "page", "screen", "alias", "group", "batch"):
    router.add_api_route(f"/v1/{_kind}", _route(_kind), methods=["POST"])
