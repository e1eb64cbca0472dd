"""The web app: one FastAPI application per workspace, made by :func:`create_app`.

It serves the tracking API (:mod:`archer.web.tracking`), the operator's pages and their
sign-in, the REST API and ``GET /health``. Routes reach the shop through ``app.state.ws`` (the
:class:`~archer.workspace.Workspace`) and background work through ``app.state.jobs``.

While it runs, the app owns three helpers: the inbox writer (one thread committing received
events in groups); the loader, which moves the inbox into the warehouse every ``sync_every``
seconds when there is something to move (``archer sync`` does the same once); and the
campaigns' scheduler, which runs a round (enrol, advance, send: ``archer campaign run``) every
``[campaigns] round_seconds`` while some campaign is active, as a ``campaign-round`` job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from fastapi import FastAPI
from starlette.types import ASGIApp

from archer.clock import Clock
from archer.config import Settings
from archer.errors import Conflict, Unavailable
from archer.ingest import uploads
from archer.jobs import Jobs
from archer.store.db import engine
from archer.store.inbox import InboxWriter
from archer.web import auth, inbox, sms, tracking, ui, unsubscribe
from archer.workspace import Workspace

log = logging.getLogger(__name__)
SYNC_EVERY_SECONDS = 5.0


class _App(FastAPI):
    """FastAPI with the security headers outside everything else, so that every answer has
    them: refusals, and the 500 of an unexpected error too (Starlette sends that one from its
    outermost middleware, around anything ``add_middleware`` adds). Inside them, unexpected
    errors end in :class:`_Contained`."""

    def build_middleware_stack(self) -> ASGIApp:
        from archer.web.headers import SecurityHeaders

        return SecurityHeaders(_Contained(super().build_middleware_stack()))


class _Contained:
    """Starlette answers an unexpected error with the app's handler for ``Exception`` (which
    records it: :mod:`archer.web.errorlog`) and then raises it again, for the server to log its
    traceback on stderr. Here it ends: recorded once (one line on stderr), and answered with a
    bare 500 if nothing was sent yet."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as e:
            from archer.web.errorlog import record

            error_id = record(scope["app"].state.ws.home, e, f"{scope['method']} {scope['path']}")
            if not started:
                from starlette.responses import PlainTextResponse

                text = f"Internal server error {error_id}: see logs/errors.log in the workspace"
                await PlainTextResponse(text, 500)(scope, receive, send)


def create_app(
    shop: Settings | Workspace,
    *,
    sync_every: float | None = SYNC_EVERY_SECONDS,
    clock: Clock | None = None,
    round_every: float | None | Literal["settings"] = "settings",
) -> FastAPI:
    """The app for a workspace (or the workspace of some settings); ``sync_every=None`` leaves
    loading to the CLI, ``round_every=None`` leaves campaign rounds to it (by default they run
    every ``[campaigns] round_seconds``). ``clock`` is the workspace's clock when settings are
    given (a test's manual clock; the wall clock by default)."""
    ws = shop if isinstance(shop, Workspace) else Workspace(shop, clock)
    settings = ws.settings
    jobs = Jobs(ws)
    if round_every == "settings":
        round_every = float(settings.campaigns.round_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(uploads.sweep, ws)  # what a stopped server left half-imported
        writer = InboxWriter(engine(settings))
        writer.start()
        app.state.inbox_writer = writer
        helpers = []
        if sync_every:
            helpers.append(asyncio.create_task(_load_forever(ws, jobs, sync_every)))
        if round_every:
            helpers.append(asyncio.create_task(rounds_forever(ws, jobs, round_every)))
        try:
            yield
        finally:
            for task in helpers:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.to_thread(writer.stop)
            ws.close()

    app = _App(title="Archer", lifespan=lifespan)
    app.state.settings = settings
    app.state.ws = ws
    app.state.jobs = jobs
    tracking.install(app)
    inbox.install(app)  # the shop's inbox for its site, with a source's write key
    unsubscribe.install(app)  # one-click unsubscribe: a signed token, no sign-in
    sms.install(app)  # POST /v1/sms/replies: the SMS provider's uplink (opt-outs)
    auth.install(app)  # sign-in, credentials on every request, the REST API
    ui.install(app)  # the operator's pages, their JSON endpoints and /static

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        """Answers while the server runs; no credentials needed."""
        return {"status": "ok"}

    return app


async def _load_forever(ws: Workspace, jobs: Jobs, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(_sync_round, ws, jobs)
        except (Unavailable, Conflict) as e:  # busy: a build or a CLI import; next round
            log.info("tracking inbox not loaded this round: %s", e)
        except Exception as e:  # the next round tries again; the inbox keeps everything
            from archer.web.errorlog import record

            record(ws.home, e, "loading the tracking inbox into the warehouse")


def _sync_round(ws: Workspace, jobs: Jobs) -> None:
    """One round of the loader, as a ``sync`` job when the inbox holds something."""
    from archer.tracking.loader import pending, sync

    if pending(ws):
        jobs.run("sync", lambda report: sync(ws).to_dict(), who="server")


async def rounds_forever(
    ws: Workspace,
    jobs: Jobs,
    every: float,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> None:
    """The campaigns' scheduler: a round every ``every`` seconds while a campaign is active."""
    while True:
        await sleep(every)
        try:
            await asyncio.to_thread(campaign_round, ws, jobs)
        except (Unavailable, Conflict) as e:  # a round runs elsewhere (the CLI, another server)
            log.info("no campaign round this time: %s", e)
        except Exception:  # the next round tries again; the ledger makes repeating it safe
            log.exception("a campaign round failed")


def campaign_round(ws: Workspace, jobs: Jobs) -> dict | None:
    """One tick of the scheduler: a round as a ``campaign-round`` job when some campaign is
    active (its job document), else nothing (None)."""
    from archer.campaigns.service import has_active, run_round
    from archer.web.api.campaigns import ROUND

    if not has_active(ws):
        return None
    return jobs.run(ROUND, lambda report: run_round(ws), who="scheduler")


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, sync_every=5.0) -> None:
    """Run the app of the workspace with uvicorn until stopped (Ctrl-C)."""
    import uvicorn

    app = create_app(settings, sync_every=sync_every or None)
    proxies = settings.trusted_proxies  # X-Forwarded-* only from these: the throttle keys on it
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )


def from_environment() -> FastAPI:
    """The app of the workspace in ``ARCHER_HOME``, for ``uvicorn --factory`` (e.g. workers)."""
    from archer.config import load_settings

    return create_app(load_settings())
