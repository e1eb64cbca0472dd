"""The REST API under ``/api/``: profiles, audiences, the shop's views, imports, builds,
campaigns, consent, and coupons and points.

Each module is one resource family with its routes and its Pydantic models (``AudienceCreate``,
``AudienceUpdate``, ``AudiencePublic`` …); the routes parse, call one core function and answer.
Every route needs an API key or a signed-in session (:data:`archer.web.auth.ApiPrincipal`);
errors are problem details (:mod:`.problems`); lists are paginated (:mod:`.pages`).
"""

from __future__ import annotations

from fastapi import Depends, FastAPI


def install(app: FastAPI) -> None:
    """Add the API's routers to ``app`` (sign-in and problem handlers come from auth.install)."""
    from archer.web.api import (
        account,
        audiences,
        builds,
        campaigns,
        consent,
        customers,
        hotwords,
        imports,
        o2o,
        offers,
        reference,
        targeting,
        views,
    )
    from archer.web.auth import require_api

    modules = (account, customers, audiences, views, imports, builds, campaigns, consent, offers)
    modules += (o2o, hotwords, targeting)
    for module in modules:
        app.include_router(module.router, prefix="/api", dependencies=[Depends(require_api)])
    reference.install(app)
