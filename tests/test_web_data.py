"""The Data page and ``POST /api/imports`` (issue 11 items 22 and leftover c): the CLI's
``--ignore-unknown-columns`` on both, the taobao-orders preset offered, times in the shop's
time zone, an import's progress as a job. In process (TestClient) on real DuckDB and SQLite
files."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from archer.clock import ManualClock
from archer.store import apikeys, users, utcnow
from archer.web import create_app
from archer.workspace import Workspace
from support import workspace

PASSWORD = "correct horse battery"
SLIP = b"order_id,created_at,paid_amoutn\nO1,2024-05-01,129.90\n"
NOW = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)  # 09:30 in Asia/Shanghai


def shop(root: Path) -> tuple[Workspace, str]:
    ws = workspace(root / "shop", ManualClock(NOW))
    with ws.session(write=True) as s:
        users.create(s, "alice", PASSWORD, now=utcnow())
        _, key = apikeys.create(s, "tests", created_by="test", now=utcnow())
    return ws, key


@pytest.fixture
def client(tmp_path):
    ws, key = shop(tmp_path)
    with TestClient(create_app(ws, sync_every=None), follow_redirects=False) as c:
        c.cookies.set("archer_lang", "en")  # the pages in English (a CNY shop's are in Chinese)
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        r = c.post("/login", data={"username": "alice", "password": PASSWORD, "csrf": token})
        assert r.status_code == 303
        c.csrf = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/data").text).group(1)
        c.key = key
        c.ws = ws
        yield c


def page_upload(c, name: str, content: bytes, table: str = "orders", **form):
    data = {"table": table, "csrf": c.csrf, **form}
    return c.post("/data/import", files={"file": (name, content)}, data=data)


def api_upload(c, name: str, content: bytes, table: str = "orders", **form):
    return c.post(
        "/api/imports",
        files={"file": (name, content)},
        data={"table": table, **form},
        headers={"Authorization": f"Bearer {c.key}"},
    )


# -- leftover c: --ignore-unknown-columns on the web ----------------------------------------------
def test_the_api_takes_ignore_unknown_columns(client):
    r = api_upload(client, "orders.csv", SLIP)
    assert r.status_code == 422 and "paid_amoutn" in r.json()["detail"]
    assert "ignore_unknown_columns" in r.json()["detail"]
    r = api_upload(client, "orders.csv", SLIP, ignore_unknown_columns="true")
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["inserted"] == 1 and doc["suggestions"] == {"paid_amoutn": ["paid_amount"]}


def test_the_data_page_takes_ignore_unknown_columns(client):
    html = client.get("/data").text
    assert 'name="ignore_unknown_columns"' in html
    r = page_upload(client, "orders.csv", SLIP)
    assert r.status_code == 422 and "paid_amoutn" in r.text
    r = page_upload(client, "orders.csv", SLIP, ignore_unknown_columns="on")
    assert r.status_code == 200, r.text
    assert 'id="import-result"' in r.text
    assert "<code>paid_amoutn</code>: did you mean <code>paid_amount</code>?" in r.text


# -- item 22: the Data page ------------------------------------------------------------------------
def test_the_data_page_offers_every_preset_in_a_fresh_process(tmp_path):
    """In a fresh interpreter (nothing imported the taobao module yet), as a server starts."""
    import subprocess
    import sys

    ws, _ = shop(tmp_path)
    code = (
        "import re, sys\n"
        "from fastapi.testclient import TestClient\n"
        "from archer.web import create_app\n"
        "from archer.workspace import open_workspace\n"
        "c = TestClient(create_app(open_workspace(sys.argv[1]), sync_every=None))\n"
        't = re.search(r\'name="csrf" value="([^"]+)"\', c.get(\'/login\').text).group(1)\n'
        "c.post('/login', data={'username': 'alice', 'password': sys.argv[2], 'csrf': t})\n"
        "print(' '.join(re.findall(r'<option value=\"([a-z-]+)\"', c.get('/data').text)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ws.home), PASSWORD],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert {"taobao-orders", "online-retail", "cdnow"} <= set(out), out


def test_import_times_are_in_the_shop_time_zone(client):
    assert client.ws.settings.timezone == "Asia/Shanghai"
    r = page_upload(client, "orders.csv", b"order_id,created_at\nO1,2024-05-01\n")
    assert r.status_code == 200
    html = client.get("/data").text
    assert "Finished (Asia/Shanghai)" in html
    assert "Nov 2, 2026 09:30" in html and "Nov 2, 2026 01:30" not in html


def test_an_import_from_the_page_is_a_job_with_its_progress(client):
    r = page_upload(client, "orders.csv", b"order_id,created_at\nO1,2024-05-01\nO2,2024-05-02\n")
    assert r.status_code == 200 and 'id="import-result"' in r.text
    job = client.app.state.jobs.recent("import", 1)[0]
    assert job["state"] == "done" and job["started_by"] == "alice"
    assert job["params"]["file"] == "orders.csv" and job["params"]["table"] == "orders"
    assert job["result"]["inserted"] == 2
    assert job["progress"] and all(p["done"] == p["total"] for p in job["progress"].values())
    doc = client.get("/ui/import/progress").json()
    assert doc["state"] == "done" and doc["file"] == "orders.csv"

    client.ws.clock.advance(minutes=1)  # the latest import is the one started last
    r = page_upload(client, "orders.csv", b"order_id,created_at\nO3,not a day\n")
    assert r.status_code == 200  # the rejected rows are in the quarantine, the job is done
    client.ws.clock.advance(minutes=1)
    bad = page_upload(client, "orders.csv", SLIP)
    assert bad.status_code == 422
    job = client.app.state.jobs.recent("import", 1)[0]
    assert job["state"] == "failed" and "paid_amoutn" in job["error"]
    assert client.get("/ui/import/progress").json()["state"] == "failed"


def test_the_page_shows_an_import_that_is_running_and_refuses_a_second(client):
    """A job of the import kind that the test holds running (its work waits for the test)."""
    import threading

    go = threading.Event()

    def work(report):
        report("reading", 40, 100)
        go.wait(30)
        return {"inserted": 0}

    jobs = client.app.state.jobs
    client.ws.clock.advance(minutes=1)
    job = jobs.start("import", work, who="bob", params={"file": "big.csv", "table": "orders"})
    try:
        doc = client.get("/ui/import/progress").json()
        assert doc["state"] == "running" and doc["file"] == "big.csv"
        assert doc["started_by"] == "bob"
        html = client.get("/data").text
        assert 'id="import-status"' in html and 'data-state="running"' in html
        assert "big.csv" in html and "bob" in html
        r = page_upload(client, "orders.csv", b"order_id,created_at\nO9,2024-05-01\n")
        assert r.status_code == 409 and "an import is running already" in r.text
        assert not list((client.ws.home / "uploads").glob("*/*"))  # the refused upload is gone
    finally:
        go.set()
        jobs.wait(job["id"], 30)
    assert client.get("/ui/import/progress").json()["state"] == "done"
