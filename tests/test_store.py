"""The operational store on SQLite (a real file in the workspace) and on a real PostgreSQL server:
Alembic migrations, taking over a store made before Alembic, UTC instants, locks, and each
concept's queries (audiences, users, API keys, tracking sources, the inbox)."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

import archer.store
from archer.config import Settings
from archer.store import (
    Base,
    StoreError,
    apikeys,
    current_revision,
    db,
    engine,
    head_revision,
    inbox,
    migrate,
    session,
    sources,
    users,
)
from archer.store import audiences as store_audiences
from archer.store.audiences import Audience, check_name

T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
FIXTURES = Path(__file__).parent / "data" / "store"
OLD_PASSWORD = "correct horse battery"  # of user "li" in the fixtures made by the old runner


def db_file(ws: Settings) -> str:
    return str(ws.home / "archer.db")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    """An empty database that no engine has opened yet: a SQLite file or a PostgreSQL one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'a.db'}"
    return request.getfixturevalue("pg_url")


def tables(eng) -> set[str]:
    return set(inspect(eng).get_table_names())


# -- migrations --------------------------------------------------------------------------------


def test_a_new_workspace_gets_a_migrated_sqlite_file_in_wal_mode(ws):
    eng = engine(ws.settings)
    assert eng.url.database == db_file(ws)
    assert current_revision(eng) == head_revision()
    with ws.session() as s:
        conn = s.connection()
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert "schema_version" not in tables(eng)  # the old runner's ledger is gone for good
    assert migrate(eng) == []  # nothing left to apply
    assert engine(ws.settings) is eng  # one engine per URL


def test_a_new_store_is_at_the_head_revision(store_ws):
    eng = engine(store_ws.settings)
    assert eng.dialect.name == (
        "postgresql" if "postgresql" in store_ws.settings.database_url else "sqlite"
    )
    assert current_revision(eng) == head_revision()
    assert {"alembic_version", "audiences", "users", "api_keys", "tracking_inbox"} <= tables(eng)
    assert migrate(eng) == []


def test_the_models_describe_the_schema_the_migrations_build(store_ws):
    for m in pkgutil.iter_modules(archer.store.__path__):  # every concept's models
        importlib.import_module(f"archer.store.{m.name}")
    assert {"audiences", "users", "api_keys", "tracking_inbox"} <= set(Base.metadata.tables)
    eng = engine(store_ws.settings)
    with eng.connect() as conn:  # what `alembic revision --autogenerate` would write: nothing
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
    insp = inspect(eng)
    for name, table in Base.metadata.tables.items():
        cols = {c["name"]: c for c in insp.get_columns(name)}
        assert set(cols) == set(table.columns.keys()), name
        for col in table.columns:
            assert cols[col.name]["nullable"] == col.nullable, (name, col.name)
        uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints(name)}
        uniques |= {tuple(i["column_names"]) for i in insp.get_indexes(name) if i["unique"]}
        for col in table.columns:
            if col.unique:
                assert (col.name,) in uniques, (name, col.name)


BROKEN = """
import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("half_done", sa.Column("x", sa.Integer))
    op.execute("INSERT INTO audiences (name, query, created_by, created_at, updated_by,"
               " updated_at) VALUES ('ghost', 'q', 'u', '2026-01-01', 'u', '2026-01-01')")
    raise RuntimeError("disk on fire")


def downgrade():
    pass
"""


