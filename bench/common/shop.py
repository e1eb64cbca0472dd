"""The imported synthetic shop that the build, audience and pages benchmarks read, made once and
kept, and the audience those benchmarks count on it.

``bench/out/build-shop-<customers>-seed<seed>/`` holds an Archer workspace with the sample
shop imported (Parquet files, the fastest path), and ``shop.json`` with the row counts and
the time each step took. The import of the million-customer shop takes many minutes, so a
workspace whose ``shop.json`` exists is reused; the generated files are deleted once imported.

``.venv/bin/python bench/common/shop.py --customers 1000000`` prepares one ahead of a run
(``--profile`` also builds its customer profile).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/, when run as a script

from common import archer_calls as archer
from common.harness import OUT

SEED = 1
# The generator's history ends on 2026-10-31: the build looks at the shop as of that day,
# and the import's "now" is the next morning, as in tests/test_profile.py.
AS_OF = date(2026, 10, 31)
IMPORT_NOW = datetime(2026, 11, 1)
FULL_CUSTOMERS = 1_000_000
QUICK_CUSTOMERS = 20_000

# The audience of the audience benchmark, also the heaviest live count of the pages benchmark:
# five clauses, two of them behaviour predicates.
AUDIENCE = (
    'total_spent >= 200 and province in ("Jiangsu", "Zhejiang", "Shanghai", "Guangdong") '
    'and email_reachable and viewed(category = "skincare", within = 30d, count >= 2) '
    'and not bought(category = "skincare", within = 90d)'
)


def shop_dir(customers: int, seed: int = SEED) -> Path:
    return OUT / f"build-shop-{customers}-seed{seed}"


def home(customers: int, seed: int = SEED) -> Path:
    """The workspace inside :func:`shop_dir`."""
    return shop_dir(customers, seed) / "shop"


def prepare(
    customers: int, seed: int = SEED, *, log: Callable[[str], None] = lambda m: None
) -> dict:
    """The workspace's ``shop.json`` (made now if missing): home, rows, seconds per step."""
    root = shop_dir(customers, seed)
    marker = root / "shop.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        log(f"reusing the imported {customers:,}-customer shop in {root}")
        return info
    shutil.rmtree(root, ignore_errors=True)  # a half-made one from an interrupted run
    files = root / "sample"
    log(f"generating a {customers:,}-customer shop (seed {seed}) in {files}")
    t0 = time.perf_counter()
    rows = archer.generate_sample(files, customers, seed, fmt="parquet")
    generate_s = time.perf_counter() - t0
    ws = archer.init_workspace(root / "shop")
    seconds: dict[str, float] = {}
    for table in archer.load_order():
        t0 = time.perf_counter()
        r = archer.import_file(ws, table, files / f"{table}.parquet", now=IMPORT_NOW)
        seconds[table] = round(time.perf_counter() - t0, 1)
        log(f"  imported {table}: {r.inserted:,} rows, {r.rejected:,} rejected, {seconds[table]} s")
        if r.rejected:
            raise RuntimeError(f"{r.rejected:,} {table} rows rejected from the sample shop")
    shutil.rmtree(files)
    db = root / "shop" / "warehouse.duckdb"
    info = {
        "customers": customers,
        "seed": seed,
        "home": str(root / "shop"),
        "rows": {k: v for k, v in rows.items() if k != "truth"},
        "generate_seconds": round(generate_s, 1),
        "import_seconds": seconds,
        "warehouse_bytes": db.stat().st_size if db.exists() else 0,
    }
    marker.write_text(json.dumps(info, indent=2))
    return info


def settings_for(info: dict):
    return archer.init_workspace(Path(info["home"]))


@contextlib.contextmanager
def warehouse(home: str | Path) -> Iterator:
    """A read-only DuckDB connection to the workspace's warehouse, progress bar off."""
    import duckdb

    con = duckdb.connect(str(Path(home) / "warehouse.duckdb"), read_only=True)
    try:
        con.execute("set enable_progress_bar = false")
        yield con
    finally:
        con.close()


def warehouse_counts(home: str | Path) -> dict:
    """Events in the warehouse, and the profile's as-of day and size (None when not built)."""
    with warehouse(home) as con:
        events = con.sql("select count(*) from events").fetchone()[0]
        tables = {r[0] for r in con.sql("select table_name from duckdb_tables()").fetchall()}
        prof = None
        if "customer_profile" in tables:
            as_of, n = con.sql("select max(as_of), count(*) from customer_profile").fetchone()
            prof = {"as_of": str(as_of), "customers": n}
        return {"events": events, "profile": prof}


def ensure_profile(shop: dict, log: Callable[[str], None] = lambda m: None) -> dict:
    """Build the profile first when the workspace has none: ``{"built": bool, "seconds": …}``."""
    if warehouse_counts(shop["home"])["profile"] is not None:
        return {"built": False}
    log("no customer_profile yet: archer build first")
    t0 = time.perf_counter()
    archer.build_profile(settings_for(shop), AS_OF)
    return {"built": True, "seconds": round(time.perf_counter() - t0, 1)}


def clean() -> None:
    """Remove the kept workspaces."""
    for d in OUT.glob("build-shop-*"):
        shutil.rmtree(d)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, required=True)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--profile", action="store_true", help="also build the customer profile")
    a = ap.parse_args()
    from common.harness import log

    out = prepare(a.customers, a.seed, log=log)
    if a.profile:
        ensure_profile(out, log)
    print(json.dumps(out))
