"""The pages when the shop is not ready (issue 11 items 13 and 18): a warehouse another process
holds, a workspace never built, the core's errors: a page with the right status and what to
do, never a 500. In process (TestClient), on real DuckDB and SQLite files; the other process
holding the warehouse is a real process."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from markupsafe import escape

from archer.errors import Conflict, Invalid, NotBuilt, NotFound, Unavailable
from archer.store import users, utcnow
from archer.web import create_app
from archer.web.auth import CurrentUser
from archer.workspace import Workspace
from support import workspace

PASSWORD = "correct horse battery"
PAGES = ["/", "/customers", "/customers?q=age+%3E+30", "/audiences", "/data", "/customers/C1"]


def new_shop(root: Path) -> Workspace:
    ws = workspace(root / "shop")
    with ws.session(write=True) as s:
        users.create(s, "alice", PASSWORD, now=utcnow())
    ws.busy_seconds = 0.2  # how long a page waits for another process before saying "busy"
    return ws


def signed_in(ws: Workspace, app=None) -> TestClient:
    c = TestClient(app or create_app(ws, sync_every=None), follow_redirects=False)
    c.__enter__()
    c.cookies.set("archer_lang", "en")  # the pages in English (a CNY shop's are in Chinese)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    r = c.post("/login", data={"username": "alice", "password": PASSWORD, "csrf": token})
    assert r.status_code == 303
    c.csrf = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/data").text).group(1)
    return c


@contextmanager
def warehouse_held(ws: Workspace) -> Iterator[None]:
    """Another process (as `archer import` would) opens the warehouse and keeps it open."""
    code = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
        "print('ready', flush=True); sys.stdin.read()"
    )
    path = str(ws.home / "warehouse.duckdb")
    p = subprocess.Popen(
        [sys.executable, "-c", code, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert p.stdout.readline().strip() == "ready"
        yield
    finally:
        p.stdin.close()
        p.wait(timeout=30)


def is_page(r) -> bool:
    return r.headers["content-type"].startswith("text/html") and "<!doctype html>" in r.text


@pytest.fixture(scope="module")
def unbuilt(tmp_path_factory):
    ws = new_shop(tmp_path_factory.mktemp("unbuilt"))
    c = signed_in(ws)
    yield c
    c.__exit__(None, None, None)


# -- item 13: the warehouse held by another process ------------------------------------------------
@pytest.mark.parametrize("path", [*PAGES, "/audiences/vip"])
def test_a_page_is_a_503_with_retry_after_while_another_process_holds_the_warehouse(unbuilt, path):
    ws = unbuilt.app.state.ws
    with warehouse_held(ws):
        r = unbuilt.get(path, headers={"accept": "text/html"})
    if path in ("/audiences", "/audiences/vip"):  # the store answers these, no warehouse yet
        assert r.status_code in (200, 404), r.text
        return
    assert r.status_code == 503, r.text
    assert is_page(r) and r.headers["retry-after"].isdigit()
    assert "Busy: try again in a moment" in r.text and "the warehouse is busy" in r.text
    assert 'aria-current="page"' not in r.text or "alice" in r.text  # the layout, signed in
    assert "Traceback" not in r.text
    assert unbuilt.get("/health").status_code == 200


def test_the_json_endpoints_say_503_as_problem_details_with_retry_after(unbuilt):
    ws = unbuilt.app.state.ws
    with warehouse_held(ws):
        r = unbuilt.post(
            "/ui/audiences/count",
            json={"query": "age > 30"},
            headers={"X-CSRF-Token": unbuilt.csrf},
        )
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"].isdigit()
    assert r.json()["type"].endswith("unavailable")


def test_the_page_is_whole_again_when_the_other_process_is_done(unbuilt):
    with warehouse_held(unbuilt.app.state.ws):
        assert unbuilt.get("/data").status_code == 503
    r = unbuilt.get("/data")
    assert r.status_code == 200 and "Import a file" in r.text


@pytest.mark.parametrize(
    "error, status, title",
    [
        (Unavailable("the store is busy"), 503, "Busy: try again in a moment"),
        (NotBuilt(), 409, "No profile yet"),
        (NotFound("no such thing 'x'"), 404, "Not found"),
        (Conflict("it is in use"), 409, "Not done"),
        (Invalid("the date '2026-13-01' is not a day"), 422, "Invalid input"),
    ],
)
def test_each_error_of_the_core_is_a_page_with_its_status(tmp_path, error, status, title):
    """A page route added for the test raises each error of the family; every page gets the
    same handler (no route catches them itself)."""
    ws = new_shop(tmp_path)
    app = create_app(ws, sync_every=None)

    def failing(request: Request, user: CurrentUser):
        raise error

    app.add_api_route("/broken", failing, methods=["GET"])
    app.add_api_route("/api/broken", failing, methods=["GET"])
    c = signed_in(ws, app)
    try:
        r = c.get("/broken", headers={"accept": "text/html"})
        assert r.status_code == status and is_page(r)
        assert title in r.text and str(escape(str(error))) in r.text and "alice" in r.text
        assert ("retry-after" in r.headers) == (status == 503)
        if isinstance(error, NotBuilt):
            assert 'href="/data"' in r.text
        api = c.get("/api/broken")  # the API keeps its problem details
        assert api.status_code == status
        assert api.headers["content-type"].startswith("application/problem+json")
    finally:
        c.__exit__(None, None, None)


def test_an_unexpected_error_is_a_500_page_with_its_id_and_the_details_in_the_log(tmp_path):
    from archer.web.errorlog import LOG_FILE

    ws = new_shop(tmp_path)
    app = create_app(ws, sync_every=None)

    def failing(request: Request, user: CurrentUser):
        raise RuntimeError("secret detail /etc/passwd")

    app.add_api_route("/broken", failing, methods=["GET"])
    c = signed_in(ws, app)
    try:
        r = c.get("/broken", headers={"accept": "text/html"})
        assert r.status_code == 500 and is_page(r) and "alice" in r.text
        error_id = re.search(r"error ([0-9a-f]{12})", r.text).group(1)
        assert "secret detail" not in r.text and "Traceback" not in r.text
        log = (ws.home / LOG_FILE).read_text()
        assert f"error {error_id} in GET /broken" in log and "secret detail" in log
    finally:
        c.__exit__(None, None, None)


# -- item 18: a workspace never built --------------------------------------------------------------
def test_pages_on_an_unbuilt_workspace_say_import_and_build_first(unbuilt):
    for path in ("/", "/customers", "/customers?q=age+%3E+30"):
        r = unbuilt.get(path)
        assert r.status_code == 200, (path, r.text)
        assert 'href="/data' in r.text and ("build" in r.text.lower()), path
    r = unbuilt.get("/customers/C1")
    assert r.status_code == 404 and is_page(r)


def test_the_live_count_on_an_unbuilt_workspace_is_json_that_says_so(unbuilt):
    r = unbuilt.post(
        "/ui/audiences/count", json={"query": "age > 30"}, headers={"X-CSRF-Token": unbuilt.csrf}
    )
    assert r.status_code == 409 and r.headers["content-type"] == "application/json"
    err = r.json()["error"]
    assert err["not_built"] is True and "no customer profile yet" in err["message"]
    assert err["link"] == "/data"


def test_saving_an_audience_on_an_unbuilt_workspace_keeps_it_and_says_what_to_do(unbuilt):
    r = unbuilt.post(
        "/audiences", data={"name": "older", "query": "age > 30", "csrf": unbuilt.csrf}
    )
    assert r.status_code == 409 and is_page(r)
    assert "no customer profile yet" in r.text and 'id="not-built"' in r.text
    assert 'href="/data"' in r.text
    assert "age &gt; 30" in r.text  # what was typed is kept in the editor


def test_an_empty_build_is_not_a_500_either(tmp_path):
    ws = new_shop(tmp_path)
    ws.build()
    c = signed_in(ws)
    try:
        for path in PAGES:
            assert c.get(path).status_code in (200, 404), path
        r = c.post(
            "/ui/audiences/count", json={"query": "age > 30"}, headers={"X-CSRF-Token": c.csrf}
        )
        assert r.status_code == 409 and r.json()["error"]["not_built"] is True
        r = c.post("/audiences", data={"name": "x", "query": "age > 30", "csrf": c.csrf})
        assert r.status_code == 409 and 'href="/data"' in r.text
    finally:
        c.__exit__(None, None, None)


# -- leftover d: unexpected errors, one line each, never a blocked server --------------------------
def test_unexpected_errors_are_one_line_each_and_never_block_a_child_server(tmp_path):
    """``archer serve`` as a child whose stdout and stderr nobody reads (a pipe holds 64 KB).
    A store table gone from under it makes every request fail unexpectedly: each is a 500 with
    an error id, its traceback in the workspace's log, one short line in the pipe, and the
    server keeps answering."""
    import sqlite3

    import httpx

    from archer.store import apikeys
    from archer.web.errorlog import LOG_FILE, MAX_BYTES
    from test_tracking_server import ProcessServer, free_port

    ws = new_shop(tmp_path)
    with ws.session(write=True) as s:
        _, key = apikeys.create(s, "tests", created_by="test", now=utcnow())
    srv = ProcessServer(ws, free_port())
    srv.start()
    try:
        db = sqlite3.connect(ws.home / "archer.db")
        db.execute("alter table audiences rename to audiences_gone")
        db.commit()
        db.close()
        ids = []
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=srv.url, headers=headers, timeout=20) as c:
            for _ in range(120):
                r = c.get("/api/audiences")
                assert r.status_code == 500, r.text
                assert r.headers["content-type"].startswith("application/problem+json")
                ids.append(r.json()["error_id"])
                assert ids[-1] in r.json()["detail"] and "Traceback" not in r.text
            assert c.get("/health").status_code == 200
        log = (ws.home / LOG_FILE).read_text()
        assert ids[-1] in log and "OperationalError" in log and "Traceback" in log
        assert (ws.home / LOG_FILE).stat().st_size <= MAX_BYTES
    finally:
        srv.stop()
    out = srv.proc.stdout.read().decode()
    assert "Traceback" not in out
    lines = [x for x in out.splitlines() if "unexpected error" in x]
    assert len(lines) == 120 and all(len(x) < 500 for x in lines)
    assert all(i in out for i in ids)