def with_broken_revision(tmp_path, monkeypatch) -> None:
    """The shipped revisions and, after them, one that fails half-way (a copy in tmp_path)."""
    scripts = tmp_path / "migrations"
    shutil.copytree(db.MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9999_broken.py").write_text(BROKEN.replace("{head}", head_revision()))
    monkeypatch.setattr(db, "MIGRATIONS", scripts)


def test_a_failing_migration_leaves_nothing_behind(url, tmp_path, monkeypatch):
    with_broken_revision(tmp_path, monkeypatch)
    eng = db._create(url)
    try:
        with pytest.raises(RuntimeError, match="disk on fire"):
            migrate(eng)
        assert current_revision(eng) is None
        assert not tables(eng)  # not even the audiences of revision 0001: one transaction
    finally:
        eng.dispose()


def test_a_failing_revision_keeps_the_store_at_the_one_before(url, tmp_path, monkeypatch):
    eng = db._create(url)
    try:
        shipped = head_revision()
        assert migrate(eng)[-1] == shipped
        with eng.begin() as conn:
            conn.execute(
                store_audiences.Audience.__table__.insert().values(
                    name="vip", query="q", created_by="u", created_at=T0, updated_by="u",
                    updated_at=T0,
                )
            )  # fmt: skip
        with_broken_revision(tmp_path, monkeypatch)
        with pytest.raises(RuntimeError, match="disk on fire"):
            migrate(eng)
        assert current_revision(eng) == shipped
        assert "half_done" not in tables(eng)
        with eng.connect() as conn:
            assert conn.execute(text("SELECT name FROM audiences")).scalars().all() == ["vip"]
    finally:
        eng.dispose()


def test_a_store_from_a_newer_archer_is_refused(url):
    eng = db._create(url)
    try:
        migrate(eng)
        with eng.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        with pytest.raises(StoreError, match="revision '0099', which this Archer does not know"):
            migrate(eng)
    finally:
        eng.dispose()


def old_store(tmp_path: Path, version: int) -> Settings:
    """A workspace whose archer.db was made by the hand-written runner (checked-in dump)."""
    home = tmp_path / f"old{version}"
    home.mkdir()
    con = sqlite3.connect(home / "archer.db")
    con.executescript((FIXTURES / f"store_v{version}.sql").read_text(encoding="utf-8"))
    con.close()
    return Settings(home=home)


def schema(path: str) -> dict[str, str]:
    con = sqlite3.connect(path)
    try:
        return dict(
            con.execute("SELECT name, sql FROM sqlite_master WHERE name NOT LIKE '%alembic%'")
        )
    finally:
        con.close()


def test_a_store_made_before_alembic_is_taken_over_with_its_rows(tmp_path, ws):
    old = old_store(tmp_path, 3)
    eng = engine(old)
    assert current_revision(eng) == head_revision()
    assert "schema_version" not in tables(eng)
    with session(old, write=True) as s:
        (a,) = store_audiences.all_audiences(s)
        assert (a.name, a.description, a.created_at) == ("高价值客户", "big spenders", T0)
        assert users.authenticate(s, "li", OLD_PASSWORD, now=T0) is not None
        assert [k.name for k in apikeys.all_keys(s)] == ["ci"]
        assert sources.names_by_id(s) == {1: "shop-web"}
        assert inbox.pending(s.connection()) == 1
        (ev,) = inbox.next_events(s.connection(), 10)
        assert ev.message_id == "m-1"
    # The same tables, constraints and indexes as a store made new by Alembic.
    engine(ws.settings)
    assert schema(db_file(old)) == schema(db_file(ws))


def test_a_store_from_the_old_runners_first_version_gets_the_later_tables(tmp_path, ws):
    old = old_store(tmp_path, 1)
    eng = engine(old)
    assert current_revision(eng) == head_revision()
    with session(old) as s:
        assert [a.name for a in store_audiences.all_audiences(s)] == ["高价值客户"]
        assert users.all_users(s) == []
    engine(ws.settings)
    assert schema(db_file(old)) == schema(db_file(ws))


def test_an_old_store_newer_than_the_old_runner_knew_is_refused(tmp_path):
    old = old_store(tmp_path, 3)
    con = sqlite3.connect(db_file(old))
    con.execute("INSERT INTO schema_version VALUES (4, 'future', '2030-01-01 00:00:00')")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="schema version 4, newer than this Archer knows"):
        engine(old)
    assert "schema_version" in tables(db._create(f"sqlite:///{db_file(old)}"))  # untouched


def test_a_bad_url_is_a_store_error(tmp_path):
    for bad, why in [
        ("nosuchdb://x/y", "cannot use the database URL"),
        ("mysql://u@h/d", "SQLite .* or PostgreSQL"),
        ("postgresql+psycopg2://u:secret@h/d", "not installed"),
    ]:
        s = Settings(home=tmp_path, database=bad)
        with pytest.raises(StoreError, match=why) as e:
            engine(s)
        assert "secret" not in str(e.value)


def test_a_plain_postgresql_url_means_psycopg_3():
    eng = db._create("postgresql://archer@127.0.0.1:1/x")  # no connection is made
    assert eng.dialect.driver == "psycopg"


# -- instants, names, locks --------------------------------------------------------------------


