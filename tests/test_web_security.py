"""Hardening of the web app (issue 11, items 4–7): sign-in floods, throttling, proxy headers,
sign-out on the server, security headers. Real SQLite stores, real servers on loopback where
timing or the network matters, in-process clients where it does not."""

from __future__ import annotations

import asyncio
import re
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from archer.store import users, utcnow
from archer.store.db import session
from archer.web import auth, create_app, headers
from test_tracking_server import ProcessServer, basic, free_port, new_source

PASSWORD = "correct horse battery"
EVENT = {"event": "Viewed", "userId": "c1", "properties": {"sku": "A1"}}


def settings_of(ws):
    """The settings of the ``ws`` fixture (settings, or a workspace that has them)."""
    return getattr(ws, "settings", ws)


def add_user(ws, name: str = "alice", password: str = PASSWORD) -> None:
    with session(settings_of(ws), write=True) as s:
        users.create(s, name, password, now=utcnow())


def form_token(text: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', text).group(1)


def try_sign_in(c: httpx.Client, username: str, password: str, **kw) -> httpx.Response:
    token = form_token(c.get("/login", **kw).text)
    data = {"username": username, "password": password, "csrf": token}
    return c.post("/login", data=data, **kw)


# -- 4: a sign-in flood does not stall the tracking API ------------------------------------------
FLOOD = 20  # sign-ins at once, with unknown names, as in the report
ROUNDS = 1
TRACKERS = 4  # sites sending events meanwhile, each one request after the other


@pytest.mark.slow
def test_tracking_stays_fast_under_a_sign_in_flood(ws):
    add_user(ws)
    key = new_source(ws, "web")
    srv = ProcessServer(ws, free_port())  # its own process, as in production
    srv.start()
    try:

        def track(c: httpx.Client) -> float:
            t = time.perf_counter()
            r = c.post("/v1/track", json=EVENT, headers=basic(key))
            assert r.status_code == 200, r.text  # never "database is locked"
            return time.perf_counter() - t

        def sign_ins(i: int) -> list[int]:
            with httpx.Client(base_url=srv.url, timeout=120) as c:
                return [
                    try_sign_in(c, f"ghost-{i}-{n}", "guess-guess").status_code
                    for n in range(ROUNDS)
                ]

        def tracker(done: threading.Event) -> list[float]:
            with httpx.Client(base_url=srv.url, timeout=120) as c:
                took = [track(c)]
                while not done.is_set():  # only requests sent while the flood runs count
                    took.append(track(c))
                return took

        with httpx.Client(base_url=srv.url, timeout=120) as c:
            for _ in range(3):
                track(c)  # warm up
            quiet = statistics.median(track(c) for _ in range(15))
        done = threading.Event()
        with ThreadPoolExecutor(FLOOD + TRACKERS) as pool:
            flood = [pool.submit(sign_ins, i) for i in range(FLOOD)]
            trackers = [pool.submit(tracker, done) for _ in range(TRACKERS)]
            answers = [s for f in flood for s in f.result()]
            done.set()
            during = [x for f in trackers for x in f.result()]
    finally:
        srv.stop()
    # Every sign-in got an answer (wrong, or wait), none an error ("database is locked").
    assert set(answers) <= {401, 429, 503}, answers
    # Generous bounds: the machine is shared, and argon2 still takes cores. Before the fix each
    # sign-in held the store's write lock through its argon2, and tracking requests waited
    # behind them for seconds (8–10 s here; 30 s in the report).
    loaded = statistics.median(during)
    assert loaded < max(20 * quiet, 0.5), (quiet, loaded, len(during))
    assert max(during) < 3.0, (quiet, max(during), len(during))


# -- 5: the throttle: counted before the check, per (name, address), backing off ---------------
class Clock:
    """A manual monotonic clock for the throttle."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def plain(ws):
    """The app of a workspace with the operator alice."""
    add_user(ws)
    return create_app(ws, sync_every=None)


@pytest.fixture
def app(plain):
    """The same, its sign-in throttle on a manual clock."""
    app = plain
    app.state.clock = Clock()
    app.state.sign_ins = auth._SignIns()
    app.state.sign_ins.throttle = auth.Throttle(app.state.clock)
    return app


def client(app, address: str = "10.1.1.1") -> TestClient:
    return TestClient(app, follow_redirects=False, client=(address, 40000))


def test_wrong_passwords_back_off_per_name_and_address(app):
    clock, c = app.state.clock, client(app)
    for _ in range(auth.LOGIN_FREE_TRIES):
        assert try_sign_in(c, "alice", "guess-guess").status_code == 401
    r = try_sign_in(c, "alice", PASSWORD)  # the right password, but too soon
    assert r.status_code == 429 and "Try again in 1 second" in r.text
    assert r.headers["retry-after"] == "1"
    clock.now += 1
    assert try_sign_in(c, "alice", "guess-guess").status_code == 401
    r = try_sign_in(c, "alice", PASSWORD)
    assert r.status_code == 429 and r.headers["retry-after"] == "2"  # each wait doubles
    # The real operator elsewhere is not held back, nor another name from this address.
    assert try_sign_in(client(app, "10.2.2.2"), "alice", PASSWORD).status_code == 303
    assert try_sign_in(c, "bob", "guess-guess").status_code == 401
    clock.now += 2
    assert try_sign_in(c, "alice", PASSWORD).status_code == 303  # and the count starts afresh
    for _ in range(auth.LOGIN_FREE_TRIES):
        assert try_sign_in(client(app), "alice", "guess-guess").status_code == 401


def test_the_wait_grows_to_at_most_fifteen_minutes(app):
    clock, c = app.state.clock, client(app)
    waits: list[int] = []
    while len(waits) < 14:
        r = try_sign_in(c, "alice", "guess-guess")
        if r.status_code == 429:
            wait = int(r.headers["retry-after"])
            waits.append(wait)
            clock.now += wait
    assert waits[:4] == [1, 2, 4, 8] and waits[-3:] == [15 * 60] * 3


def test_unknown_names_are_throttled_per_address(app):
    c = client(app)
    for i in range(auth.LOGIN_FREE_TRIES_ADDRESS):
        assert try_sign_in(c, f"ghost-{i}", "guess-guess").status_code == 401
    assert try_sign_in(c, "ghost-new", "guess-guess").status_code == 429
    assert try_sign_in(c, "alice", PASSWORD).status_code == 429  # the address waits
    assert try_sign_in(client(app, "10.3.3.3"), "alice", PASSWORD).status_code == 303


def test_parallel_wrong_passwords_get_no_more_tries_than_the_limit(plain):
    app = plain

    async def one(c: httpx.AsyncClient) -> int:
        token = form_token((await c.get("/login")).text)
        data = {"username": "alice", "password": "guess-guess", "csrf": token}
        return (await c.post("/login", data=data)).status_code

    async def flood() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("10.4.4.4", 40000))
        clients = [
            httpx.AsyncClient(transport=transport, base_url="http://testserver") for _ in range(100)
        ]
        try:
            return await asyncio.gather(*(one(c) for c in clients))
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))

    answers = asyncio.run(flood())
    assert answers.count(401) == auth.LOGIN_FREE_TRIES
    assert answers.count(429) == 100 - auth.LOGIN_FREE_TRIES


def test_forwarded_for_counts_only_from_a_named_proxy(ws):
    """`archer serve` believes X-Forwarded-For/-Proto only from the proxies in the settings."""
    add_user(ws)
    srv = ProcessServer(ws, free_port())
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            answers = [
                try_sign_in(
                    c, "alice", "guess-guess", headers={"X-Forwarded-For": f"203.0.113.{i}"}
                ).status_code
                for i in range(auth.LOGIN_FREE_TRIES + 1)
            ]
            assert answers[-1] == 429  # rotating the header does not make a new client
            r = httpx.get(srv.url + "/login", headers={"X-Forwarded-Proto": "https"})
            assert "strict-transport-security" not in r.headers
            assert "Secure" not in r.headers["set-cookie"]
    finally:
        srv.stop()
    (settings_of(ws).home / "archer.toml").write_text(
        'trusted_proxies = "127.0.0.1"\n', encoding="utf-8"
    )
    srv = ProcessServer(ws, free_port())
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            answers = [
                try_sign_in(
                    c, "alice", "guess-guess", headers={"X-Forwarded-For": f"203.0.113.{i}"}
                ).status_code
                for i in range(auth.LOGIN_FREE_TRIES + 1)
            ]
            assert set(answers) == {401}  # the proxy says these are different clients
            r = httpx.get(srv.url + "/login", headers={"X-Forwarded-Proto": "https"})
            assert r.headers["strict-transport-security"].startswith("max-age=")
            assert "Secure" in r.headers["set-cookie"]
    finally:
        srv.stop()


def test_trusted_proxies_must_be_addresses(tmp_path):
    from archer.config import load_settings

    (tmp_path / "archer.toml").write_text('trusted_proxies = "10.0.0.1, proxy.lan"\n')
    with pytest.raises(ValueError, match="trusted_proxies: 'proxy.lan' is not an IP address"):
        load_settings(tmp_path)
    (tmp_path / "archer.toml").write_text('trusted_proxies = "10.0.0.1 , 10.9.0.0/16"\n')
    assert load_settings(tmp_path).trusted_proxies == "10.0.0.1,10.9.0.0/16"


# -- 6: sign-out ends the session on the server -------------------------------------------------
def test_a_copied_cookie_stops_working_at_sign_out(plain):
    app = plain

    c = client(app)
    assert try_sign_in(c, "alice", PASSWORD).status_code == 303
    copied = c.cookies["archer_session"]
    me = c.get("/api/me").json()
    other = client(app, "10.5.5.5")  # the same operator in another browser
    assert try_sign_in(other, "alice", PASSWORD).status_code == 303
    assert c.post("/logout", data={"csrf": me["csrf"]}).status_code == 303
    thief = client(app, "10.6.6.6")
    r = thief.get("/api/me", headers={"Cookie": f"archer_session={copied}"})
    assert r.status_code == 401
    r = thief.get(
        "/audiences", headers={"Cookie": f"archer_session={copied}", "Accept": "text/html"}
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert other.get("/api/me").status_code == 401  # a sign-out ends all of alice's sessions
    assert try_sign_in(c, "alice", PASSWORD).status_code == 303  # and a new one works
    assert c.get("/api/me").json()["name"] == "alice"


# -- 7: security headers on every answer --------------------------------------------------------
def assert_secure(r: httpx.Response, *, cached: bool = False) -> None:
    h = r.headers
    csp = h["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert h["x-frame-options"] == "DENY"
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "same-origin"
    if cached:
        assert h.get("cache-control") != "no-store"
    else:
        assert h["cache-control"] == "no-store"
    assert "strict-transport-security" not in h  # plain http


def test_every_answer_carries_the_security_headers(plain):
    app = plain

    @app.get("/t/boom")
    async def boom() -> None:
        raise RuntimeError("an unexpected error")

    c = client(app)
    for r in (
        c.get("/login"),
        c.get("/health"),
        c.get("/api/me"),  # a 401
        c.get("/audiences", headers={"Accept": "text/html"}),  # a redirect to the sign-in
        c.post("/login", data={"username": "a" * 100_000}),  # a 413
        c.post("/v1/track", json=EVENT),  # tracking's own 401
    ):
        assert_secure(r)
    assert_secure(c.get("/static/app.js"), cached=True)
    try_sign_in(c, "alice", PASSWORD)
    for path in ("/", "/audiences", "/data", "/api/me", "/api/audiences", "/docs", "/openapi.json"):
        r = c.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert_secure(r)
    # The pages run no inline script and carry no inline style or handler.
    page = c.get("/audiences").text
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)", page)
    assert not re.search(r"\son[a-z]+=|\sstyle=", page)
    # Even the 500 of an unexpected error, which Starlette sends from outside the app's own
    # middleware.
    c500 = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
    c500.cookies = c.cookies
    r = c500.get("/t/boom")
    assert r.status_code == 500
    assert_secure(r)
    r = TestClient(app, base_url="https://testserver").get("/login")
    assert r.headers["strict-transport-security"] == f"max-age={headers.HSTS_SECONDS}"


# -- docs/security.md states the code's numbers -------------------------------------------------
def test_security_md_states_the_numbers_of_the_code():
    from pathlib import Path

    from archer.audiences import grammar
    from archer.store import apikeys, inbox
    from archer.tracking import spec as segment
    from archer.web.api import audiences as api_audiences
    from archer.web.api import common, customers

    doc = Path(__file__).parents[1] / "docs" / "security.md"
    text = " ".join(doc.read_text(encoding="utf-8").split())
    assert api_audiences.QUERY_MAX == customers.MAX_QUERY == grammar.MAX_LENGTH
    days = auth.SESSION_SECONDS // 86400
    for phrase in (
        f"{auth.MAX_FORM_BYTES:,} bytes",
        f"{auth.MAX_JSON_BYTES:,} bytes",
        f"{auth.MAX_UPLOAD_BYTES:,} bytes",
        f"{users.PASSWORD_MIN} to {users.PASSWORD_MAX:,} characters",
        f"1 to {users.NAME_MAX} characters",
        f"{grammar.MAX_LENGTH:,} characters; parentheses nested at most {grammar.MAX_DEPTH} deep",
        f"1 to {common.MAX_PAGE:,}",
        f"{segment.MAX_EVENT_BYTES:,} bytes",
        f"{segment.MAX_BATCH_BYTES:,} bytes",
        f"| {segment.ID_MAX} characters",
        f"within {inbox.DEDUP_DAYS} days",
        f"first {apikeys.PREFIX_CHARS} characters",
        f"valid for {days} days",
        f"| {auth.LOGIN_FREE_TRIES} | each further try waits: {auth.LOGIN_FIRST_WAIT:g} s",
        f"at most {auth.LOGIN_MOST_WAIT / 60:g} minutes",
        f"| {auth.LOGIN_FREE_TRIES_ADDRESS} | the same",
        f"no try for {auth.LOGIN_FORGET / 3600:g} hours",
        f"at most {auth.VERIFY_AT_ONCE} runs at a time",
        f"While {auth.VERIFY_WAITING} sign-ins are waiting",
        f"at most {auth.LOGIN_KEYS:,} names",
        f"`max-age={headers.HSTS_SECONDS}`",
        f"get {auth.LOGIN_FREE_TRIES} checks, and {100 - auth.LOGIN_FREE_TRIES} answers `429`",
    ):
        assert phrase in text, f"docs/security.md does not say {phrase!r}"
    for name, value in headers.ALWAYS.items():
        for part in value.split("; "):
            if "sha256-" not in part:
                assert part in text, f"docs/security.md does not show {name}: {part}"
