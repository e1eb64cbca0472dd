"""`archer serve` with its operational store on PostgreSQL, end to end: ARCHER_DATABASE names a
database on the test server, the CLI makes the accounts, the server (its own process) signs an
operator in, reads the saved audiences, takes tracking events, and `archer sync` loads them.

(Saving an audience over the API needs a built shop to count it; the store's part of that,
on PostgreSQL, is in tests/test_store.py.)"""

from __future__ import annotations

import re

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from archer.cli import app as cli_app
from archer.store import audiences, head_revision, inbox, utcnow
from conftest import rows
from test_tracking_server import ProcessServer, ThreadServer, basic, free_port, new_source

pytestmark = pytest.mark.slow
PASSWORD = "s3cret-password"


def cli(*args: str, stdin: str | None = None) -> dict:
    r = CliRunner().invoke(cli_app, [*args, "--json"], input=stdin)
    assert r.exit_code == 0, r.output
    return orjson.loads(r.output)


def test_archer_serve_runs_on_postgresql(ws, pg_url, monkeypatch):
    monkeypatch.setenv("ARCHER_HOME", str(ws.home))
    monkeypatch.setenv("ARCHER_DATABASE", pg_url)
    assert cli("user", "create", "olga", "--password-stdin", stdin=PASSWORD + "\n")
    key = cli("source", "create", "web")["write_key"]
    api_key = cli("apikey", "create", "etl")["key"]
    with ws.replace(database=pg_url).session(write=True) as s:
        audiences.put(s, "高价值客户", "total_spent >= 300", description="大客户", user="li",
                      now=utcnow())  # fmt: skip
    pg = create_engine(pg_url)
    with pg.connect() as c:  # the accounts are in PostgreSQL, and there is no archer.db
        assert c.execute(text("SELECT username FROM users")).scalars().all() == ["olga"]
    assert not (ws.home / "archer.db").exists()

    srv = ProcessServer(ws, free_port())  # `python -m archer.cli serve` with the environment
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, follow_redirects=False, timeout=60) as web:
            form = web.get("/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
            r = web.post("/login", data={"username": "olga", "password": PASSWORD, "csrf": csrf})
            assert r.status_code == 303, r.text
            me = web.get("/api/me").json()
            assert (me["kind"], me["name"]) == ("user", "olga")
            listed = web.get("/api/audiences").json()["items"]
            assert [(a["name"], a["description"]) for a in listed] == [("高价值客户", "大客户")]
            r = web.post("/logout", data={"csrf": me["csrf"]})
            assert r.status_code == 303 and web.get("/api/me").status_code == 401
            r = web.get("/api/me", headers={"Authorization": f"Bearer {api_key}"})
            assert (r.json()["kind"], r.json()["name"]) == ("key", "etl"), r.text

            batch = {
                "batch": [
                    {"type": "identify", "messageId": "e1", "userId": "PG-1",
                     "traits": {"email": "pg@example.cn"}},
                    {"type": "track", "messageId": "e2", "userId": "PG-1",
                     "event": "Product Viewed", "properties": {"product_id": "p1"}},
                ]
            }  # fmt: skip
            for _ in range(2):  # the second time, as an SDK retrying: acknowledged, not stored
                r = httpx.post(srv.url + "/v1/batch", json=batch, headers=basic(key))
                assert r.status_code == 200, r.text
    except AssertionError:
        srv.stop()
        print(srv.proc.stdout.read().decode(errors="replace")[-6000:])  # the server's side
        raise
    finally:
        srv.stop()

    with pg.connect() as c:
        assert c.execute(text("SELECT count(*) FROM tracking_inbox")).scalar() == 2
        assert c.execute(text("SELECT last_login_at FROM users")).scalar() is not None
        assert c.execute(text("SELECT last_used_at FROM api_keys")).scalar() is not None
        assert (
            c.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        )
    loaded = cli("sync")
    assert loaded["read"] == 2
    with pg.connect() as c:
        assert c.execute(text("SELECT count(*) FROM tracking_inbox")).scalar() == 0
    events = [e for e in rows(ws, "events") if e["customer_id"] == "PG-1"]
    assert sorted(e["event_id"] for e in events) == ["web:e1", "web:e2"]
    pg.dispose()


def test_a_message_id_postgresql_cannot_store_is_refused_not_a_503(store_ws):
    """A NUL character: SQLite would keep it, PostgreSQL refuses it and would fail the writer's
    whole group commit (503 for every request in it); both stores answer 400 instead."""
    key = new_source(store_ws, "web")
    with ThreadServer(store_ws) as srv:
        bad = {"type": "track", "event": "X", "userId": "u", "messageId": "m\x001"}
        r = httpx.post(srv.url + "/v1/batch", json={"batch": [bad]}, headers=basic(key))
        assert r.status_code == 400, r.text
        assert "batch[0].messageId" in r.text and "\\\\x00" in r.text
        good = {**bad, "messageId": "m1"}
        r = httpx.post(srv.url + "/v1/batch", json={"batch": [good]}, headers=basic(key))
        assert r.status_code == 200, r.text
    with store_ws.session() as s:
        assert [e.message_id for e in inbox.next_events(s.connection(), 10)] == ["m1"]
