"""Fuzzing a running server (issue 11, "Done when"): randomly mutated uploads (CSV, gzip,
Excel, Parquet: cut short, bytes flipped, a huge header, the wrong encoding, small zip bombs)
through ``POST /api/imports`` and the Data page's upload, and mutated tracking bodies at
``/v1/batch``. Every answer is a 2xx or a 4xx, and the server answers ``/health`` after each
round. uvicorn serves the app on loopback in a thread of the test process; the random choices
come from a fixed seed, so a failure replays."""

from __future__ import annotations

import base64
import gzip
import io
import json
import random
import re
import time
import zipfile
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archer.store import apikeys, users, utcnow
from support import workspace
from test_import_hostile import workbook
from test_tracking_server import ThreadServer, new_source

SEED = 20261105
PASSWORD = "correct horse battery"
BUDGET_SECONDS = 20  # the rounds stop early rather than run past it (each is still checked)
CSV = (
    "customer_id,registered_at,name,province,phone\n"
    + "".join(f"C{i:05d},2024-0{1 + i % 9}-1{i % 10} 10:00:00,客户{i},江苏省,1380000{i:04d}\n"
              for i in range(60))
).encode()  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ws = workspace(tmp_path_factory.mktemp("fuzz") / "shop")
    with ws.session(write=True) as s:
        users.create(s, "alice", PASSWORD, now=utcnow())
        _, key = apikeys.create(s, "fuzz", created_by="test", now=utcnow())
    write_key = new_source(ws, "site")
    with ThreadServer(ws) as srv:
        srv.key, srv.write_key, srv.home = key, write_key, ws.home
        yield srv


@pytest.fixture(scope="module")
def page(server):
    """A signed-in browser session (cookie and CSRF token), as the Data page sends its form."""
    with httpx.Client(base_url=server.url, timeout=60, follow_redirects=False) as c:
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        r = c.post("/login", data={"username": "alice", "password": PASSWORD, "csrf": token})
        assert r.status_code == 303
        c.csrf = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/data").text).group(1)
        yield c


# -- the seeds: one valid file of each kind -------------------------------------------------------
def seeds(tmp: Path) -> dict[str, bytes]:
    table = pa.table(
        {
            "customer_id": [f"C{i:05d}" for i in range(40)],
            "name": [f"客户{i}" for i in range(40)],
            "province": ["浙江省"] * 40,
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    cells = ["A1", *[f"A{r}" for r in range(2, 30)]]
    return {
        "csv": CSV,
        "csv.gz": gzip.compress(CSV),
        "xlsx": workbook(tmp / "seed.xlsx", cells).read_bytes(),
        "parquet": buf.getvalue(),
    }


# -- the mutations --------------------------------------------------------------------------------
def truncate(rng: random.Random, data: bytes, kind: str) -> bytes:
    return data[: rng.randrange(0, len(data))]


def flip(rng: random.Random, data: bytes, kind: str) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 24)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def huge_header(rng: random.Random, data: bytes, kind: str) -> bytes:
    if rng.random() < 0.5:  # many columns
        n = rng.choice([2_000, 4_000])
        header = ",".join(f"col{i}" for i in range(n)).encode() + b"\n"
        text = header + b",".join(b"x" for _ in range(n)) + b"\n"
    else:  # one header of a megabyte
        text = b"customer_id," + b"h" * rng.choice([100_000, 1_000_000]) + b"\nC1,x\n"
    return gzip.compress(text) if kind == "csv.gz" else text


def wrong_encoding(rng: random.Random, data: bytes, kind: str) -> bytes:
    text = CSV.decode()
    raw = text.encode(rng.choice(["utf-16", "utf-32", "gb18030", "shift_jis"]), errors="replace")
    if rng.random() < 0.5:
        raw = raw.replace(b",", b"\xff\xfe", 3)  # invalid in UTF-8 and GBK alike
    return gzip.compress(raw) if kind == "csv.gz" else raw


def bomb(rng: random.Random, data: bytes, kind: str) -> bytes:
    """Small bombs: the inflated size well past the original but inside this test's time."""
    if kind == "xlsx":
        buf = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w") as z:
            for item in src.infolist():
                body = src.read(item)
                if item.filename.endswith("sheet1.xml"):
                    body = body.replace(b"</sheetData>", b"<row/>" * 300_000 + b"</sheetData>")
                z.writestr(item, body, compress_type=zipfile.ZIP_DEFLATED)
        return buf.getvalue()
    if rng.random() < 0.5:
        lying = bytearray(gzip.compress(CSV))
        lying[-4:] = rng.randrange(3 * 10**9, 4 * 10**9).to_bytes(4, "little")  # says 3 GB+
        return bytes(lying)
    return gzip.compress(b"customer_id\n" + b"0" * rng.choice([2, 8]) * 1_000_000)


MUTATIONS = [truncate, flip, huge_header, wrong_encoding, bomb]
SUFFIX = {"csv": ".csv", "csv.gz": ".csv.gz", "xlsx": ".xlsx", "parquet": ".parquet"}


def mutants(rng: random.Random, tmp: Path) -> list[tuple[str, str, bytes]]:
    out = []
    for kind, data in seeds(tmp).items():
        for m in MUTATIONS:
            if m in (huge_header, wrong_encoding) and kind not in ("csv", "csv.gz"):
                continue  # a header and an encoding are text's
            if m is bomb and kind in ("csv", "parquet"):
                kind_sent = "csv.gz"
            else:
                kind_sent = kind
            out.append((f"{m.__name__}-{kind}", f"upload{SUFFIX[kind_sent]}", m(rng, data, kind)))
    rng.shuffle(out)
    return out


def answered(r: httpx.Response, what: str) -> None:
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:500]}"


