"""The operational store: a real SQLite file in the workspace, migrations, UTC instants, locks."""

from __future__ import annotations

import importlib
import pkgutil
import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

import archer.store
from archer.config import Settings
from archer.store import (
    Base,
    StoreError,
    current_version,
    db,
    engine,
    latest_version,
    migrate,
    migrations,
)
from archer.store import audiences as store_audiences
from archer.store.audiences import Audience, check_name

T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def db_file(ws: Settings) -> str:
    return str(ws.home / "archer.db")


def test_a_new_workspace_gets_a_migrated_sqlite_file_in_wal_mode(ws):
    eng = engine(ws)
    assert eng.url.database == db_file(ws)
    assert current_version(eng) == latest_version() == len(migrations.MIGRATIONS)
    with ws.session() as s:
        conn = s.connection()
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        ledger = conn.execute(select(db.schema_version)).mappings().all()
    assert [r["version"] for r in ledger] == [m.version for m in migrations.MIGRATIONS]
    assert ledger[0]["description"].startswith("audiences")
    assert migrate(eng) == []  # nothing left to apply
    assert engine(ws) is eng  # one engine per URL


def test_the_models_describe_the_schema_the_migrations_build(ws):
    for m in pkgutil.iter_modules(archer.store.__path__):  # every concept's models
        importlib.import_module(f"archer.store.{m.name}")
    assert {"audiences"} <= set(Base.metadata.tables)
    insp = inspect(engine(ws))
    assert set(Base.metadata.tables) <= set(insp.get_table_names())
    for name, table in Base.metadata.tables.items():
        cols = {c["name"]: c for c in insp.get_columns(name)}
        assert set(cols) == set(table.columns.keys()), name
        for col in table.columns:
            assert cols[col.name]["nullable"] == col.nullable, (name, col.name)
            ddl = col.type.compile(dialect=insp.dialect)
            assert str(cols[col.name]["type"]) == ddl, (name, col.name)
        uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints(name)}
        uniques |= {tuple(i["column_names"]) for i in insp.get_indexes(name) if i["unique"]}
        for col in table.columns:
            if col.unique:
                assert (col.name,) in uniques, (name, col.name)


def test_a_failing_migration_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(conn):
        conn.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(
        migrations,
        "MIGRATIONS",
        [*migrations.MIGRATIONS, migrations.Migration(len(migrations.MIGRATIONS) + 1, "x", broken)],
    )
    eng = db._create(f"sqlite:///{tmp_path / 'a.db'}")
    with pytest.raises(RuntimeError, match="disk on fire"):
        migrate(eng)
    assert current_version(eng) == 0
    assert not inspect(eng).get_table_names()  # not even the audiences of migration 1
    eng.dispose()


def test_a_database_from_a_newer_archer_is_refused(tmp_path):
    eng = db._create(f"sqlite:///{tmp_path / 'b.db'}")
    migrate(eng)
    with eng.begin() as conn:
        conn.execute(
            db.schema_version.insert().values(
                version=99, description="future", applied_at=datetime(2030, 1, 1)
            )
        )
    with pytest.raises(StoreError, match="schema version 99, newer than this Archer"):
        migrate(eng)
    eng.dispose()


def test_a_bad_url_is_a_store_error(tmp_path):
    s = Settings(home=tmp_path, database="nosuchdb://x/y")
    with pytest.raises(StoreError, match="cannot use the database URL"):
        engine(s)


def test_instants_go_in_as_utc_and_come_back_aware(ws):
    shanghai = timezone(timedelta(hours=8))
    with ws.session(write=True) as s:
        store_audiences.put(
            s,
            "a",
            "x",
            description=None,
            user="li",
            now=datetime(2026, 11, 1, 17, 30, tzinfo=shanghai),
        )
    with ws.session() as s:
        a = store_audiences.get(s, "a")
        raw = s.connection().exec_driver_sql("SELECT created_at FROM audiences").scalar()
    assert a.created_at == T0 and a.created_at.tzinfo is UTC
    assert raw.startswith("2026-11-01 09:30:00")
    with pytest.raises(Exception, match="naive datetime"), ws.session(write=True) as s:
        store_audiences.put(s, "b", "x", description=None, user="li", now=datetime(2026, 1, 1))
    with ws.session() as s:
        assert store_audiences.get(s, "b") is None  # rolled back


def test_put_updates_in_place_and_keeps_who_created_it(ws):
    with ws.session(write=True) as s:
        a, new = store_audiences.put(s, "vip", "q1", description="big", user="li", now=T0)
    assert new
    later = T0 + timedelta(days=3)
    with ws.session(write=True) as s:
        a, new = store_audiences.put(s, "vip", "q2", description=None, user="wang", now=later)
    assert not new
    with ws.session() as s:
        (a,) = store_audiences.all_audiences(s)
    assert (a.query, a.description) == ("q2", "big")
    assert (a.created_by, a.created_at, a.updated_by, a.updated_at) == ("li", T0, "wang", later)
    with ws.session(write=True) as s:
        assert store_audiences.remove(s, "vip") and not store_audiences.remove(s, "vip")


def test_names_are_unique_in_the_database_itself(ws):
    with pytest.raises(IntegrityError), ws.session(write=True) as s:
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
