"""The operator's pages in process (TestClient): each renders on a small built shop, hostile
names and queries come back escaped, and nothing answers without signing in."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from archer.audiences import service as svc
from archer.config import Settings
from archer.ingest.importer import import_file
from archer.pipeline import build
from archer.sample import generate
from archer.schema import LOAD_ORDER
from archer.store import users, utcnow
from archer.web import create_app
from conftest import NOW
from support import workspace

AS_OF = date(2026, 9, 30)
PASSWORD = "correct horse battery"
HOSTILE = "<script>alert(1)</script>"
EVIL_ID = "C0000001"


def make_shop(root: Path, customers: int = 300) -> Settings:
    """A small sample shop with a script for a name, imported and built as of AS_OF."""
    generate(root / "sample", customers=customers, seed=11, fmt="parquet")
    f = root / "sample" / "customers.parquet"
    c = pd.read_parquet(f)
    c.loc[c.customer_id == EVIL_ID, "name"] = HOSTILE
    c.to_parquet(f, index=False)
    ws = workspace(root / "shop")
    for t in LOAD_ORDER:
        assert import_file(ws, t, root / "sample" / f"{t}.parquet", now=NOW).rejected == 0
    build(ws, AS_OF)
    with ws.session(write=True) as s:
        users.create(s, "alice", PASSWORD, now=utcnow())
    return ws


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Settings:
    return make_shop(tmp_path_factory.mktemp("pages"))


@pytest.fixture(scope="module")
def client(shop):
    with TestClient(create_app(shop, sync_every=None), follow_redirects=False) as c:
        c.cookies.set("archer_lang", "en")  # the pages in English (a CNY shop's are in Chinese)
        sign_in(c)
        yield c


def token_of(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def sign_in(c: TestClient, password: str = PASSWORD) -> None:
    login = c.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
    r = c.post("/login", data={"username": "alice", "password": password, "csrf": token})
    assert r.status_code == 303, r.text


PAGES = ["/", "/customers", f"/customers/{EVIL_ID}", "/audiences", "/campaigns", "/offers", "/data"]
PAGES.append("/o2o")


@pytest.mark.parametrize("path", PAGES)
def test_each_page_renders_for_a_signed_in_operator(client, path):
    r = client.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html; charset=utf-8")
    assert "alice" in r.text and 'aria-current="page"' in r.text
    assert "/static/vendor/echarts.min.js" in r.text


@pytest.mark.parametrize("path", [*PAGES, "/audiences/x", "/ui/build/progress"])
def test_nothing_answers_without_signing_in(shop, path):
    with TestClient(create_app(shop, sync_every=None), follow_redirects=False) as c:
        r = c.get(path, headers={"accept": "text/html"})
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login?next=")
        r = c.post("/ui/audiences/count", json={"query": "age > 1"})
        assert r.status_code in (401, 303)


def test_overview_carries_every_chart_with_its_numbers(client):
    html = client.get("/").text
    for chart in ("kpis", "funnel", "lifecycle", "stages", "rfm", "cohorts", "clv"):
        assert f'data-chart="{chart}-spec"' in html, chart
        assert f'id="{chart}-spec"' in html
    assert html.count("<summary>Table</summary>") == 7
    assert "as of Sep 30, 2026" in html


def test_a_hostile_name_is_shown_escaped(client):
    for path in (f"/customers/{EVIL_ID}", f"/customers?q=customer_id+%3D+%22{EVIL_ID}%22"):
        html = client.get(path).text
        assert HOSTILE not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_hostile_query_is_shown_escaped_at_its_error(client):
    q = f'name = "x" and {HOSTILE}'
    r = client.get("/customers", params={"q": q})
    assert r.status_code == 422
    assert HOSTILE not in r.text and "<script>alert" not in r.text
    assert "&lt;script&gt;" in r.text and "<mark>" in r.text


def test_search_shows_counts_per_clause_and_pages(client):
    r = client.get("/customers", params={"q": 'stage = "potential" or n_orders >= 1'})
    assert r.status_code == 200
    assert "alone:" in r.text
    assert r.text.count('href="/customers/C') == 50  # one page
    assert 'rel="next"' in r.text


def test_a_typo_is_placed_and_a_suggestion_given(client):
    r = client.get("/customers", params={"q": 'provnce = "Jiangsu"'})
    assert r.status_code == 422
    assert "<mark>provnce</mark>" in r.text
    assert "unknown field" in r.text and '<code class="suggestion">province</code>' in r.text


def test_live_count_needs_the_csrf_header(client):
    r = client.post("/ui/audiences/count", json={"query": "n_orders >= 1"})
    assert r.status_code == 403
    token = token_of(client.get("/audiences").text)
    r = client.post(
        "/ui/audiences/count",
        json={"query": "n_orders >= 1 and gender = 'f'"},
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 200
    doc = r.json()
    assert doc["count"] > 0 and [c["clause"] for c in doc["clauses"]] == [
        "n_orders >= 1",
        "gender = 'f'",
    ]
    r = client.post(
        "/ui/audiences/count", json={"query": "n_ordrs >= 1"}, headers={"X-CSRF-Token": token}
    )
    assert r.status_code == 422
    err = r.json()["error"]
    assert (err["before"], err["at"], err["after"]) == ("", "n_ordrs", " >= 1")
    assert "n_orders" in err["suggestions"]


def test_save_show_export_delete_an_audience_with_a_hostile_name(client, shop):
    token = token_of(client.get("/audiences").text)
    hostile = "<img src=x onerror=alert(1)>"  # no '/': names are part of addresses
    name = f"高价值 {hostile}"
    q = "net_spent >= 100"
    r = client.post("/audiences", data={"name": name, "query": q, "csrf": token})
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert page.status_code == 200
    assert hostile not in page.text and "高价值 &lt;img" in page.text
    n = svc.count_of(shop, name)["count"]
    assert f'id="audience-count">{n:,}<' in page.text
    listing = client.get("/audiences").text
    assert hostile not in listing and name.replace("<", "&lt;").replace(">", "&gt;") in listing
    export = client.get(r.headers["location"] + "/export.csv")
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert len(rows) == n and "customer_id" in rows[0]
    # the customer page says why a member is in it
    member = rows[0]["customer_id"]
    html = client.get(f"/customers/{member}").text
    assert "net_spent is" in html or "net_spent</code>" in html
    r = client.post(r.headers["location"] + "/delete", data={"csrf": token})
    assert r.status_code == 303
    assert name not in [a["name"] for a in svc.list_audiences(shop)]


@pytest.mark.parametrize("name", ["a/b", "..", "."])
def test_a_name_the_api_could_not_reach_is_refused_on_the_page_too(client, shop, name):
    token = token_of(client.get("/audiences").text)
    r = client.post("/audiences", data={"name": name, "query": "net_spent >= 1", "csrf": token})
    assert r.status_code == 422 and "audience name" in r.text
    assert name not in [a["name"] for a in svc.list_audiences(shop)]


def test_saving_a_bad_query_keeps_what_was_typed(client):
    token = token_of(client.get("/audiences").text)
    r = client.post("/audiences", data={"name": "typo", "query": "total_spent >= ", "csrf": token})
    assert r.status_code == 422
    assert "ends too early" in r.text and "total_spent &gt;= " in r.text


def test_a_form_post_without_its_token_is_refused(client):
    r = client.post("/audiences", data={"name": "x", "query": "n_orders >= 1"})
    assert r.status_code == 403
    r = client.post("/data/build")
    assert r.status_code == 403


def test_the_quarantine_only_serves_its_own_files(client, shop):
    for bad in ("..%2Farcher.toml", "secret.key", "x.csv"):
        assert client.get(f"/data/quarantine/{bad}").status_code == 404