def test_instants_go_in_as_utc_and_come_back_aware(store_ws):
    shanghai = timezone(timedelta(hours=8))
    with store_ws.session(write=True) as s:
        store_audiences.put(
            s,
            "a",
            "x",
            description=None,
            user="li",
            now=datetime(2026, 11, 1, 17, 30, tzinfo=shanghai),
        )
    with store_ws.session() as s:
        a = store_audiences.get(s, "a")
        raw = s.connection().exec_driver_sql("SELECT created_at FROM audiences").scalar()
    assert a.created_at == T0 and a.created_at.tzinfo is UTC
    assert str(raw).startswith("2026-11-01 09:30:00")  # naive UTC in the database
    with pytest.raises(Exception, match="naive datetime"), store_ws.session(write=True) as s:
        store_audiences.put(s, "b", "x", description=None, user="li", now=datetime(2026, 1, 1))
    with store_ws.session() as s:
        assert store_audiences.get(s, "b") is None  # rolled back


def test_put_updates_in_place_and_keeps_who_created_it(store_ws):
    with store_ws.session(write=True) as s:
        a, new = store_audiences.put(s, "vip", "q1", description="big", user="li", now=T0)
    assert new
    later = T0 + timedelta(days=3)
    with store_ws.session(write=True) as s:
        a, new = store_audiences.put(s, "vip", "q2", description=None, user="wang", now=later)
    assert not new
    with store_ws.session() as s:
        (a,) = store_audiences.all_audiences(s)
    assert (a.query, a.description) == ("q2", "big")
    assert (a.created_by, a.created_at, a.updated_by, a.updated_at) == ("li", T0, "wang", later)
    with store_ws.session(write=True) as s:
        assert store_audiences.remove(s, "vip") and not store_audiences.remove(s, "vip")


def test_names_are_unique_and_case_sensitive_in_the_database_itself(store_ws):
    with store_ws.session(write=True) as s:
        for name in ("VIP", "vip", "高价值客户"):
            store_audiences.put(s, name, "q", description=None, user="u", now=T0)
    with store_ws.session() as s:
        assert [a.name for a in store_audiences.all_audiences(s)] == ["VIP", "vip", "高价值客户"]
        assert store_audiences.get(s, "Vip") is None
    with pytest.raises(IntegrityError), store_ws.session(write=True) as s:
        for _ in range(2):
            s.add(
                Audience(
                    name="twin",
                    query="q",
                    created_by="u",
                    created_at=T0,
                    updated_by="u",
                    updated_at=T0,
                )
            )
            s.flush()


def test_a_writing_session_holds_the_write_lock_and_readers_still_read(ws):
    with ws.session(write=True) as s:
        store_audiences.put(s, "first", "q", description=None, user="u", now=T0)
    other = sqlite3.connect(db_file(ws), timeout=0.05, isolation_level=None)
    try:
        with ws.session(write=True) as s:
            store_audiences.get(s, "first")  # the first statement begins IMMEDIATE
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            assert other.execute("SELECT count(*) FROM audiences").fetchone() == (1,)
        other.execute("BEGIN IMMEDIATE")  # free again once the session has committed
        other.execute("ROLLBACK")
    finally:
        other.close()


def try_write_lock(conn) -> bool:
    """Whether another PostgreSQL connection could take the store's write lock just now."""
    got = conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": db.PG_WRITE_LOCK})
    ok = bool(got.scalar())
    conn.rollback()
    return ok


def test_a_writing_session_on_postgresql_holds_the_write_lock_and_readers_still_read(pg_url, ws):
    pg = ws.replace(database=pg_url)
    with pg.session(write=True) as s:
        store_audiences.put(s, "first", "q", description=None, user="u", now=T0)
    other = db._create(pg_url).connect()
    try:
        with pg.session() as s:  # a reading session takes no lock
            store_audiences.get(s, "first")
            assert try_write_lock(other)
        with pg.session(write=True) as s:
            store_audiences.get(s, "first")
            assert not try_write_lock(other)
            assert other.execute(text("SELECT count(*) FROM audiences")).scalar() == 1
            other.rollback()
        assert try_write_lock(other)  # free again once the session has committed
    finally:
        other.close()


# -- users, API keys, sources ------------------------------------------------------------------


