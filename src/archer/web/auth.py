"""Sign-in, sessions, CSRF and API keys: who is asking, for every request but a few.

* ``GET /login`` shows the sign-in form, ``POST /login`` (username, password, csrf) signs in,
  ``POST /logout`` signs out. The session is a signed cookie (HttpOnly, SameSite=Lax, Secure over
  https) that expires :data:`SESSION_SECONDS` after sign-in; its key is made once per workspace
  and kept in ``<home>/secret.key``. The cookie carries the user's stamp, checked against the
  store on every request: a new password or a sign-out changes it, which ends the sessions.
* Sign-in tries are throttled (:class:`Throttle`) per (name, address) and per address, counted
  before the password is checked; argon2 runs outside any store transaction.
* Every session carries a CSRF token (:func:`csrf_token` for templates). An unsafe request made
  with the session (a form post, a ``fetch`` from the pages) must send it back as the form field
  ``csrf`` or the header ``X-CSRF-Token`` (:data:`CsrfProtected`). An unsafe request whose
  ``Origin``/``Referer`` names another site is refused whatever it carries.
* The REST API also takes API keys (``Authorization: Bearer ak_…``, ``archer apikey create``).
* Only ``/login``, ``/health``, the tracking API and the shop's inbox ``/v1/*`` (write keys),
  one-click unsubscribe ``/u/*`` (a signed token) and ``/static/*`` answer without
  credentials; anything else is turned away by the middleware before any route runs — a page
  with a redirect to the sign-in, the API and ``/docs`` with 401 problem details.

Routes declare who they serve with :data:`CurrentUser` (pages) or :data:`ApiPrincipal` (API).
"""

from __future__ import annotations

import functools
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archer.config import Settings
from archer.signing import secret_key
from archer.store import apikeys, users
from archer.store.apikeys import KeyOwner
from archer.store.db import session as db_session
from archer.store.users import User
from archer.web.api.problems import TOO_LARGE, Problem, problem_response
from archer.workspace import Workspace

SESSION_COOKIE = "archer_session"
SESSION_SECONDS = 7 * 24 * 3600  # a week after sign-in, then sign in again
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_EXACT = frozenset({"/login", "/logout", "/health", "/favicon.ico"})
PUBLIC_PREFIXES = ("/v1/", "/static/", "/u/")
UNGUARDED_PREFIXES = ("/v1/", "/u/")  # past the middleware: no session, no CSRF, no cross-site
MAX_FORM_BYTES = 64 * 1024  # sign-in and other forms
MAX_JSON_BYTES = 1024 * 1024  # API bodies: queries and names are short
MAX_UPLOAD_BYTES = 1024**3  # POST /api/imports: one file of the shop's export
UPLOAD_PATHS = ("/api/imports", "/data/import")
TEMPLATE = Path(__file__).parent / "templates" / "login.html"
_STATE = "archer_auth"  # key in the ASGI scope's state


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: a signed-in operator or an API key."""

    kind: str  # "user" or "key"
    name: str
    user: User | None = None
    key: KeyOwner | None = None

    @property
    def actor(self) -> str:
        """How it is recorded in ``created_by``/``updated_by``: ``alice`` or ``key:etl``."""
        return self.name if self.kind == "user" else f"key:{self.name}"


class LoginRequired(Exception):
    """A page asked for without a session: answered with a redirect to the sign-in."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


# -- the workspace's secret -----------------------------------------------------------------------
_serializers: dict[Path, URLSafeTimedSerializer] = {}


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    """The workspace's cookie signer, read from its key file once per process."""
    where = settings.home.resolve()
    got = _serializers.get(where)
    if got is None:
        got = _serializers[where] = URLSafeTimedSerializer(
            secret_key(settings), salt="archer-session"
        )
    return got


# -- per-request state --------------------------------------------------------------------------
class _Auth:
    """The session read from the cookie and the principal found for this request."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.dirty = False
        self.principal: Principal | None = None

    def set(self, data: dict[str, Any]) -> None:
        self.data = data
        self.dirty = True


def _auth(request: Request) -> _Auth:
    state = request.scope.setdefault("state", {})
    got = state.get(_STATE)
    if got is None:  # the middleware is not installed (a test app): an empty session
        got = state[_STATE] = _Auth({})
    return got


def csrf_token(request: Request) -> str:
    """The session's CSRF token, for a hidden ``csrf`` field or a ``<meta>`` in a template."""
    a = _auth(request)
    token = a.data.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        a.set({**a.data, "csrf": token})
    return token


