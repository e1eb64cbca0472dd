"""``POST /v1/sms/replies``: the SMS provider's uplink callback — replies that opt a number out.

The provider is given the address with the shared secret of ``[sms] reply_secret``
(``https://shop.example.com/v1/sms/replies?secret=…``; or the header ``X-Archer-Secret``).
The body is JSON in any of these shapes, one reply or a list of at most ``MAX_REPLIES``:

* Archer's own: ``{"phone": "13800138000", "content": "TD", "at": "2026-09-15T10:00:00Z"}``;
* Aliyun's uplink push: ``{"phone_number": …, "content": …, "send_time": "2026-09-15 18:00:00"}``
  (the time in the shop's zone);
* Tencent's: ``{"mobile": …, "nationcode": "86", "text": …, "time": 1789000000}``.

Each reply is judged by :func:`archer.messaging.replies.sms_reply`. The answer carries both
providers' success fields (``code: 0`` and ``result: 0``), so neither pushes it again, and
what was done per reply.
"""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from archer.errors import ArcherError
from archer.messaging.replies import sms_reply

router = APIRouter(tags=["sms"])
MAX_BODY = 64 * 1024
MAX_REPLIES = 100


def install(app: FastAPI) -> None:
    app.include_router(router)


def _refuse(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    doc = {"code": status, "result": status, "msg": detail, "errmsg": detail, "detail": detail}
    return JSONResponse(doc, status, headers)


def _at(item: dict[str, Any], tz, now: datetime) -> datetime:
    """The moment of the reply as the provider gave it; ``now`` when it gave none."""
    try:
        if isinstance(item.get("at"), str):
            t = datetime.fromisoformat(item["at"])
            return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
        if isinstance(item.get("time"), int) and 0 < item["time"] < 2**33:
            return datetime.fromtimestamp(item["time"], UTC)
        if isinstance(item.get("send_time"), str):
            t = datetime.strptime(item["send_time"][:19], "%Y-%m-%d %H:%M:%S")
            return t.replace(tzinfo=tz).astimezone(UTC)
    except ValueError:
        pass
    return now


def _reply(item: Any, index: int) -> tuple[str, str]:
    if not isinstance(item, dict):
        raise ValueError(f"reply [{index}]: expected an object")
    phone = item.get("phone") or item.get("phone_number") or item.get("mobile")
    content = item.get("content") if "content" in item else item.get("text")
    if not isinstance(phone, str) or not isinstance(content, str):
        raise ValueError(
            f"reply [{index}]: expected phone (or phone_number, mobile) and content (or text) "
            "as text"
        )
    code = item.get("nationcode")
    if isinstance(code, str | int) and str(code).isdigit() and not phone.startswith("+"):
        phone = f"+{code}{phone}"
    return phone, content


@router.post("/v1/sms/replies", include_in_schema=True)
async def sms_replies(request: Request) -> JSONResponse:
    """Replies to the shop's SMS pushed by the provider; "R", "T", "TD", "退订" opt out."""
    ws = request.app.state.ws
    secret = ws.settings.sms.reply_secret.get_secret_value()
    if not secret:
        return _refuse(404, "SMS replies are not set up: set [sms] reply_secret")
    given = request.query_params.get("secret") or request.headers.get("x-archer-secret") or ""
    if not hmac.compare_digest(given.encode(), secret.encode()):
        return _refuse(401, "the secret is missing or wrong")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return _refuse(413, f"a body of at most {MAX_BODY:,} bytes")
    raw = b""
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                return _refuse(413, f"a body of at most {MAX_BODY:,} bytes")
    except ClientDisconnect:
        return _refuse(400, "the body ended early")
    try:
        doc = json.loads(raw)
    except ValueError as e:
        return _refuse(400, f"the body is not JSON: {e}")
    items = doc if isinstance(doc, list) else [doc]
    if len(items) > MAX_REPLIES:
        return _refuse(400, f"at most {MAX_REPLIES} replies at once, got {len(items)}")
    now = ws.now()
    try:
        work = [(*_reply(x, i), _at(x, ws.tz, now)) for i, x in enumerate(items)]
    except ValueError as e:
        return _refuse(400, str(e))

    def judge() -> list[dict[str, Any]]:
        return [sms_reply(ws, phone, content, at) for phone, content, at in work]

    try:
        done = await run_in_threadpool(judge)
    except ArcherError as e:
        headers = {"Retry-After": "5"} if e.status == 503 else None
        return _refuse(e.status, str(e), headers)
    return JSONResponse({"code": 0, "result": 0, "msg": "OK", "errmsg": "OK", "replies": done})
