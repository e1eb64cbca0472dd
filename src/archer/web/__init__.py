"""The web app: one FastAPI application per workspace, made by :func:`create_app`.

For now it serves the tracking API (:mod:`archer.web.tracking`) and ``GET /health``. The
operator's pages, their sign-in and the REST API are to come: each adds its router in
``create_app`` as the tracking API does, and shares the settings in ``app.state.settings``.

While it runs, the app owns two helpers: the inbox writer (one thread committing received
events in groups) and the loader, which moves the inbox into the warehouse every
``sync_every`` seconds when there is something to move (``archer sync`` does the same once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import ASGIApp

from archer.config import Settings
from archer.store.db import engine
from archer.store.inbox import InboxWriter
from archer.web import auth, tracking, ui

log = logging.getLogger(__name__)
SYNC_EVERY_SECONDS = 5.0


class _App(FastAPI):
    """FastAPI with the security headers outside everything else, so that every answer has
    them: refusals, and the 500 of an unexpected error too (Starlette sends that one from its
    outermost middleware, around anything ``add_middleware`` adds)."""

    def build_middleware_stack(self) -> ASGIApp:
        from archer.web.headers import SecurityHeaders

        return SecurityHeaders(super().build_middleware_stack())


def create_app(settings: Settings, *, sync_every: float | None = SYNC_EVERY_SECONDS) -> FastAPI:
    """The app for the workspace of ``settings``; ``sync_every=None`` leaves loading to the CLI."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        writer = InboxWriter(engine(settings))
        writer.start()
        app.state.inbox_writer = writer
        loader = asyncio.create_task(_load_forever(settings, sync_every)) if sync_every else None
        try:
            yield
        finally:
            if loader is not None:
                loader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loader
            await asyncio.to_thread(writer.stop)

    app = _App(title="Archer", lifespan=lifespan)
    app.state.settings = settings
    tracking.install(app)
    auth.install(app)  # sign-in, credentials on every request, the REST API
    ui.install(app)  # the operator's pages, their JSON endpoints and /static

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        """Answers while the server runs; no credentials needed."""
        return {"status": "ok"}

    return app


async def _load_forever(settings: Settings, every: float) -> None:
    from archer.ingest.tracking import sync_if_pending

    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(sync_if_pending, settings)
        except Exception:  # the next round tries again; the inbox keeps everything
            log.exception("loading the tracking inbox into the warehouse failed")


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
