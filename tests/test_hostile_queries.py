"""Hostile queries and ids at the REST API, the pages and the CLI (issue 11, items 2, 9, 10, 11):
a query nested hundreds deep is a positioned 400 and the server keeps answering; long and/or
chains work; a NUL in an id or a query is a 4xx; a cursor past any list is a 400."""

from __future__ import annotations

import base64
import re

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from archer.audiences import AudienceError, parse
from archer.audiences import tree as t
from archer.audiences.grammar import MAX_DEPTH
from archer.cli import app as cli_app
from archer.pipeline import build
from archer.store import apikeys, users, utcnow
from archer.store import audiences as stored_audiences
from archer.web import create_app
from archer.web.api.common import MAX_OFFSET
from test_profile import AS_OF, load_sample
from test_tracking_server import ProcessServer, free_port

pytestmark = pytest.mark.xdist_group("hostile_queries")
PASSWORD = "s3cret-password"
LEAF = "net_spent > 1"
NOTS = "not " * 300 + LEAF  # the query of the report: a 500, then a server that answers nothing


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    ws, _ = load_sample(tmp_path_factory, "hostile_queries", customers=150, seed=11)
    build(ws, AS_OF)
    with ws.session(write=True) as s:
        users.create(s, "olga", PASSWORD, now=utcnow())
        _, key = apikeys.create(s, "tests", created_by="test", now=utcnow())
    return ws, key


@pytest.fixture(scope="module")
def api(shop):
    ws, key = shop
    c = TestClient(
        create_app(ws, sync_every=None),
        follow_redirects=False,
        raise_server_exceptions=False,  # a 500 is what these tests look for, not an exception
        headers={"Authorization": f"Bearer {key}"},
    )
    r = c.post("/api/audiences", json={"name": "vip", "query": "total_spent >= 300"})
    assert r.status_code == 201, r.text
    return c


def problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# -- the language: nesting bounded, chains flat ---------------------------------------------------
def test_a_chain_of_nots_is_refused_at_the_first_not_too_deep():
    with pytest.raises(AudienceError) as e:
        parse(NOTS)
    assert "nested more than 64 deep" in e.value.message
    at = 4 * MAX_DEPTH  # the 65th "not" starts after 64 of them
    assert (e.value.line, e.value.column, e.value.start, e.value.end) == (1, at + 1, at, at + 3)


def test_nesting_up_to_the_limit_is_fine_and_counts_not_and_or_alike():
    assert isinstance(parse("not " * MAX_DEPTH + LEAF), t.Not)
    deep = LEAF
    for i in range(MAX_DEPTH // 2):  # not ( … and … ): two levels per parenthesis
        deep = f"not ({deep} and n_orders > {i})"
    parse(deep)
    with pytest.raises(AudienceError, match="nested more than 64 deep"):
        parse(f"not ({deep} and n_orders > 0)")


@pytest.mark.parametrize("op, n", [("and", 600), ("or", 500), ("and", 1300), ("or", 1300)])
def test_long_and_or_chains_are_one_flat_combination(op, n):
    node = parse(f" {op} ".join(["n_orders>0"] * n))  # 1,300 of them: under 20,000 characters
    assert isinstance(node, t.And if op == "and" else t.Or) and len(node.operands) == n


def test_a_nul_in_a_query_is_a_placed_error():
    with pytest.raises(AudienceError, match="NUL") as e:
        parse('name = "a\x00b"')
    assert (e.value.line, e.value.column) == (1, 10)
    with pytest.raises(AudienceError, match="NUL") as e:
        parse('n_orders > 1 and name = "\\x00"')  # written as an escape
    assert e.value.column == 25


# -- a real server: the hostile query is a 400, and the server still answers ----------------------
def test_the_hostile_query_is_a_400_and_the_server_keeps_answering(shop):
    """``archer serve`` in its own process, its output in a pipe nobody reads (as under a
    supervisor that is slow to drain it): before, the 3,000-line RecursionError traceback
    filled the pipe and blocked the event loop on the write — no answer to anything after."""
    ws, key = shop
    h = {"Authorization": f"Bearer {key}"}
    srv = ProcessServer(ws, free_port())
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, headers=h, timeout=30) as c:
            doc = problem(c.post("/api/audiences/count", json={"query": NOTS}), 400)
            assert doc["title"] == "The audience cannot be read"
            assert "nested more than 64 deep" in doc["message"]
            assert (doc["line"], doc["column"], doc["start"]) == (1, 257, 256)
            for _ in range(3):
                problem(c.post("/api/audiences/count", json={"query": NOTS}), 400)
            assert c.get("/health", timeout=10).json() == {"status": "ok"}
            normal = c.post("/api/audiences/count", json={"query": LEAF})
            assert normal.status_code == 200 and normal.json()["count"] > 0
            for op, n in (("and", 600), ("or", 500)):
                r = c.post("/api/audiences/count", json={"query": f" {op} ".join([LEAF] * n)})
                assert r.status_code == 200, r.text
                assert r.json()["count"] == normal.json()["count"]
                assert len(r.json()["clauses"]) == n
            assert c.get("/health", timeout=10).status_code == 200
    finally:
        srv.stop()


