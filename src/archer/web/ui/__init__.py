"""The operator's pages: server-rendered HTML (Jinja2) over the core, with charts drawn in the
browser by the vendored Apache ECharts (no internet needed).

``/`` overview · ``/customers`` search and profiles · ``/audiences`` the live editor, saved
audiences, members, exports and history · ``/campaigns`` campaigns, their ledger and previews ·
``/offers`` coupon templates and points · ``/data`` imports, rejected rows and builds. Two small
JSON endpoints serve the pages' scripts: ``POST /ui/audiences/count`` (counts as you type) and
``GET /ui/build/progress`` (the app's builds, shared with ``POST /api/builds``: one at a time).
Every route needs a signed-in operator (:mod:`archer.web.auth`); every unsafe one its CSRF token.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from archer.web.ui import (
    audiences,
    campaign_results,
    campaigns,
    customers,
    data,
    errors,
    hotwords,
    o2o,
    offers,
    overview,
    themes,
)
from archer.web.ui.render import STATIC_DIR


def install(app: FastAPI) -> None:
    """Add the pages, their JSON endpoints and ``/static`` to ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (overview, customers, audiences, campaigns, campaign_results, offers, o2o,
                   hotwords, themes, data):  # fmt: skip
        app.include_router(module.router)
    from archer.web.ui import targeting  # coupons targeted by uplift

    app.include_router(targeting.router)
    errors.install(app)  # the core's errors as pages (after the API's handlers: it defers)
