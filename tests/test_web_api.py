"""The REST API (archer.web.api) on a small built shop: each endpoint answers what the core
function answers, refuses requests without credentials or from another site, turns hostile
input into problem details, and walks every list page by page."""

from __future__ import annotations

import io
import json
import re
import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from archer.analytics import reports
from archer.audiences import count, members, snapshots
from archer.audiences import service as svc
from archer.customers.describe import load_profile
from archer.pipeline import build
from archer.plain import plain, records
from archer.store import apikeys, users, utcnow
from archer.web import create_app
from test_profile import AS_OF, load_sample

pytestmark = pytest.mark.xdist_group("web_api")  # one worker builds the shop once
PASSWORD = "s3cret-password"
VIP = "total_spent >= 300"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    ws, _ = load_sample(tmp_path_factory, "web_api", customers=300, seed=3)
    build(ws, AS_OF)
    with ws.session(write=True) as s:
        users.create(s, "olga", PASSWORD, now=utcnow())
        _, key = apikeys.create(s, "tests", created_by="test", now=utcnow())
    app = create_app(ws, sync_every=None)
    c = TestClient(app, follow_redirects=False, headers={"Authorization": f"Bearer {key}"})
    c.ws = ws
    return c


@pytest.fixture
def browser(shop):
    """A signed-in session, as the pages use the API (cookie + X-CSRF-Token)."""
    c = TestClient(shop.app, follow_redirects=False)
    form = c.get("/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    r = c.post("/login", data={"username": "olga", "password": PASSWORD, "csrf": token})
    assert r.status_code == 303
    c.csrf = c.get("/api/me").json()["csrf"]
    return c


def problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    doc = r.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(doc)
    return doc


def walk(c: TestClient, url: str, **params) -> list:
    """Every item of a paginated list, following ``next``."""
    items, pages = [], 0
    r = c.get(url, params=params)
    while True:
        assert r.status_code == 200, r.text
        doc = r.json()
        items += doc.get("items", doc.get("rows"))
        pages += 1
        if not doc["next"]:
            return items
        r = c.get(doc["next"])


def roundtrip(doc):
    return json.loads(json.dumps(plain(doc)))


# Every route, with a method and a path that reaches it.
ROUTES = [
    ("GET", "/api/me"),
    ("GET", "/api/customers"),
    ("GET", "/api/customers/C0000001"),
    ("GET", "/api/audiences"),
    ("POST", "/api/audiences"),
    ("POST", "/api/audiences/count"),
    ("GET", "/api/audiences/x"),
    ("PUT", "/api/audiences/x"),
    ("DELETE", "/api/audiences/x"),
    ("GET", "/api/audiences/x/count"),
    ("GET", "/api/audiences/x/members"),
    ("GET", "/api/audiences/x/explain/C0000001"),
    ("GET", "/api/audiences/x/export"),
    ("GET", "/api/audiences/x/history"),
    ("GET", "/api/audiences/x/changes"),
    ("GET", "/api/views/funnel"),
    ("GET", "/api/views/cohorts"),
    ("GET", "/api/views/affinities"),
    ("GET", "/api/views/recommendations"),
    ("GET", "/api/views/kpis"),
    ("POST", "/api/imports"),
    ("GET", "/api/imports"),
    ("GET", "/api/imports/x/quarantine"),
    ("POST", "/api/builds"),
    ("GET", "/api/builds"),
    ("GET", "/api/builds/x"),
    ("GET", "/api/campaign-templates"),
    ("GET", "/api/campaign-templates/x"),
    ("GET", "/api/campaigns"),
    ("POST", "/api/campaigns"),
    ("POST", "/api/campaigns/run"),
    ("GET", "/api/campaign-rounds"),
    ("GET", "/api/campaign-rounds/x"),
    ("GET", "/api/campaigns/x"),
    ("PUT", "/api/campaigns/x"),
    ("POST", "/api/campaigns/x/start"),
    ("POST", "/api/campaigns/x/pause"),
    ("POST", "/api/campaigns/x/resume"),
    ("POST", "/api/campaigns/x/end"),
    ("GET", "/api/campaigns/x/ledger"),
    ("GET", "/api/campaigns/x/results"),
    ("GET", "/api/campaigns/x/targeting"),
    ("POST", "/api/campaigns/x/targeting"),
    ("GET", "/api/campaigns/x/preview"),
    ("GET", "/api/consent/C0000001"),
    ("PUT", "/api/consent/C0000001"),
    ("GET", "/api/suppressions"),
    ("POST", "/api/suppressions"),
    ("DELETE", "/api/suppressions/x/x"),
    ("GET", "/api/coupon-templates"),
    ("POST", "/api/coupon-templates"),
    ("GET", "/api/coupon-templates/x"),
    ("POST", "/api/coupon-templates/x/issue"),
    ("POST", "/api/coupon-templates/x/pool"),
    ("GET", "/api/customers/C0000001/coupons"),
    ("GET", "/api/points/C0000001"),
    ("POST", "/api/points/C0000001/award"),
    ("POST", "/api/points/C0000001/exchange"),
    ("GET", "/api/o2o/events"),
    ("POST", "/api/o2o/events"),
    ("GET", "/api/o2o/events/x"),
    ("POST", "/api/o2o/events/x/signups"),
    ("POST", "/api/o2o/events/x/checkins"),
    ("GET", "/api/o2o/events/x/report"),
    ("POST", "/api/o2o/payments"),
    ("GET", "/api/hotwords"),
    ("GET", "/api/themes/plan"),
    ("POST", "/api/themes/plan"),
    ("GET", "/api/themes/products"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
]


def test_the_route_list_covers_the_api(shop):
    listed = {(m, re.sub(r"/x\b|/C0000001", "/{}", p)) for m, p in ROUTES}
    # the reference lists every API route (newer FastAPI nests included routers in app.routes)
    paths = shop.app.openapi()["paths"]
    assert len(paths) > 40
    for path, ops in paths.items():
        if not path.startswith("/api/"):
            continue
        for m in ops:
            assert (m.upper(), re.sub(r"\{[^}]+\}", "{}", path)) in listed, (m, path)


def test_every_endpoint_refuses_requests_without_credentials(shop):
    anon = TestClient(shop.app, follow_redirects=False)
    for method, path in ROUTES:
        r = anon.request(method, path, json={"query": VIP})
        assert problem(r, 401)["type"].endswith("unauthorized"), (method, path)
        r = anon.request(method, path, headers={"Authorization": "Bearer ak_forged"})
        problem(r, 401)


def test_unsafe_calls_from_a_session_need_the_csrf_token_and_the_same_site(browser):
    for method, path in ROUTES:
        if method == "GET":
            continue
        r = browser.request(method, path, json={"query": VIP})
        assert problem(r, 403)["type"].endswith("csrf"), (method, path)
        r = browser.request(
            method,
            path,
            json={"query": VIP},
            headers={"X-CSRF-Token": browser.csrf, "Origin": "https://evil.example"},
        )
        assert problem(r, 403)["type"].endswith("cross-site"), (method, path)
    r = browser.post(
        "/api/audiences/count", json={"query": VIP}, headers={"X-CSRF-Token": browser.csrf}
    )
    assert r.status_code == 200 and r.json()["count"] == count(browser.app.state.ws, VIP)["count"]
    assert browser.get("/api/customers", params={"limit": 2}).status_code == 200  # GET: no token


def test_customers_pages_walk_every_member_once_and_profiles_match(shop):
    q = 'lifecycle in ("lost", "lapsing") or total_spent > 200'
    got = walk(shop, "/api/customers", query=q, limit=7, fields="lifecycle,total_spent")
    want = records(members(shop.ws, q, fields=["lifecycle", "total_spent"]), days=True)
    assert got == want and len({r["customer_id"] for r in got}) == len(got) > 14
    everyone = walk(shop, "/api/customers", limit=1000)
    assert len(everyone) == 300
    assert set(everyone[0]) == {
        "customer_id",
        "name",
        "lifecycle",
        "stage",
        "rfm_segment",
        "total_spent",
    }
    cid = everyone[17]["customer_id"]
    assert shop.get(f"/api/customers/{cid}").json() == roundtrip(load_profile(shop.ws, cid))
    assert "nobody" in problem(shop.get("/api/customers/nobody"), 404)["detail"]


def test_count_answers_like_the_core_and_language_errors_are_positioned(shop):
    q = 'total_spent >= 100 and province in ("Jiangsu", "Zhejiang")'
    r = shop.post("/api/audiences/count", json={"query": q})
    core = count(shop.ws, q)  # the core also says what it normalised (the page shows it)
    assert r.json() == {k: v for k, v in core.items() if not k.startswith("normalised")}
    doc = problem(shop.post("/api/audiences/count", json={"query": "totl_spent >= 100"}), 400)
    assert doc["line"] == 1 and doc["column"] == 1 and "total_spent" in doc["suggestions"]
    assert "totl_spent" in doc["detail"] and doc["type"].endswith("audience-language")
    doc = problem(shop.post("/api/audiences/count", json={"query": "total_spent >=\n  or"}), 400)
    assert doc["line"] == 2
    assert "GET" in problem(shop.post("/api/customers", json={}), 405)["detail"]


def test_a_chinese_audience_name_has_a_location_that_leads_to_it(shop):
    name = "高价值 客户 2026"
    r = shop.post("/api/audiences", json={"name": name, "query": VIP})
    assert r.status_code == 201, r.text
    where = r.headers["location"]
    assert where.isascii() and where.startswith("/api/audiences/")
    assert shop.get(where).json()["name"] == name
    assert shop.delete(where).status_code in (200, 204)


def test_audiences_create_update_members_explain_export_delete(shop):
    r = shop.post("/api/audiences", json={"name": "big spenders", "query": VIP})
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["created_by"] == "key:tests" and doc["count"] == count(shop.ws, VIP)["count"]
    assert r.headers["location"] == "/api/audiences/big%20spenders"
    problem(shop.post("/api/audiences", json={"name": "big spenders", "query": VIP}), 409)
    assert shop.get("/api/audiences/big spenders").json() == svc.get(shop.ws, "big spenders")
    assert shop.get("/api/audiences/big spenders/count").json()["count"] == doc["count"]

    got = walk(shop, "/api/audiences/big spenders/members", limit=5, fields="total_spent")
    want = records(svc.members_of(shop.ws, "big spenders", fields=["total_spent"]), days=True)
    assert got == want and len(got) == doc["count"] > 5
    cid = got[0]["customer_id"]
    r = shop.get(f"/api/audiences/big spenders/explain/{cid}")
    assert r.json() == roundtrip(svc.explain_member(shop.ws, "big spenders", cid))
    problem(shop.get("/api/audiences/big spenders/explain/nobody"), 404)

    r = shop.get("/api/audiences/big spenders/export", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    csv = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig", dtype={"customer_id": str})
    assert list(csv.customer_id) == [m["customer_id"] for m in got]
    r = shop.get("/api/audiences/big spenders/export", params={"format": "parquet"})
    assert list(pd.read_parquet(io.BytesIO(r.content)).customer_id) == list(csv.customer_id)
    problem(shop.get("/api/audiences/big spenders/export", params={"format": "xls"}), 422)

    r = shop.put("/api/audiences/big spenders", json={"query": "total_spent >= 600"})
    assert r.json()["count"] == count(shop.ws, "total_spent >= 600")["count"] < doc["count"]
    assert r.json()["created_by"] == "key:tests"
    shop.post("/api/audiences", json={"name": "biggest", "query": 'in_audience("big spenders")'})
    assert "biggest" in problem(shop.delete("/api/audiences/big spenders"), 409)["detail"]
    assert shop.delete("/api/audiences/biggest").status_code == 200
    assert shop.delete("/api/audiences/big spenders").json()["name"] == "big spenders"
    assert "big spenders" in problem(shop.get("/api/audiences/big spenders"), 404)["detail"]


def test_audience_lists_are_paginated(shop):
    for i in range(5):
        r = shop.post("/api/audiences", json={"name": f"page {i}", "query": f"total_spent > {i}"})
        assert r.status_code == 201
    names = [a["name"] for a in walk(shop, "/api/audiences", limit=2)]
    assert names == [a["name"] for a in svc.list_audiences(shop.ws)]
    assert {f"page {i}" for i in range(5)} <= set(names)
    problem(shop.get("/api/audiences", params={"cursor": "bm90LWEtY3Vyc29y"}), 400)
    problem(shop.get("/api/audiences", params={"limit": 0}), 422)
    problem(shop.get("/api/audiences", params={"limit": "many"}), 422)


def test_hostile_input_gets_4xx_problem_details_never_500(shop):
    script = "<script>alert(1)</script>"
    cases = [
        ("POST", "/api/audiences/count", {"json": {"query": 12}}, 422),
        ("POST", "/api/audiences/count", {"json": {"query": script}}, 400),
        ("POST", "/api/audiences/count", {"json": {"query": "x" * 30_000}}, 422),
        (
            "POST",
            "/api/audiences/count",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            422,
        ),
        ("POST", "/api/audiences/count", {"json": {"query": "a" * 2_000_000}}, 413),
        ("POST", "/api/audiences", {"json": {"name": 'a"b', "query": VIP}}, 422),
        ("POST", "/api/audiences", {"json": {"name": "", "query": VIP}}, 422),
        ("POST", "/api/audiences", {"json": ["not", "an", "object"]}, 422),
        ("GET", f"/api/customers?query={script}", {}, 400),
        ("GET", f"/api/audiences/{script}", {}, 404),
        ("GET", "/api/views/kpis?grain=fortnight", {}, 422),
        ("GET", "/api/views/cohorts?as_of=yesterday", {}, 422),
        ("GET", "/api/views/affinities?min_support=2", {}, 422),
        ("GET", "/api/builds/..%2F..%2Fetc", {}, 404),
        ("GET", "/api/imports/../quarantine", {}, 404),
        ("GET", "/api/nothing-here", {}, 404),
    ]
    for method, path, kw, status in cases:
        r = shop.request(method, path, **kw)
        doc = problem(r, status)
        assert doc["detail"], (path, doc)
    # A script in a saved name comes back as JSON text, never as markup to run.
    assert (
        "'/'"
        in problem(shop.post("/api/audiences", json={"name": script, "query": VIP}), 422)["detail"]
    )  # a name is part of URLs
    tag = "<img src=x onerror=alert(1)>"
    r = shop.post("/api/audiences", json={"name": tag, "query": VIP})
    assert r.status_code == 201 and r.headers["content-type"] == "application/json"
    assert r.json()["name"] == tag
    assert shop.delete(f"/api/audiences/{tag}").status_code == 200


def test_views_answer_like_the_core_reports(shop):
    ws = shop.ws
    day = AS_OF.isoformat()
    checks = {
        "funnel?by=channel": reports.funnel_report(ws, AS_OF, "channel"),
        "cohorts?months=6": reports.cohorts_report(ws, AS_OF, "first_purchase", 6),
        "affinities?scope=customer&window_days=60": reports.affinities_report(
            ws, AS_OF, "category", "customer", 60
        ),
        "recommendations?k=2": reports.recommendations_report(ws, AS_OF, 2),
        "kpis?grain=week&last=8": reports.kpis_report(ws, AS_OF, "week", 8),
    }
    for q, want in checks.items():
        name, _, params = q.partition("?")
        url = f"/api/views/{name}?as_of={day}&{params}"
        r = shop.get(url)
        assert r.status_code == 200, (url, r.text)
        got = r.json()
        want = roundtrip(want)
        assert got["rows"][:1000] == want["rows"][:1000] or got["rows"] == want["rows"]
        assert {k: v for k, v in got.items() if k not in ("rows", "limit", "next")} == {
            k: v for k, v in want.items() if k != "rows"
        }
    rows = walk(shop, f"/api/views/cohorts?as_of={day}", limit=50)
    assert rows == roundtrip(reports.cohorts_report(ws, AS_OF))["rows"] and len(rows) > 50


def test_upload_with_bad_rows_quarantines_them_for_download(shop):
    csv = (
        "customer_id,registered_at,name,province\n"
        "W1,2026-01-05,张三,江苏省\n"
        "W2,not a date,李四,Shanghai\n"
        "W3,2026-02-07,<script>x</script>,Zhejiang\n"
    ).encode()
    r = shop.post(
        "/api/imports",
        files={"file": ("../../etc/shop export.csv", csv, "text/csv")},
        data={"table": "customers"},
    )
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["rows_read"] == 3 and doc["inserted"] == 2 and doc["rejected"] == 1
    assert doc["import_id"] and doc["quarantine_url"].endswith("/quarantine")
    q = shop.get(doc["quarantine_url"])
    assert q.status_code == 200 and q.headers["content-type"].startswith("text/csv")
    assert "not a date" in q.content.decode("utf-8-sig") and "W2" in q.text
    listed = walk(shop, "/api/imports", limit=1)
    assert listed[0]["import_id"] == doc["import_id"] and listed[0]["rejected"] == 1
    assert not (shop.ws.home / "uploads").exists() or not any((shop.ws.home / "uploads").iterdir())

    bad = [
        ({"table": "nonsense"}, ("a.csv", b"x,y\n1,2\n"), 422),
        ({"table": "customers"}, ("a.exe", b"MZ..", "application/octet-stream"), 415),
        ({"table": "customers", "mapping": "{broken"}, ("a.csv", b"x\n1\n"), 422),
        ({"table": "customers", "preset": "nope"}, ("a.csv", b"x\n1\n"), 422),
        ({}, ("a.csv", b"x\n1\n"), 422),
    ]
    for data, file, status in bad:
        problem(shop.post("/api/imports", data=data, files={"file": file}), status)
    problem(shop.get("/api/imports/nope/quarantine"), 404)


def wait(c: TestClient, build_id: str) -> dict:
    deadline = time.time() + 300
    while (doc := c.get(f"/api/builds/{build_id}").json())["state"] == "running":
        assert time.time() < deadline
        time.sleep(0.2)
    return doc


def test_a_build_runs_in_the_background_and_reports_progress(shop):
    shop.post("/api/audiences", json={"name": "grown", "query": VIP})
    r = shop.post("/api/builds", json={"as_of": AS_OF.isoformat()})
    assert r.status_code == 202, r.text
    b = r.json()
    assert b["state"] == "running" and r.headers["location"] == f"/api/builds/{b['id']}"
    again = shop.post("/api/builds", json={"as_of": AS_OF.isoformat()})
    if again.status_code == 409:  # still running: it says which
        assert problem(again, 409)["build"] == b["id"]
    else:  # the first one was quick: wait for the second as well
        assert again.status_code == 202
        wait(shop, again.json()["id"])
    doc = wait(shop, b["id"])
    assert doc["state"] == "done", doc
    assert doc["result"]["customers"] >= 300 and doc["progress"]["profile"]["done"] == 10
    assert doc["started_by"] == "key:tests"
    history = walk(shop, "/api/audiences/grown/history")
    assert history == snapshots.history(shop.ws, "grown")
    assert history[-1]["as_of"] == AS_OF.isoformat()
    changes = shop.get("/api/audiences/grown/changes").json()
    assert changes == snapshots.changes(shop.ws, "grown")
    assert b["id"] in [x["id"] for x in walk(shop, "/api/builds")]
    problem(shop.get("/api/builds/unknown"), 404)


def test_the_reference_at_docs_lists_every_endpoint_and_needs_no_internet(shop):
    r = shop.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for _, path in ROUTES:
        if path.startswith("/api/"):
            assert re.sub(r"/(x|C0000001)\b.*", "/{", path) in r.text
    assert "AudienceCreate" in r.text and "<script" not in r.text and "https://cdn" not in r.text
    anon = TestClient(shop.app, follow_redirects=False)
    assert (
        anon.get("/docs", headers={"accept": "text/html"})
        .headers["location"]
        .startswith("/login?next=/docs")
    )
    assert shop.get("/redoc").status_code == 404
