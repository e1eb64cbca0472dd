"""``GET /api/me``: who the request acts for, and the session's CSRF token for the pages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from archer.web.auth import ApiPrincipal, csrf_token

router = APIRouter(tags=["account"])


class PrincipalPublic(BaseModel):
    kind: str
    name: str
    csrf: str | None = None


@router.get("/me")
async def me(request: Request, who: ApiPrincipal) -> PrincipalPublic:
    """The signed-in operator (with the CSRF token to send on unsafe calls) or the API key."""
    return PrincipalPublic(
        kind=who.kind, name=who.name, csrf=csrf_token(request) if who.kind == "user" else None
    )
