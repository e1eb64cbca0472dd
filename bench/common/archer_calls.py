"""Every call ``common`` makes into archer, in one place (imports inside the functions, so that
importing ``common`` never loads archer: the pandas and lifetimes contenders import it too)."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path


def cli(*args: str) -> list[str]:
    """The command line of the archer CLI run by this interpreter."""
    return [sys.executable, "-m", "archer.cli", *args]


def init_workspace(home: Path):
    """The workspace (made when missing)."""
    from archer.config import init_workspace
    from archer.workspace import Workspace

    return Workspace(init_workspace(Path(home)))


def load_order() -> list[str]:
    from archer.schema import LOAD_ORDER

    return list(LOAD_ORDER)


def generate_sample(out: Path, customers: int, seed: int, fmt: str = "csv") -> dict[str, int]:
    """``archer sample``'s files in ``out``: rows per file."""
    from archer.sample import generate

    return generate(out, customers=customers, seed=seed, fmt=fmt)


def import_file(ws, table: str, path: Path, *, now: datetime | None = None, progress=None):
    from archer.ingest.importer import import_file

    kw = {"now": now} if now is not None else {}
    if progress is not None:
        kw["progress"] = progress
    return import_file(ws, table, path, **kw)


def build_profile(ws, as_of: date):
    """``archer build`` as of ``as_of``: its summary (customers, tables)."""
    from archer.pipeline import build

    return build(ws, as_of)


def places_csv():
    """Archer's table of provinces and cities (Chinese and English names), a package file."""
    from importlib.resources import files

    return files("archer") / "data" / "places.csv"


def installed_cli() -> Path | None:
    """The ``archer`` command installed beside this interpreter, if there is one."""
    cli = Path(sys.executable).with_name("archer")
    return cli if cli.exists() else None
