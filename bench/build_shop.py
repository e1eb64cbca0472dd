"""The imported synthetic shop that the build benchmark reads, made once and kept.

``bench/out/build-shop-<customers>-seed<seed>/`` holds an Archer workspace with the sample
shop imported (Parquet files, the fastest path), and ``shop.json`` with the row counts and
the time each step took. The import of the million-customer shop takes many minutes, so a
workspace whose ``shop.json`` exists is reused; the generated files are deleted once imported.

``.venv/bin/python bench/build_shop.py --customers 1000000`` prepares one ahead of a run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from harness import BENCH_DIR

OUT = BENCH_DIR / "out"
SEED = 1
# The generator's history ends on 2026-10-31: the build looks at the shop as of that day,
# and the import's "now" is the next morning, as in tests/test_profile.py.
AS_OF = date(2026, 10, 31)
IMPORT_NOW = datetime(2026, 11, 1)


def shop_dir(customers: int, seed: int = SEED) -> Path:
    return OUT / f"build-shop-{customers}-seed{seed}"


def prepare(
    customers: int, seed: int = SEED, *, log: Callable[[str], None] = lambda m: None
) -> dict:
    """The workspace's ``shop.json`` (made now if missing): home, rows, seconds per step."""
    home = shop_dir(customers, seed)
    marker = home / "shop.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        log(f"reusing the imported {customers:,}-customer shop in {home}")
        return info
    from archer.config import init_workspace
    from archer.ingest.importer import import_file
    from archer.sample import generate
    from archer.schema import LOAD_ORDER

    shutil.rmtree(home, ignore_errors=True)  # a half-made one from an interrupted run
    files = home / "sample"
    log(f"generating a {customers:,}-customer shop (seed {seed}) in {files}")
    t0 = time.perf_counter()
    rows = generate(files, customers=customers, seed=seed, fmt="parquet")
    generate_s = time.perf_counter() - t0
    ws = init_workspace(home / "shop")
    seconds: dict[str, float] = {}
    for table in LOAD_ORDER:
        t0 = time.perf_counter()
        r = import_file(ws, table, files / f"{table}.parquet", now=IMPORT_NOW)
        seconds[table] = round(time.perf_counter() - t0, 1)
        log(f"  imported {table}: {r.inserted:,} rows, {r.rejected:,} rejected, {seconds[table]} s")
        if r.rejected:
            raise RuntimeError(f"{r.rejected:,} {table} rows rejected from the sample shop")
    shutil.rmtree(files)
    db = home / "shop" / "warehouse.duckdb"
    info = {
        "customers": customers,
        "seed": seed,
        "home": str(home / "shop"),
        "rows": {k: v for k, v in rows.items() if k != "truth"},
        "generate_seconds": round(generate_s, 1),
        "import_seconds": seconds,
        "warehouse_bytes": db.stat().st_size if db.exists() else 0,
    }
    marker.write_text(json.dumps(info, indent=2))
    return info


def settings_for(info: dict):
    from archer.config import init_workspace

    return init_workspace(Path(info["home"]))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, required=True)
    ap.add_argument("--seed", type=int, default=SEED)
    a = ap.parse_args()
    out = prepare(a.customers, a.seed, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(out))