def _csrf_matches(request: Request, given: str | None) -> bool:
    expected = _auth(request).data.get("csrf")
    return bool(expected and given and secrets.compare_digest(str(given), str(expected)))


async def _given_csrf(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def check_csrf(request: Request) -> None:
    """Refuse an unsafe request made with the session unless it sends the session's token."""
    if request.method in SAFE_METHODS:
        return
    if not _csrf_matches(request, await _given_csrf(request)):
        raise Problem(
            403,
            "the CSRF token is missing or does not match this session: reload the page and "
            "send the form again (API clients: send the header X-CSRF-Token or use an API key)",
            kind="csrf",
            title="CSRF check failed",
        )


CsrfProtected = Annotated[None, Depends(check_csrf)]


# -- dependencies ---------------------------------------------------------------------------------
def _next_of(request: Request) -> str:
    path = request.url.path
    return path + ("?" + request.url.query if request.url.query else "")


async def require_user(request: Request) -> User:
    """The signed-in operator; without one, a page answers with a redirect to the sign-in."""
    p = _auth(request).principal
    if p is None or p.user is None:
        p = await _from_session(request.app.state.ws, _auth(request).data)
    if p is None or p.user is None:
        raise LoginRequired(_next_of(request))
    return p.user


_bearer = HTTPBearer(auto_error=False, description="An API key made by `archer apikey create`")


async def require_api(
    request: Request, _doc: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """An API key, or a signed-in session (which must send its CSRF token on unsafe methods)."""
    a = _auth(request)
    p = a.principal or await _resolve(request.app.state.ws, Headers(scope=request.scope), a)
    if p is None:
        raise _unauthorized()
    if p.kind == "user" and request.method not in SAFE_METHODS:
        await check_csrf(request)
    return p


def signed_in(request: Request) -> User | None:
    """The operator this request was found to come from so far, if any (for an error page)."""
    p = _auth(request).principal
    return p.user if p is not None else None


CurrentUser = Annotated[User, Depends(require_user)]
ApiPrincipal = Annotated[Principal, Depends(require_api)]


def _unauthorized(detail: str | None = None) -> Problem:
    return Problem(
        401,
        detail
        or "sign in at /login, or send an API key as 'Authorization: Bearer <key>' "
        "(`archer apikey create NAME` makes one)",
        kind="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="archer"'},
    )


# -- finding the principal ------------------------------------------------------------------------
async def _resolve(ws: Workspace, headers: Headers, a: _Auth) -> Principal | None:
    """The principal of a request: its bearer key if it sends one, else its session."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer":
            raise _unauthorized("send the API key as 'Authorization: Bearer <key>'")
        p = await anyio.to_thread.run_sync(_key_principal, ws, key.strip())
        if p is None:
            raise _unauthorized("the API key is unknown or revoked")
        return p
    return await _from_session(ws, a.data)


def _key_principal(ws: Workspace, key: str) -> Principal | None:
    with ws.session() as s:
        found = apikeys.authenticate(s, key)
    if found is None:
        return None
    owner, last = found
    now = ws.now()
    if last is None or now - last > apikeys.TOUCH_EVERY:
        with ws.session(write=True) as s:
            apikeys.touch(s, owner.id, now=now)
    return Principal("key", owner.name, key=owner)


async def _from_session(ws: Workspace, data: dict[str, Any]) -> Principal | None:
    uid, at = data.get("uid"), data.get("at")
    if not isinstance(uid, int) or not isinstance(at, int | float):
        return None
    if ws.now().timestamp() - at > SESSION_SECONDS:
        return None

    def read() -> User | None:
        with ws.session() as s:
            return users.get(s, uid)

    user = await anyio.to_thread.run_sync(read)
    if user is None or not secrets.compare_digest(str(data.get("stamp", "")), user.stamp):
        return None  # the account is gone, or its password changed since the sign-in
    return Principal("user", user.username, user=user)


# -- the middleware -------------------------------------------------------------------------------
def is_public(path: str) -> bool:
    return path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES)


def _wants_problem(path: str, headers: Headers) -> bool:
    """401 problem details for the API and non-browsers; a browser gets the sign-in page."""
    if path.startswith(("/api/", "/openapi.json")) or path == "/api":
        return True
    return "text/html" not in headers.get("accept", "")


def same_origin(headers: Headers) -> bool:
    """False when the browser says the request comes from another site."""
    if headers.get("sec-fetch-site", "") in ("cross-site", "same-site"):
        return False
    host = headers.get("host", "").lower()
    for name in ("origin", "referer"):
        value = headers.get(name)
        if value is None:
            continue
        if value == "null":
            return False
        return urlsplit(value).netloc.lower() == host
    return True  # not a browser, or one that says nothing: the CSRF token still decides


def _body_limit(path: str, headers: Headers) -> int:
    if path.startswith(UPLOAD_PATHS):
        return MAX_UPLOAD_BYTES
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return MAX_FORM_BYTES
    return MAX_JSON_BYTES


class _TooLarge(Exception):
    pass


class AuthMiddleware:
    """Reads the session, refuses cross-site and oversized requests, and lets through only
    requests with credentials, except to the public paths."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNGUARDED_PREFIXES):
            # tracking and the shop's inbox: write keys, their own limits; one-click
            # unsubscribe: its signed token, from any origin (RFC 8058), throttled by itself
            await self.app(scope, receive, send)
            return
        settings: Settings = scope["app"].state.settings
        path: str = scope["path"]
        headers = Headers(scope=scope)
        a = _Auth(self._load(settings, headers))
        scope.setdefault("state", {})[_STATE] = a

        if scope["method"] not in SAFE_METHODS and not same_origin(headers):
            detail = "a request from another site is refused: use the app's own pages or the API"
            await problem_response(path, 403, detail, kind="cross-site")(scope, receive, send)
            return
        limit = _body_limit(path, headers)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._too_large(path, limit)(scope, receive, send)
            return
        if not is_public(path):
            try:
                a.principal = await _resolve(scope["app"].state.ws, headers, a)
            except Problem as e:
                await e.response(path)(scope, receive, send)
                return
            if a.principal is None:
                if _wants_problem(path, headers):
                    await _unauthorized().response(path)(scope, receive, send)
                else:
                    nxt = path + (
                        "?" + scope["query_string"].decode("latin-1")
                        if scope.get("query_string")
                        else ""
                    )
                    await login_redirect(nxt)(scope, receive, send)
                return

        started = False
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # FastAPI turns an error while reading a body into a 400; the flag lets
                    # the error handler say 413 and why.
                    scope["state"][TOO_LARGE] = limit
                    raise _TooLarge()
            return message

        async def send_with_cookie(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if a.dirty:
                    h = MutableHeaders(scope=message)
                    h.append("set-cookie", self._cookie(settings, scope, a.data))
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_cookie)
        except _TooLarge:
            if started:
                raise
            await self._too_large(path, limit)(scope, receive, send)

    @staticmethod
    def _too_large(path: str, limit: int) -> Response:
        detail = f"the request body is larger than {limit:,} bytes, the most this endpoint takes"
        return problem_response(path, 413, detail, kind="too-large")

    @staticmethod
    def _load(settings: Settings, headers: Headers) -> dict[str, Any]:
        raw = _cookie_value(headers.get("cookie", ""), SESSION_COOKIE)
        if not raw:
            return {}
        try:
            data = _serializer(settings).loads(raw, max_age=SESSION_SECONDS)
        except BadSignature:
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _cookie(settings: Settings, scope: Scope, data: dict[str, Any]) -> str:
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        if not data:
            return f"{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"
        value = _serializer(settings).dumps(data)
        return (
            f"{SESSION_COOKIE}={value}; Path=/; Max-Age={SESSION_SECONDS}; HttpOnly; "
            f"SameSite=Lax{secure}"
        )


def _cookie_value(header: str, name: str) -> str | None:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def login_redirect(next_url: str) -> RedirectResponse:
    return RedirectResponse("/login?next=" + quote(safe_next(next_url), safe="/"), 303)


def safe_next(value: str | None) -> str:
    """A place in this app to go after sign-in; anything else (another site) becomes ``/``."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 32 or c == "\\" for c in value):
        return "/"
    return value


# -- the sign-in routes ---------------------------------------------------------------------------
router = APIRouter(tags=["sign-in"], include_in_schema=False)
LOGIN_FREE_TRIES = 5  # wrong passwords in a row for one name from one address, then backoff
LOGIN_FREE_TRIES_ADDRESS = 20  # … and from one address whatever the names (unknown ones too)
LOGIN_FIRST_WAIT = 1.0  # the first wait after the free tries; each further try doubles it …
LOGIN_MOST_WAIT = 15 * 60.0  # … up to this many seconds
LOGIN_FORGET = 24 * 3600.0  # a name and address with no try for this long start afresh
LOGIN_KEYS = 100_000  # most (name, address) and address counts kept in memory
VERIFY_AT_ONCE = 1  # argon2 verifications running at once (each ~0.1 s of 4 lanes, 64 MiB)
VERIFY_WAITING = 32  # sign-ins waiting for a verification beyond this are told to come back


@dataclass
class _Tries:
    n: int = 0  # tries counted since the last success
    not_before: float = 0.0  # the next try waits until then
    last: float = 0.0


class Throttle:
    """Sign-in tries per key, in the server's memory, counted *before* the password is checked
    (so parallel tries cannot overtake the count). After ``free`` tries without a success, each
    further try waits: ``first`` seconds, then twice as long each time, up to ``most``.

    ``clock`` gives monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        first: float = LOGIN_FIRST_WAIT,
        most: float = LOGIN_MOST_WAIT,
        forget: float = LOGIN_FORGET,
        keys: int = LOGIN_KEYS,
    ) -> None:
        self.clock, self.first, self.most, self.forget, self.keys = clock, first, most, forget, keys
        self._tries: dict[str, _Tries] = {}
        self._lock = threading.Lock()

    def admit(self, limits: dict[str, int]) -> float:
        """Count a try against every key of ``limits`` (key: free tries) and return 0, or
        count nothing and return the seconds until the first key that is waiting may try."""
        now = self.clock()
        with self._lock:
            found = {k: self._get(k, now) for k in limits}
            wait = max((t.not_before - now for t in found.values()), default=0.0)
            if wait > 0:
                return wait
            for key, t in found.items():
                t.n += 1
                t.last = now
                over = t.n - limits[key]
                if over >= 0:
                    t.not_before = now + min(self.first * 2.0**over, self.most)
            return 0.0

    def succeeded(self, key: str, *others: str) -> None:
        """A right password: ``key`` starts afresh; the try no longer counts against ``others``."""
        with self._lock:
            self._tries.pop(key, None)
            for k in others:
                t = self._tries.get(k)
                if t is not None and t.n > 0:
                    t.n -= 1

    def _get(self, key: str, now: float) -> _Tries:
        t = self._tries.pop(key, None)
        if t is None or now - t.last > self.forget:
            t = _Tries()
        self._tries[key] = t  # the most recently tried last
        while len(self._tries) > self.keys:  # a flood of names: forget the oldest
            del self._tries[next(iter(self._tries))]
        return t


class _SignIns:
    """The app's sign-in throttle and its limit on argon2 verifications running at once."""

    def __init__(self) -> None:
        self.throttle = Throttle()
        self.verifying = anyio.CapacityLimiter(VERIFY_AT_ONCE)
        self.waiting = 0


def _sign_ins(request: Request) -> _SignIns:
    got = getattr(request.app.state, "sign_ins", None)
    if got is None:
        got = request.app.state.sign_ins = _SignIns()
    return got


@functools.cache
def _templates() -> Any:
    """The pages' templates (autoescaped, with their gettext), for their restyled ``login.html``."""
    from archer.web.ui.render import templates

    return templates


def _login_page(
    request: Request, *, next_url: str, error: str = "", username: str = "", status: int = 200
) -> Response:
    return _templates().TemplateResponse(
        request,
        TEMPLATE.name,
        {
            "csrf": csrf_token(request),
            "next": next_url,
            "error": error,
            "username": username,
            "shop": request.app.state.settings.shop_name,
        },
        status_code=status,
    )


def _in_words(seconds: float) -> str:
    if seconds < 90:
        n = max(1, math.ceil(seconds))
        return f"{n} second{'s' if n > 1 else ''}"
    n = math.ceil(seconds / 60)
    return f"{n} minutes"


@router.get("/login")
async def login_form(request: Request, next: str = "/") -> Response:
    """The sign-in form (a signed-in operator goes straight on)."""
    next_url = safe_next(next)
    if await _from_session(request.app.state.ws, _auth(request).data):
        return RedirectResponse(next_url, 303)
    return _login_page(request, next_url=next_url)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the user name and password; on success, a new session and on to ``next``.

    The try is counted before the password is checked, per (name, address) and per address;
    the check itself (argon2) runs with no store transaction open, at most
    :data:`VERIFY_AT_ONCE` at a time, so a flood of sign-ins neither holds the store's write
    lock nor takes every core from the tracking API.
    """
    form = await request.form()
    username, password = str(form.get("username") or ""), str(form.get("password") or "")
    next_url = safe_next(str(form.get("next") or "/"))

    def page(error: str, status: int, retry: float | None = None) -> Response:
        r = _login_page(request, next_url=next_url, username=username, error=error, status=status)
        if retry is not None:
            r.headers["Retry-After"] = str(max(1, math.ceil(retry)))
        return r

    if not _csrf_matches(
        request, form.get(CSRF_FIELD) if isinstance(form.get(CSRF_FIELD), str) else None
    ):
        return page("The sign-in form had expired. Please sign in again.", 403)
    gate = _sign_ins(request)
    if gate.waiting >= VERIFY_WAITING:
        return page("Too many sign-ins at once. Please try again in a moment.", 503, 1)
    address = request.client.host if request.client else "?"
    name_key = f"{address}|{username.casefold()[: users.NAME_MAX + 1]}"
    wait = gate.throttle.admit({name_key: LOGIN_FREE_TRIES, address: LOGIN_FREE_TRIES_ADDRESS})
    if wait > 0:
        return page(f"Too many wrong passwords. Try again in {_in_words(wait)}.", 429, wait)

    user = None
    if username and password:
        gate.waiting += 1
        try:
            user = await _check_password(request.app.state.ws, username, password, gate.verifying)
        finally:
            gate.waiting -= 1
    if user is None:
        return page("Wrong user name or password.", 401)
    gate.throttle.succeeded(name_key, address)
    _auth(request).set(
        {
            "uid": user.id,
            "at": int(request.app.state.ws.now().timestamp()),
            "stamp": user.stamp,
            "csrf": secrets.token_urlsafe(32),
        }
    )
    return RedirectResponse(next_url, 303)


async def _check_password(
    ws: Workspace, username: str, password: str, limiter: anyio.CapacityLimiter
) -> User | None:
    """The user if the password is theirs: read, verify with no transaction, record briefly."""

    def read() -> users.Credentials | None:
        with ws.session() as s:
            return users.credentials(s, username)

    found = await anyio.to_thread.run_sync(read)
    new_hash = await anyio.to_thread.run_sync(users.verify, found, password, limiter=limiter)
    if found is None or new_hash is None:
        return None

    def record() -> User | None:
        with ws.session(write=True) as s:
            return users.signed_in(s, found, new_hash, now=ws.now())

    return await anyio.to_thread.run_sync(record)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session, on the server too: the user's session stamp changes, so a copy of the
    cookie no longer works (nor does any other session of that user). The CSRF token must come
    with the form, so no other site can sign anyone out."""
    a = _auth(request)
    if a.data.get("uid") is not None:
        await check_csrf(request)
        settings: Settings = request.app.state.settings
        p = await _from_session(request.app.state.ws, a.data)
        if p is not None and p.user is not None:
            uid = p.user.id

            def end() -> None:
                with db_session(settings, write=True) as s:
                    users.end_sessions(s, uid)

            await anyio.to_thread.run_sync(end)
    a.set({})
    return RedirectResponse("/login", 303)


async def _on_login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return login_redirect(exc.next_url)


def install(app: FastAPI) -> None:
    """Add sign-in, the credentials check on every request, and the REST API to ``app``."""
    from archer.web import api
    from archer.web.api import problems

    problems.install(app)
    app.add_exception_handler(LoginRequired, _on_login_required)
    app.include_router(router)
    api.install(app)
    app.add_middleware(AuthMiddleware)
