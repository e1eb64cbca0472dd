"""Tracking API ingest: ``/v1/batch`` with durable acknowledgement, events per second and latency.

Starts ``archer serve`` (loader off, so only ingest is measured) on a fresh workspace, then a
local load generator — asyncio, keep-alive connections, pre-encoded HTTP — posts batches of
100 events (the SDKs' batch size) with a new ``messageId`` each, for ``--seconds`` (default 60).
A batch counts once its ``{"success": true}`` is back, which the server sends only after the
commit (SQLite WAL, ``synchronous=FULL``). At the end the inbox must hold exactly the events
acknowledged. Results go to the "Tracking API" section of docs/benchmarks.md (``tracking``
markers); ``--quick`` (5 s, 4 connections) writes to bench/out/benchmarks-quick.md.

    .venv/bin/python bench/run.py --only tracking [--quick]
    .venv/bin/python bench/tracking/bench.py [--seconds 60] [--connections 8] [--no-write]
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

from archer_calls import workspace_with_source

from common import markdown as md
from common import results
from common.server import Serve

PER_BATCH = 100
FULL = {"seconds": 60.0, "connections": 8}
QUICK = {"seconds": 5.0, "connections": 4}


def batch_body(run: str, conn: int, n: int) -> bytes:
    """One batch like an SDK's: a mix of views, carts, pages and an identify, unique ids."""
    now = time.time()
    items = []
    for i in range(PER_BATCH):
        mid = f"{run}{conn}-b{n}-{i}"
        k = i % 4
        if k == 0:
            page = {"page": {"url": "https://shop/"}}
            items.append({"type": "page", "anonymousId": f"a{n % 997}", "name": "Home",
                          "messageId": mid, "context": page})  # fmt: skip
        elif k == 3 and i == 99:
            items.append({"type": "identify", "userId": f"u{n % 991}", "messageId": mid,
                          "traits": {"email": "x@example.com", "city": "杭州"}})  # fmt: skip
        else:
            items.append({"type": "track", "userId": f"u{n % 991}", "messageId": mid,
                          "event": "Product Viewed" if k == 1 else "Product Added",
                          "properties": {"product_id": f"p{i}", "category": "shoes",
                                         "price": 99.5}})  # fmt: skip
    sent = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + "Z"
    doc = {"batch": items, "sentAt": sent, "context": {"library": {"name": "bench"}}}
    return orjson.dumps(doc)


