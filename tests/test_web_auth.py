"""Sign-in, sessions, CSRF, cross-site refusal and API keys (archer.web.auth), in process."""

from __future__ import annotations

import re
import stat
import time

import pytest
from fastapi import Request
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from archer import signing
from archer.cli import app as cli
from archer.store import apikeys, users, utcnow
from archer.web import auth, create_app
from archer.web.auth import CsrfProtected, CurrentUser

PASSWORD = "correct horse battery"


@pytest.fixture
def web(ws):
    with ws.session(write=True) as s:
        users.create(s, "alice", PASSWORD, now=utcnow())
    app = create_app(ws, sync_every=None)

    # Two routes the way the pages use the contract: a page and a form post.
    @app.get("/t/page")
    async def page(user: CurrentUser) -> PlainTextResponse:
        return PlainTextResponse(f"hello {user.username}")

    @app.post("/t/form")
    async def form(user: CurrentUser, _: CsrfProtected, request: Request) -> PlainTextResponse:
        return PlainTextResponse("posted")

    c = TestClient(app, follow_redirects=False)
    c.ws = ws
    return c


def csrf_of(c: TestClient, path: str = "/login") -> str:
    r = c.get(path)
    return re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)


def sign_in(c: TestClient, username: str = "alice", password: str = PASSWORD, next: str = "/"):
    token = csrf_of(c)
    return c.post(
        "/login",
        data={"username": username, "password": password, "csrf": token, "next": next},
    )


def new_key(ws, name: str = "etl") -> str:
    with ws.session(write=True) as s:
        return apikeys.create(s, name, created_by="test", now=utcnow())[1]


def is_problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    doc = r.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(doc)
    assert doc["status"] == status and doc["detail"]
    return doc