def test_users_are_made_authenticated_and_their_password_changed(store_ws):
    with store_ws.session(write=True) as s:
        u = users.create(s, "li.wei@example.cn", "s3cret-pass", now=T0)
        assert u.id and u.last_login_at is None
        with pytest.raises(users.UserError, match="exists already"):
            users.create(s, "li.wei@example.cn", "another-pass", now=T0)
        users.create(s, "Li.Wei@example.cn", "another-pass", now=T0)  # names are case-sensitive
    later = T0 + timedelta(hours=1)
    with store_ws.session(write=True) as s:
        assert users.authenticate(s, "li.wei@example.cn", "wrong-pass!", now=later) is None
        assert users.authenticate(s, "nobody", "s3cret-pass", now=later) is None
        me = users.authenticate(s, "li.wei@example.cn", "s3cret-pass", now=later)
    assert me is not None and me.username == "li.wei@example.cn"
    with store_ws.session(write=True) as s:
        assert users.get(s, me.id) == me
        users.set_password(s, me.username, "new-s3cret-pass")
    with store_ws.session() as s:
        assert users.get(s, me.id).stamp != me.stamp  # sessions made before end
        listed = [x.to_dict() for x in users.all_users(s)]
    assert [d["username"] for d in listed] == ["Li.Wei@example.cn", "li.wei@example.cn"]
    assert listed[1]["last_login_at"] == later.isoformat()


def test_api_keys_authenticate_until_revoked(store_ws):
    with store_ws.session(write=True) as s:
        k, secret = apikeys.create(s, "ci-bot", created_by="li", now=T0)
        with pytest.raises(apikeys.ApiKeyError, match="exists already"):
            apikeys.create(s, "ci-bot", created_by="li", now=T0)
    with store_ws.session(write=True) as s:
        owner, last_used = apikeys.authenticate(s, secret)
        assert (owner.name, owner.created_by, last_used) == ("ci-bot", "li", None)
        apikeys.touch(s, owner.id, now=T0 + timedelta(minutes=5))
        assert apikeys.authenticate(s, secret + "x") is None
    with store_ws.session(write=True) as s:
        assert apikeys.authenticate(s, secret)[1] == T0 + timedelta(minutes=5)
        apikeys.revoke(s, "ci-bot", now=T0 + timedelta(days=1))
    with store_ws.session() as s:
        assert apikeys.authenticate(s, secret) is None
        (d,) = [x.to_dict() for x in apikeys.all_keys(s)]
    assert d["active"] is False and d["prefix"] == secret[: apikeys.PREFIX_CHARS] + "…"


def test_sources_authenticate_until_revoked_and_names_are_never_reused(store_ws):
    with store_ws.session(write=True) as s:
        web, key = sources.create(s, "shop-web", now=T0)
        app, _ = sources.create(s, "app", now=T0)
    with store_ws.session(write=True) as s:
        assert sources.authenticate(s, key) == sources.Caller(web.id, "shop-web")
        sources.revoke(s, "shop-web", now=T0)
        with pytest.raises(sources.SourceError, match="never reused"):
            sources.create(s, "shop-web", now=T0)
    with store_ws.session() as s:
        assert sources.authenticate(s, key) is None
        assert sources.names_by_id(s) == {web.id: "shop-web", app.id: "app"}


# -- the tracking inbox ------------------------------------------------------------------------


def test_the_inbox_stores_each_message_once_and_hands_them_out_in_order(store_ws):
    eng = engine(store_ws.settings)
    b1 = inbox.Batch(1, T0, [("m1", "{1}"), ("m2", "{2}"), ("m1", "{1 again}")])
    b2 = inbox.Batch(1, T0, [("m2", "{2 again}"), ("m3", "{3}")])
    b3 = inbox.Batch(2, T0, [("m1", "{other source}")])
    with eng.begin() as conn:
        assert inbox.append(conn, [b1, b2, b3]) == [
            inbox.Accepted(2, 1),
            inbox.Accepted(1, 1),
            inbox.Accepted(1, 0),
        ]
    with eng.begin() as conn:
        assert inbox.append(conn, [b2]) == [inbox.Accepted(0, 2)]  # a retried request
        assert inbox.pending(conn) == 4
        first = inbox.next_events(conn, 3)
        assert [(e.source_id, e.message_id, e.body) for e in first] == [
            (1, "m1", "{1}"),
            (1, "m2", "{2}"),
            (1, "m3", "{3}"),
        ]
        assert first[0].received_at == T0
        assert inbox.remove_through(conn, first[-1].seq) == 3
        assert inbox.pending(conn) == 1
        # Ids are kept for DEDUP_DAYS after the events left the inbox; then forgotten.
        assert inbox.append(conn, [b1]) == [inbox.Accepted(0, 3)]
        assert inbox.prune_ids(conn, T0 + timedelta(days=inbox.DEDUP_DAYS, seconds=1)) == 4
        assert inbox.append(conn, [b1]) == [inbox.Accepted(2, 1)]


