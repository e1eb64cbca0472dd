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
