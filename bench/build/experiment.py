"""Trying changes to the build on a local basis, without editing ``src/``: each mode patches
the build in this process only, then runs it like ``build/bench.py child`` (same report).

``build/experiment.py MODE HOME AS_OF`` with MODE a comma-separated list of:
``noclv`` (no CLV models: the DuckDB parts alone), ``pio`` (DuckDB's
``preserve_insertion_order = false``), ``stitch`` (the members' events, with anonymous events
linked through their identities, computed once per build instead of once per part).
Diagnostics for the findings in build/bench.py's report, not part of it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

import bench as bench_build


def patch(modes: set[str]) -> None:
    from archer_calls import Snapshot, Warehouse

    if "pio" in modes:
        original = Warehouse.connect.__func__

        def connect(cls, url):
            wh = original(cls, url)
            wh.con.raw_sql("SET preserve_insertion_order = false")
            return wh

        Warehouse.connect = classmethod(connect)
    if "stitch" in modes:
        member_events = Snapshot.member_events
        cache: dict[int, object] = {}

        def staged(self):
            key = id(self)
            if key not in cache:
                cache[key] = self.wh.stage(member_events(self), "member_events")
            return cache[key]

        Snapshot.member_events = staged
    if "noclv" in modes:
        from common import shop as build_shop

        settings_for = build_shop.settings_for

        def no_clv(info):
            st = settings_for(info)
            return st.model_copy(
                update={"profile": st.profile.model_copy(update={"clv_models": []})}
            )

        build_shop.settings_for = no_clv


if __name__ == "__main__":
    patch(set(sys.argv[1].split(",")))
    bench_build.child(sys.argv[2], sys.argv[3])