def test_the_inbox_writer_commits_batches_and_answers_each(store_ws):
    writer = inbox.InboxWriter(engine(store_ws.settings))
    writer.start()
    try:
        futures = [
            writer.submit(inbox.Batch(1, T0, [(f"m{i}", "{}"), (f"m{i + 1}", "{}")]))
            for i in range(0, 20, 1)
        ]
        answers = [f.result(timeout=60) for f in futures]
    finally:
        writer.stop()
    assert sum(a.stored for a in answers) == 21  # m0 … m20
    assert sum(a.duplicates for a in answers) == 19
    with store_ws.session() as s:
        assert inbox.pending(s.connection()) == 21


def test_two_writers_on_postgresql_never_store_a_message_twice(pg_url, ws):
    """Two server processes sharing the database: the second waits for the first's commit."""
    pg = ws.replace(database=pg_url)
    engine(pg.settings)  # migrated
    first, second = db._create(pg_url), db._create(pg_url)
    a = first.execution_options(**{db._IMMEDIATE: True}).connect()
    out: dict[str, object] = {}
    try:
        a.begin()
        assert inbox.append(a, [inbox.Batch(1, T0, [("m1", "{a}")])]) == [inbox.Accepted(1, 0)]

        def other() -> None:
            try:
                with second.execution_options(**{db._IMMEDIATE: True}).begin() as b:
                    out["answer"] = inbox.append(b, [inbox.Batch(1, T0, [("m1", "{b}")])])
            except Exception as e:  # noqa: BLE001 - reported below
                out["error"] = e

        t = threading.Thread(target=other)
        t.start()
        wait_for_lock_wait(first)
        a.commit()
        t.join(timeout=60)
    finally:
        a.close()
    assert "error" not in out, out.get("error")
    assert out["answer"] == [inbox.Accepted(0, 1)]
    with first.connect() as c:
        assert c.execute(text("SELECT body FROM tracking_inbox")).scalars().all() == ["{a}"]
    first.dispose()
    second.dispose()


def wait_for_lock_wait(eng, timeout: float = 60.0) -> None:
    """Until another backend of this database waits for a lock (what the test waits on)."""
    import time

    deadline = time.monotonic() + timeout
    with eng.connect() as c:
        while time.monotonic() < deadline:
            n = c.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            ).scalar()
            if n:
                return
            c.rollback()
            time.sleep(0.01)
    raise AssertionError("the second writer never waited for the first")


@pytest.mark.parametrize(
    "name, ok",
    [
        ("vip", True),
        ("高价值客户", True),
        ("At risk — Jiangsu", True),
        ("", False),
        ("  ", False),
        (" vip", False),
        ('say "hi"', False),
        ("back\\slash", False),
        ("new\nline", False),
        ("x" * 101, False),
    ],
)
def test_audience_names(name, ok):
    if ok:
        assert check_name(name) == name
    else:
        with pytest.raises(ValueError):
            check_name(name)


def test_text_postgresql_cannot_store_is_refused_alike_on_both(store_ws):
    with store_ws.session(write=True) as s:
        for query, description in [("q\x00", None), ("q", "big\x00spenders")]:
            with pytest.raises(ValueError, match="NUL"):
                store_audiences.put(s, "vip", query, description=description, user="u", now=T0)
        store_audiences.put(s, "vip", "q", description="fine", user="u", now=T0)  # still usable
    with store_ws.session() as s:
        assert [a.name for a in store_audiences.all_audiences(s)] == ["vip"]


def test_one_bad_request_does_not_fail_the_others_in_its_group_commit(pg_url, ws):
    pg = ws.replace(database=pg_url)
    writer = inbox.InboxWriter(engine(pg.settings))
    # Queued before the thread starts, so that the three are committed as one group.
    futures = [writer.submit(inbox.Batch(1, T0, [(mid, "{}")])) for mid in ("m1", "m\x002", "m3")]
    writer.start()
    try:
        with pytest.raises(Exception, match="NUL"):
            futures[1].result(timeout=60)  # PostgreSQL refuses it (the routes refuse it first)
        assert [futures[i].result(timeout=60) for i in (0, 2)] == [inbox.Accepted(1, 0)] * 2
    finally:
        writer.stop()
    with pg.session() as s:
        assert [e.message_id for e in inbox.next_events(s.connection(), 10)] == ["m1", "m3"]