async def worker(
    run: str, conn: int, port: int, auth: str, stop_at: float, lat: list[float]
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    acked = 0
    while time.perf_counter() < stop_at:
        body = batch_body(run, conn, n)
        head = (
            f"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        t0 = time.perf_counter()
        writer.write(head + body)
        await writer.drain()
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        answer = await reader.readexactly(length)
        lat.append(time.perf_counter() - t0)
        if b" 200 " not in status or answer != b'{"success":true}':
            raise RuntimeError(f"unexpected answer {status!r} {answer!r}")
        acked += PER_BATCH
        n += 1
    writer.close()
    return acked


async def load(
    run: str, port: int, key: str, seconds: float, connections: int
) -> tuple[int, list[float]]:
    auth = base64.b64encode(f"{key}:".encode()).decode()
    lat: list[float] = []
    stop_at = time.perf_counter() + seconds
    counts = await asyncio.gather(
        *(worker(run, c, port, auth, stop_at, lat) for c in range(connections))
    )
    return sum(counts), lat


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run(seconds: float, connections: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-tracking-"))
    try:
        return _measure(tmp / "shop", seconds, connections)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _measure(home: Path, seconds: float, connections: int) -> dict:
    key = workspace_with_source(home)
    srv = Serve(home)
    try:
        warm, _ = asyncio.run(load("w", srv.port, key, 3, connections))  # not counted
        load_avg = os.getloadavg()[0]
        cpu0 = _cpu(srv.pid)
        t0 = time.perf_counter()
        acked, lat = asyncio.run(load("m", srv.port, key, seconds, connections))
        wall = time.perf_counter() - t0
        cpu = _cpu(srv.pid) - cpu0
    finally:
        srv.stop()
    stored = _stored(home)
    if stored != acked + warm:  # every acknowledged event must be in the inbox, once
        raise SystemExit(f"inbox holds {stored:,} events; {acked + warm:,} were acknowledged")
    return {
        "events": acked,
        "seconds": round(wall, 1),
        "rate": acked / wall,
        "p50_ms": pct(lat, 0.50) * 1000,
        "p99_ms": pct(lat, 0.99) * 1000,
        "max_ms": max(lat) * 1000,
        "requests": len(lat),
        "server_cpu": cpu / wall,
        "stored": stored,
        "warmup": warm,
        "load": load_avg,
        "connections": connections,
        "db_mb": sum(p.stat().st_size for p in home.glob("archer.db*")) / 1e6,
        "started": md.started(),
        "commit": md.commit(),
    }


def main(argv: list[str] | None = None) -> None:
    ap = md.parser(__doc__, "5 s from 4 connections")
    ap.add_argument("--seconds", type=float, help="measured seconds (default 60)")
    ap.add_argument("--connections", type=int, help="keep-alive connections (default 8)")
    ap.add_argument("--no-write", action="store_true", help="print only, leave the report alone")
    args = ap.parse_args(argv)
    out = md.target(args.quick, args.out)
    size = QUICK if args.quick else FULL
    if args.render:
        res = results.load("tracking")
    else:
        res = run(args.seconds or size["seconds"], args.connections or size["connections"])
        results.save("tracking", res, quick=args.quick)
    figures = orjson.dumps(res, option=orjson.OPT_INDENT_2).decode()
    if args.no_write:
        print(figures)
    else:
        md.publish(out, "tracking", figures, section(res))


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stored(home: Path) -> int:
    import sqlite3

    with sqlite3.connect(home / "archer.db") as c:
        return c.execute("SELECT count(*) FROM tracking_inbox").fetchone()[0]


def _table(r: dict) -> str:
    head = "| events acknowledged | seconds | events / s | p50 latency | p99 latency | max "
    head += "| server CPU | load |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    cells = [
        f"{r['events']:,}",
        f"{r['seconds']}",
        f"{r['rate']:,.0f}",
        f"{r['p50_ms']:.1f} ms",
        f"{r['p99_ms']:.1f} ms",
        f"{r['max_ms']:.0f} ms",
        f"{r['server_cpu']:.2f} cores",
        f"{r['load']:.1f}",
    ]
    return head + "| " + " | ".join(cells) + " |"


def section(r: dict) -> str:
    aim = "met" if r["rate"] >= 10_000 else "NOT met"
    return f"""## Tracking API: `/v1/batch` ingest with durable acknowledgement

{_table(r)}

`archer serve` (one uvicorn process) on this 2-core machine took {r["rate"]:,.0f} events per
second for {r["seconds"]:.0f} s from {r["connections"]} keep-alive connections of a local load
generator posting batches of {PER_BATCH} events (pages, product views, cart adds and an identify;
each with its own `messageId`, the batch's `sentAt` and shared `context`), {r["requests"]:,}
requests in all: the issue's aim of 10,000 events/s is {aim}. Every batch was answered only
after its events were committed to the inbox (SQLite WAL with `synchronous=FULL`, one commit
for whatever requests were waiting: group commit); afterwards the inbox held
{r["stored"]:,} events, exactly the acknowledged ones plus {r["warmup"]:,} from the 3 s warm-up.
The load generator ran on the same two cores as the server (load column: the 1-minute load
average at the start). Loading into the warehouse (`archer sync`) is not part of this figure.
Run with `{md.command("tracking")}`.
"""


if __name__ == "__main__":
    main()