def test_a_chain_of_references_too_deep_to_evaluate_is_a_422_not_a_500(shop, api):
    """Each saved audience is within the limits; together they nest deeper than the libraries
    recurse. The net under the language's bound: a 422, and the server goes on."""
    ws, _ = shop
    with ws.session(write=True) as s:  # stored directly: saving through the API counts each
        prev = "total_spent >= 0"
        for i in range(40):
            stored_audiences.put(
                s, f"deep{i}", "not " * 60 + prev, description=None, user="test", now=utcnow()
            )
            prev = f'in_audience("deep{i}")'
    try:
        doc = problem(api.post("/api/audiences/count", json={"query": prev}), 422)
        assert doc["type"].endswith("too-deep") and "nests too deeply" in doc["detail"]
        # Saving the next link is refused the same way: the API cannot build such a chain.
        r = api.post("/api/audiences", json={"name": "deeper", "query": prev})
        assert problem(r, 422)["type"].endswith("too-deep")
        assert api.get("/health").status_code == 200
        assert api.post("/api/audiences/count", json={"query": LEAF}).status_code == 200
    finally:
        with ws.session(write=True) as s:
            for i in range(40):
                stored_audiences.remove(s, f"deep{i}")


# -- the CLI: one line, no traceback --------------------------------------------------------------
def test_the_cli_says_one_line_for_the_hostile_query(shop):
    ws, _ = shop
    r = CliRunner().invoke(cli_app, ["audience", "count", NOTS, "--home", str(ws.home)])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    first = r.stderr.strip().splitlines()[0]
    assert first.startswith("error: not, and, or nested more than 64 deep") and "1:257" in first


# -- NUL in an id ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, params",
    [
        ("/api/customers/%00", {}),
        ("/api/customers/C0000001%00", {}),
        ("/api/audiences/vip/explain/%00", {}),
        ("/api/views/recommendations", {"customer": "\x00"}),
        ("/api/customers", {"query": 'name = "\x00"'}),
    ],
)
def test_a_nul_in_an_id_or_a_query_is_a_400(api, path, params):
    doc = problem(api.get(path, params=params), 400)
    assert "NUL" in doc["detail"]


def test_the_pages_refuse_a_nul_id_and_the_hostile_query(api):
    c = TestClient(api.app, follow_redirects=False, raise_server_exceptions=False)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    r = c.post("/login", data={"username": "olga", "password": PASSWORD, "csrf": token})
    assert r.status_code == 303
    assert c.get("/customers/%00").status_code == 404
    assert c.get("/customers/C0000001%00").status_code == 404
    assert c.get("/customers", params={"q": 'name = "\x00"'}).status_code == 422
    assert c.get("/customers/C0000001").status_code == 200
    # The audience editor's live count reaches the same parser: a placed 422, then it counts.
    csrf = {"X-CSRF-Token": c.get("/api/me").json()["csrf"]}
    r = c.post("/ui/audiences/count", json={"query": NOTS}, headers=csrf)
    assert r.status_code == 422 and "nested more than 64 deep" in r.text, r.text
    assert c.post("/ui/audiences/count", json={"query": LEAF}, headers=csrf).status_code == 200


# -- cursors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/api/customers", "/api/imports", "/api/audiences/vip/members", "/api/audiences"]
)
def test_a_cursor_past_any_list_is_a_400(api, path):
    for n in ("9" * 40, str(MAX_OFFSET + 1)):
        doc = problem(api.get(path, params={"cursor": cursor("o:" + n)}), 400)
        assert doc["type"].endswith("invalid-cursor")
    r = api.get(path, params={"cursor": cursor(f"o:{MAX_OFFSET}")})
    assert r.status_code == 200 and r.json()["items"] == [] and r.json()["next"] is None