def alive(server) -> None:
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200


def test_mutated_uploads_get_2xx_or_4xx_and_the_server_lives(server, page, tmp_path):
    rng = random.Random(SEED)
    started = time.monotonic()
    api = {"Authorization": f"Bearer {server.key}"}
    sent = 0
    for i, (what, name, body) in enumerate(mutants(rng, tmp_path)):
        if time.monotonic() - started > BUDGET_SECONDS:
            break
        table = rng.choice(["customers", "customers", "orders"])
        files = {"file": (name, body)}
        if i % 2 == 0:
            r = httpx.post(
                server.url + "/api/imports",
                files=files,
                data={"table": table},
                headers=api,
                timeout=120,
            )
        else:
            r = page.post("/data/import", files=files, data={"table": table, "csrf": page.csrf})

        answered(r, f"{what} as {name} into {table} ({'API' if i % 2 == 0 else 'page'})")
        sent += 1
        alive(server)
    assert sent >= 10
    assert not list((server.home / "uploads").glob("*/*"))  # every upload removed


# -- tracking bodies ------------------------------------------------------------------------------
def batch(rng: random.Random) -> dict:
    events = []
    for j in range(rng.randint(1, 20)):
        events.append(
            {
                "type": rng.choice(["track", "identify", "page"]),
                "event": rng.choice(["Product Viewed", "Order Completed", "搜索"]),
                "userId": f"u{rng.randrange(100)}",
                "messageId": f"m-{rng.getrandbits(48):x}-{j}",
                "timestamp": "2026-10-01T10:00:00Z",
                "properties": {"price": rng.random() * 100, "tags": ["a", "b"]},
            }
        )
    return {"batch": events, "context": {"library": {"name": "fuzz"}}}


def mutate_json(rng: random.Random, doc: dict) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode()
    headers = {"Content-Type": "application/json"}
    how = rng.randrange(8)
    if how == 0:
        body = body[: rng.randrange(len(body))]
    elif how == 1:
        body = flip(rng, body, "json")
    elif how == 2:
        depth = rng.choice([100, 300, 5_000])
        body = body[:-1] + b',"properties":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
    elif how == 3:
        body = json.dumps({"batch": [{"type": "track", "event": "x" * 40_000}]}).encode()
    elif how == 4:
        g = gzip.compress(body)
        body = g[: rng.randrange(len(g))] if rng.random() < 0.5 else g
        headers["Content-Encoding"] = "gzip"
    elif how == 5:
        body = gzip.compress(b'{"batch":[' + b'{"type":"track","event":"e"},' * 200_000 + b"{}]}")
        headers["Content-Encoding"] = "gzip"
    elif how == 6:
        doc["batch"] = [rng.choice([None, 1, "x", [], {"type": 7}, {"type": "track"}])]
        body = json.dumps(doc).encode()
    else:
        body = body.decode().encode("utf-16")
    return body, headers


def test_mutated_tracking_bodies_get_2xx_or_4xx_and_the_server_lives(server):
    rng = random.Random(SEED + 1)
    auth = "Basic " + base64.b64encode(f"{server.write_key}:".encode()).decode()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for round_no in range(6):
            for _ in range(20):
                body, headers = mutate_json(rng, batch(rng))
                r = c.post("/v1/batch", content=body, headers={**headers, "Authorization": auth})
                answered(r, f"round {round_no}: {body[:80]!r}")
            alive(server)
