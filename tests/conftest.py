"""Shared fixtures: a fresh workspace per test, on a real DuckDB file in tmp_path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from archer.ingest.importer import ImportResult, import_file
from archer.workspace import Workspace
from support import NOW, workspace  # noqa: F401  (NOW: shared by tests)

# The reference data sets live beside the project, in ../shared/data (DESIGN.md);
# ARCHER_SHARED_DATA points elsewhere, e.g. for a checkout in another folder.
_CANDIDATES = [
    os.environ.get("ARCHER_SHARED_DATA", ""),
    str(Path(__file__).resolve().parents[1].parent / "shared" / "data"),
    "/work/shared/data",
]
SHARED_DATA = next((Path(c) for c in _CANDIDATES if c and Path(c).is_dir()), Path(_CANDIDATES[1]))


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to run where ``--dist loadgroup`` would silently ignore the ``xdist_group`` marks.

    Modules build a shop once in a module-scoped fixture and keep their tests on one worker
    with ``xdist_group``. pytest 9.2 with pytest-xdist 3.8 drops the groups
    (pytest-dev/pytest-xdist#1386): every shop is built on both workers and the suite takes
    nearly twice as long, with nothing failing.
    """
    if config.getoption("dist", "no") != "loadgroup":
        return
    from importlib.metadata import version

    from packaging.version import Version

    if Version(pytest.__version__) >= Version("9.2") and Version(
        version("pytest-xdist")
    ) <= Version("3.8.0"):
        raise pytest.UsageError(
            f"pytest {pytest.__version__} with pytest-xdist {version('pytest-xdist')} does not "
            "group tests by xdist_group; install the versions pinned in pyproject.toml "
            "(make test does)"
        )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep a module's tests on one worker when they share a module-scoped fixture (a shop
    built once), unless a test names its own ``xdist_group``; spread over two workers, each
    would build it. Modules without one stay spread test by test."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info is not None else ()
        if any(d.scope in ("module", "package") for ds in defs for d in ds):
            item.add_marker(pytest.mark.xdist_group(item.path.stem))


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return workspace(tmp_path / "shop")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (installed on first use: test_web_ui.chromium), for the page tests."""
    from playwright.sync_api import sync_playwright

    from test_web_ui import ARGS, chromium

    exe = chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=ARGS)
        yield b
        b.close()


def run_import(ws: Workspace, table: str, path: Path, **kw) -> ImportResult:
    kw.setdefault("now", NOW)
    return import_file(ws, table, path, **kw)


def rows(ws: Workspace, table: str, order_by: str | None = None) -> list[dict]:
    with ws.warehouse() as wh:
        t = wh.table(table)
        if order_by:
            t = t.order_by(order_by)
        return t.to_pyarrow().to_pylist()


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def shared(*parts: str) -> Path:
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"reference data not found at {p}")
    return p


# -- PostgreSQL: a real server per test process, a fresh database per test (tests/pg.py) -------


@pytest.fixture(scope="session")
def pg_server():
    """The PostgreSQL server of this test process, started on first use; skips where none can."""
    import pg

    try:
        srv = pg.start()
    except pg.Unavailable as e:
        pytest.skip(f"PostgreSQL: {e}")
    yield srv
    srv.stop()


@pytest.fixture
def pg_url(pg_server) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    from archer.store import db

    name = pg_server.create_database()
    url = pg_server.url(name)
    yield url
    db.dispose_url(url)
    pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_ws(request, ws: Workspace) -> Workspace:
    """The workspace with its operational store on SQLite (the default) or PostgreSQL."""
    if request.param == "sqlite":
        return ws
    return ws.replace(database=request.getfixturevalue("pg_url"))


# -- SMTP: a real server on loopback that records what it receives (tests/smtp_sink.py) ------


@pytest.fixture
def smtp_sink():
    """A running :class:`smtp_sink.SmtpSink`, stopped after the test."""
    from smtp_sink import SmtpSink

    with SmtpSink() as sink:
        yield sink
