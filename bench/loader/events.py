"""The events the loader benchmark puts in the inbox: ``/v1/batch`` bodies of the tracking
benchmark's shape (``tracking/bench.py``'s ``batch_body``: pages, product views, cart adds and
an identify per 100, each with its own ``messageId``), and the copied workspace they go to."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from common.harness import BENCH_DIR

PER_BATCH = 100  # the SDKs' batch size, as tracking/bench.py sends


def _tracking_batch_body() -> Callable[[str, int, int], bytes]:
    """``batch_body`` of tracking/bench.py, loaded by path (its folder's ``archer_calls`` must
    not take the place of this folder's)."""
    path = BENCH_DIR / "tracking" / "bench.py"
    saved = sys.modules.pop("archer_calls", None)
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location("tracking_bench", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(path.parent))
        sys.modules.pop("archer_calls", None)
        if saved is not None:
            sys.modules["archer_calls"] = saved
    assert mod.PER_BATCH == PER_BATCH
    return mod.batch_body


def bodies(events: int, run: str = "L") -> Iterator[bytes]:
    """``events`` events (a multiple of 100) as SDK batches with unique message ids."""
    batch_body = _tracking_batch_body()
    if events % PER_BATCH:
        raise SystemExit(f"--events must be a multiple of {PER_BATCH}")
    for n in range(events // PER_BATCH):
        yield batch_body(run, 0, n)


def copy_workspace(src: Path, dst: Path) -> Path:
    """A copy of the imported shop's workspace: its settings and its warehouse, checkpointed
    (one file), and no store: the copy's store is made new, without what other benchmarks left
    in the shop's (the pages benchmark serves it)."""
    import duckdb

    skip = shutil.ignore_patterns("tmp", "quarantine", "archer.db", "archer.db-*")
    shutil.copytree(src, dst, ignore=skip)
    with duckdb.connect(str(dst / "warehouse.duckdb")) as con:
        con.execute("checkpoint")
    return dst