def test_the_sign_in_form_sets_a_session_cookie_with_a_csrf_token(web):
    r = web.get("/login")
    assert r.status_code == 200 and "<form" in r.text and 'name="csrf"' in r.text
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("archer_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    https = TestClient(web.app, base_url="https://testserver", follow_redirects=False)
    assert "Secure" in https.get("/login").headers["set-cookie"]


def test_nothing_but_sign_in_health_tracking_and_static_answers_without_credentials(web):
    r = web.get("/t/page", params={"a": "1"}, headers={"accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/t/page%3Fa%3D1"
    r = web.get("/anything/else", headers={"accept": "text/html"})
    assert r.status_code == 303
    for path in ("/api/me", "/api/audiences", "/docs", "/openapi.json", "/api/nowhere"):
        doc = is_problem(web.get(path), 401)
        assert "Bearer" in web.get(path).headers["www-authenticate"]
        assert "/login" in doc["detail"] and "apikey" in doc["detail"]
    assert web.get("/health").json() == {"status": "ok"}
    r = web.post("/v1/track", json={"event": "x", "userId": "u"})
    assert r.status_code == 401 and "write key" in r.json()["detail"]  # tracking's own answer
    assert web.get("/static/nothing.js").status_code == 404  # not a redirect to the sign-in


def test_sign_in_then_pages_and_api_answer_and_sign_out_ends_it(web):
    r = sign_in(web, next="/t/page")
    assert r.status_code == 303 and r.headers["location"] == "/t/page"
    assert web.get("/t/page").text == "hello alice"
    me = web.get("/api/me").json()
    assert me["kind"] == "user" and me["name"] == "alice" and len(me["csrf"]) > 20
    assert web.get("/docs").status_code == 200
    assert web.get("/openapi.json").json()["info"]["title"] == "Archer"
    assert web.get("/login").status_code == 303  # signed in already: straight on
    is_problem(web.post("/logout"), 403)  # without the token: refused
    copied = web.cookies["archer_session"]
    r = web.post("/logout", data={"csrf": me["csrf"]})
    assert r.status_code == 303 and "Max-Age=0" in r.headers["set-cookie"]
    is_problem(web.get("/api/me"), 401)
    # Ended on the server: a copy of the cookie taken before no longer works.
    is_problem(web.get("/api/me", headers={"Cookie": f"archer_session={copied}"}), 401)


def test_wrong_password_unknown_user_and_missing_csrf_are_refused(web):
    r = sign_in(web, password="wrong password")
    assert r.status_code == 401 and "Wrong user name or password" in r.text
    assert sign_in(web, username="mallory").status_code == 401
    csrf_of(web)
    r = web.post("/login", data={"username": "alice", "password": PASSWORD})
    assert r.status_code == 403 and "expired" in r.text
    is_problem(web.get("/api/me"), 401)
    with web.ws.session() as s:
        (u,) = users.all_users(s)
    assert u.password_hash.startswith("$argon2id$") and PASSWORD not in u.password_hash


def test_next_never_leads_to_another_site(web):
    for evil in ("//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:x"):
        web.cookies.clear()
        assert sign_in(web, next=evil).headers["location"] == "/"


def test_a_form_needs_the_sessions_csrf_token(web):
    sign_in(web)
    token = web.get("/api/me").json()["csrf"]
    is_problem(web.post("/t/form", data={"x": "1"}), 403)
    is_problem(web.post("/t/form", data={"csrf": "forged"}), 403)
    assert web.post("/t/form", data={"csrf": token}).text == "posted"
    assert web.post("/t/form", headers={"X-CSRF-Token": token}).text == "posted"


def test_cross_site_requests_are_refused_even_with_the_token(web):
    sign_in(web)
    token = web.get("/api/me").json()["csrf"]
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        r = web.post("/t/form", data={"csrf": token}, headers=headers)
        assert is_problem(r, 403)["type"].endswith("cross-site")
    ok = web.post("/t/form", data={"csrf": token}, headers={"Origin": "http://testserver"})
    assert ok.text == "posted"
    # Login CSRF: another site cannot sign a browser in as someone else.
    r = web.post("/login", data={"username": "alice"}, headers={"Origin": "http://evil.example"})
    is_problem(r, 403)


def test_api_keys_work_as_bearer_and_stop_when_revoked(web):
    key = new_key(web.ws)
    h = {"Authorization": f"Bearer {key}"}
    me = web.get("/api/me", headers=h).json()
    assert me == {"kind": "key", "name": "etl", "csrf": None}
    assert web.get("/docs", headers=h).status_code == 200
    # A key is not a browser session: no CSRF token needed on unsafe calls, no pages.
    assert web.get("/t/page", headers=h).status_code == 303
    for bad in (f"Bearer {key}x", "Bearer ", "Basic YWxpY2U6eA==", "Bearer ak_" + "a" * 5000):
        is_problem(web.get("/api/me", headers={"Authorization": bad}), 401)
    with web.ws.session(write=True) as s:
        (k,) = apikeys.all_keys(s)
        assert k.last_used_at is not None and k.key_hash != key and key.startswith(k.prefix)
        apikeys.revoke(s, "etl", now=utcnow())
    assert is_problem(web.get("/api/me", headers=h), 401)["detail"].endswith("revoked")


def test_a_tampered_or_expired_session_is_no_session(web, monkeypatch):
    sign_in(web)
    good = web.cookies["archer_session"]
    web.cookies.clear()

    def me(cookie: str):
        return web.get("/api/me", headers={"Cookie": f"archer_session={cookie}"})

    is_problem(me(good[:-3] + "xyz"), 401)
    is_problem(me(good.replace(".", "", 1)), 401)
    assert me(good).status_code == 200
    later = time.time() + auth.SESSION_SECONDS + 60
    monkeypatch.setattr(auth.time, "time", lambda: later)
    is_problem(me(good), 401)


def test_oversized_bodies_are_refused_with_413(web):
    token = csrf_of(web)
    r = web.post("/login", data={"username": "a" * 100_000, "csrf": token})
    assert is_problem(r, 413)["detail"].startswith("the request body is larger")

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(100):
            yield b"x" * 20_000

    r = web.post(
        "/login",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    is_problem(r, 413)


def test_the_secret_key_is_made_once_per_workspace_and_private(ws):
    a = auth.secret_key(ws.settings)
    assert a == auth.secret_key(ws.settings) and len(a) >= 48
    mode = (ws.home / signing.SECRET_FILE).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_cli_makes_users_and_keys(ws):
    run = CliRunner().invoke
    home = ["--home", str(ws.home)]
    r = run(cli, ["user", "create", "bob", "--password-stdin", *home], input="s3cret-pass\n")
    assert r.exit_code == 0, r.output
    r = run(cli, ["user", "create", "bob", "--password-stdin", *home], input="s3cret-pass\n")
    assert r.exit_code == 1 and "exists already" in r.output
    r = run(cli, ["user", "create", "eve", "--password-stdin", *home], input="short\n")
    assert r.exit_code == 1 and "at least 8" in r.output
    r = run(cli, ["user", "create", "carol", *home], input="pass-word-1\npass-word-2\n")
    assert r.exit_code == 1 and "differ" in r.output
    r = run(cli, ["user", "list", "--json", *home])
    assert [u["username"] for u in __import__("json").loads(r.stdout)] == ["bob"]
    r = run(cli, ["apikey", "create", "crm", *home])
    assert r.exit_code == 0
    key = re.search(r"ak_\S+", r.output).group(0)
    r = run(cli, ["apikey", "list", "--json", *home])
    (doc,) = __import__("json").loads(r.stdout)
    assert doc["name"] == "crm" and doc["active"] and key not in r.stdout
    app = create_app(ws, sync_every=None)
    c = TestClient(app)
    assert c.get("/api/me", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert run(cli, ["apikey", "revoke", "crm", *home]).exit_code == 0
    assert c.get("/api/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert run(cli, ["apikey", "revoke", "nope", *home]).exit_code == 1


def test_sign_in_waits_after_many_wrong_passwords(web):
    for _ in range(auth.LOGIN_FREE_TRIES):
        assert sign_in(web, password="guess-guess").status_code == 401
    r = sign_in(web)  # the right password, too soon (tests/test_web_security.py: the backoff)
    assert r.status_code == 429 and "Too many" in r.text and int(r.headers["retry-after"]) >= 1
    assert sign_in(web, username="bob").status_code == 401  # another name is not held back


def test_the_sign_in_page_shows_what_was_typed_escaped(web):
    r = sign_in(web, username='<img src=x onerror="alert(1)">')
    assert r.status_code == 401 and "<img src=x" not in r.text and "&lt;img" in r.text
    r = web.get("/login", params={"next": '/"><script>alert(1)</script>'})
    assert "<script>alert(1)" not in r.text


def test_a_new_password_ends_the_sessions_made_before_it(web):
    sign_in(web)
    assert web.get("/api/me").status_code == 200
    r = CliRunner().invoke(
        cli,
        ["user", "password", "alice", "--password-stdin", "--home", str(web.ws.home)],
        input="a-new-password\n",
    )
    assert r.exit_code == 0, r.output
    is_problem(web.get("/api/me"), 401)
    assert sign_in(web).status_code == 401  # the old password
    assert sign_in(web, password="a-new-password").status_code == 303
    assert web.get("/api/me").json()["name"] == "alice"
