"""One-click unsubscribe (RFC 8058): ``POST /u/{token}`` opts the link's customer out of
marketing on its channel in one request — no sign-in, no cookie, no CSRF token, from any
origin (a mail provider posts ``List-Unsubscribe=One-Click`` from its own servers) — and
``GET /u/{token}`` shows a small page whose button makes that POST.

The token is the authority (signed with the workspace's key, :mod:`archer.signing`); the
routes sit outside the sign-in middleware and are throttled per address instead. A token that
was not signed here answers a 400 page, never an error trace.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from archer.errors import Invalid
from archer.messaging.consent import unsubscribe
from archer.signing import read_unsubscribe_token
from archer.web.ui.render import templates

router = APIRouter(include_in_schema=False)
PER_MINUTE = 30  # requests per address per minute (a person clicks once or twice)
KEYS = 10_000  # addresses remembered at once

TEXT = {
    "zh": {
        "title": "退订",
        "ask": "不再接收来自 {shop} 的{channel}营销消息？",
        "button": "确认退订",
        "done": "您已退订 {shop} 的{channel}营销消息。",
        "done_note": "订单等服务通知仍会照常发送。",
        "invalid": "这个退订链接无效或已损坏。请使用邮件中的完整链接。",
        "busy": "请求过于频繁，请稍后再试。",
        "other": "English",
    },
    "en": {
        "title": "Unsubscribe",
        "ask": "Stop receiving marketing {channel} from {shop}?",
        "button": "Unsubscribe",
        "done": "You will no longer receive marketing {channel} from {shop}.",
        "done_note": "Service messages, such as those about your orders, still come.",
        "invalid": "This unsubscribe link is not valid: use the whole link from the message.",
        "busy": "Too many requests. Please try again in a moment.",
        "other": "中文",
    },
}
CHANNEL_WORDS = {
    "zh": {"email": "邮件", "sms": "短信", "wecom": "企业微信", "inbox": "站内信"},
    "en": {"email": "e-mail", "sms": "text messages", "wecom": "WeCom messages",
           "inbox": "inbox messages"},
}  # fmt: skip


class RateLimit:
    """At most ``per_window`` requests per key in each ``window`` seconds, in memory.
    ``clock`` gives monotonic seconds (tests pass their own)."""

    def __init__(
        self,
        per_window: int = PER_MINUTE,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        keys: int = KEYS,
    ) -> None:
        self.per_window, self.window, self.clock, self.keys = per_window, window, clock, keys
        self._seen: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str) -> float:
        """0 and the request is counted, or the seconds until ``key`` may ask again."""
        now = self.clock()
        with self._lock:
            start, n = self._seen.pop(key, (now, 0))
            if now - start >= self.window:
                start, n = now, 0
            self._seen[key] = (start, n + 1 if n < self.per_window else n)
            while len(self._seen) > self.keys:  # a flood of addresses: forget the oldest
                del self._seen[next(iter(self._seen))]
            if n >= self.per_window:
                return start + self.window - now
            return 0.0


def _limit(request: Request) -> RateLimit:
    got = getattr(request.app.state, "unsubscribe_limit", None)
    if got is None:
        got = request.app.state.unsubscribe_limit = RateLimit()
    return got


def _lang(request: Request) -> str:
    return "en" if request.query_params.get("lang") == "en" else "zh"


def _page(request: Request, state: str, status: int, channel: str = "", **extra: Any):
    lang = _lang(request)
    words = TEXT[lang]
    shop = request.app.state.settings.shop_name
    channel_word = CHANNEL_WORDS[lang].get(channel, channel)
    say = {k: v.format(shop=shop, channel=channel_word) for k, v in words.items()}
    return templates.TemplateResponse(
        request,
        "unsubscribe.html",
        {"state": state, "say": say, "lang": lang, "path": request.url.path, **extra},
        status_code=status,
    )


def _throttled(request: Request) -> HTMLResponse | None:
    address = request.client.host if request.client else "?"
    wait = _limit(request).admit(address)
    if wait <= 0:
        return None
    r = _page(request, "busy", 429)
    r.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return r


@router.get("/u/{token}", response_class=HTMLResponse)
async def confirm_page(request: Request, token: str):
    """The confirm page: what the link does, and a button that does it."""
    busy = _throttled(request)
    if busy is not None:
        return busy
    try:
        _, channel = read_unsubscribe_token(request.app.state.settings, token)
    except Invalid:
        return _page(request, "invalid", 400)
    return _page(request, "ask", 200, channel)


@router.post("/u/{token}", response_class=HTMLResponse)
async def one_click(request: Request, token: str):
    """Unsubscribe now: consent for marketing on the link's channel becomes "denied", with
    where the request came from as its evidence."""
    busy = _throttled(request)
    if busy is not None:
        return busy
    ua = request.headers.get("user-agent", "")[:300]
    address = request.client.host if request.client else "unknown"
    evidence = f"one-click unsubscribe (RFC 8058) from {address}; user agent: {ua or 'none'}"
    try:
        doc = await run_in_threadpool(unsubscribe, request.app.state.ws, token, evidence=evidence)
    except Invalid:
        return _page(request, "invalid", 400)
    return _page(request, "done", 200, doc["channel"])


def install(app: FastAPI) -> None:
    app.include_router(router)
