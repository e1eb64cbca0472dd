"""Security headers on every response the app gives (pages, API, tracking, errors).

* ``Content-Security-Policy``: scripts, styles, images, fonts and fetches from the app itself
  only; no inline script at all (the pages keep theirs in ``/static``), no plugins, no
  ``<base>``, forms post to the app only, and no page may frame the app's
  (``frame-ancestors 'none'``, with ``X-Frame-Options: DENY`` for older browsers). The one inline
  style allowed is the API reference's (``/docs``), by its hash.
* ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin`` (the app's own
  addresses never leave it in a ``Referer``; ``Origin`` still comes, which the CSRF check reads).
* ``Cache-Control: no-store`` on everything but ``/static``: pages and API answers carry
  customers' names and phones, which must not stay in a browser's or proxy's cache.
* ``Strict-Transport-Security`` when the request came over https (directly, or through a proxy
  named in the ``trusted_proxies`` setting), never over plain http.
"""

from __future__ import annotations

import base64
import hashlib

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archer.web.api.reference import STYLE as _REFERENCE_STYLE

HSTS_SECONDS = 365 * 24 * 3600


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        f"style-src 'self' {_sha256(_REFERENCE_STYLE)}",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
ALWAYS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
CACHED_PREFIX = "/static/"  # the app's own scripts and styles: no customer data


class SecurityHeaders:
    """Adds the headers above to every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = not scope["path"].startswith(CACHED_PREFIX)
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    h.setdefault(name, value)
                if no_store:
                    h.setdefault("cache-control", "no-store")
                if https:
                    h.setdefault("strict-transport-security", f"max-age={HSTS_SECONDS}")
            await send(message)

        await self.app(scope, receive, send_with_headers)
