"""Imports of files made to hurt: formulas in rejected cells, bombs, truncated archives,
killed imports, and a new user's slips (issue 11)."""

from __future__ import annotations

import csv
import fcntl
import gzip
import json
import os
import subprocess
import sys
import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from archer.cli import app
from archer.ingest.importer import ImportError_
from archer.ingest.limits import Limits
from archer.ingest.sources import SourceError
from archer.store import apikeys, utcnow
from archer.web import create_app
from conftest import rows, run_import, write

FORMULAS = [
    '=HYPERLINK("http://evil.example","x")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
]


def test_quarantine_cells_cannot_run_as_formulas_and_the_fixed_file_imports_as_written(
    ws, tmp_path
):
    lines = ["customer_id,registered_at,name,phone"]
    for i, f in enumerate(FORMULAS):
        name = f.replace('"', '""')
        lines.append(f'C{i},not a date,"{name}",-5')
    r = run_import(ws, "customers", write(tmp_path / "c.csv", "\n".join(lines) + "\n"))
    assert r.rejected == len(FORMULAS)
    with open(r.quarantine, encoding="utf-8", newline="") as f:
        got = list(csv.DictReader(f))
    assert [g["name"] for g in got] == ["'" + f for f in FORMULAS]
    # The rule of the audience exports: a text starting with - is guarded too.
    assert {g["phone"] for g in got} == {"'-5"}
    assert all(g["customer_id"].startswith("C") for g in got)

    # Fixed (the date), the quarantine file imports as the shop wrote it: the guards go.
    fixed = tmp_path / "fixed.csv"
    with open(fixed, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, ["customer_id", "registered_at", "name", "phone"])
        w.writeheader()
        for g in got:
            w.writerow(
                {
                    **{k: g[k] for k in ("customer_id", "name", "phone")},
                    "registered_at": "2024-01-01",
                }
            )
    r2 = run_import(ws, "customers", fixed)
    assert (r2.inserted, r2.rejected) == (len(FORMULAS), 0)
    stored = {c["customer_id"]: c for c in rows(ws, "customers")}
    assert [stored[f"C{i}"]["name"] for i in range(len(FORMULAS))] == FORMULAS
    assert {c["phone"] for c in stored.values()} == {"-5"}


# -- Excel: a sheet's size is checked before the native reader runs, and that runs apart ------
def workbook(path: Path, cells: list[str], dimension: str | None = None) -> Path:
    """A minimal .xlsx by hand (zipfile): inline-string cells at ``cells``, first is a header."""
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    by_row: dict[int, list[str]] = {}
    for i, ref in enumerate(cells):
        row = int("".join(ch for ch in ref if ch.isdigit()))
        text = "customer_id" if i == 0 else f"C{i}"
        by_row.setdefault(row, []).append(f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>')
    data = "".join(f'<row r="{r}">{"".join(cs)}</row>' for r, cs in sorted(by_row.items()))
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" '
            f'ContentType="{ct}.worksheet+xml"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{pkg}">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>",
        )
        z.writestr(
            "xl/workbook.xml",
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" xmlns:r="{rel}">'
            '<sheets><sheet name="Members" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{pkg}">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>",
        )
        z.writestr(
            "xl/worksheets/sheet1.xml",
            f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{main}">{dim}'
            f"<sheetData>{data}</sheetData></worksheet>",
        )
    return path


SIZE = "1,048,576 rows × 16,384 columns"
runner = CliRunner()


def test_a_sparse_workbook_is_refused_by_its_size_not_a_dead_process(ws, tmp_path):
    sparse = workbook(tmp_path / "sparse.xlsx", ["A1", "XFD1048576"])
    assert sparse.stat().st_size < 2000
    r = runner.invoke(app, ["import", "customers", str(sparse), "--home", str(ws.home)])
    assert r.exit_code == 1  # not 134: the process lives to say why
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and SIZE in lines[0] and "'Members'" in lines[0], r.stderr
    assert "17,179,869,184 cells" in lines[0] and "20,000,000" in lines[0]
    assert rows(ws, "customers") == []

    # A well-formed small sheet still imports, through the same checks and child process.
    ok = workbook(tmp_path / "ok.xlsx", ["A1", "A2", "A3"])
    assert run_import(ws, "customers", ok).inserted == 2


def test_a_declared_dimension_beyond_the_limit_is_refused(ws, tmp_path):
    lying = workbook(tmp_path / "d.xlsx", ["A1", "A2"], dimension="A1:XFD1048576")
    with pytest.raises(SourceError, match=SIZE):
        run_import(ws, "customers", lying)
    many = workbook(tmp_path / "m.xlsx", [f"A{i}" for i in range(1, 30)])
    with pytest.raises(SourceError, match="m.xlsx: sheet .Members. has more than 20 cells"):
        run_import(ws, "customers", many, limits=Limits(sheet_cells=20))


def test_a_native_abort_while_reading_a_sheet_is_an_error_not_the_end_of_the_process(ws, tmp_path):
    """With the size check turned off, python-calamine meets the sparse sheet and aborts
    (SIGABRT, as it took the server down): in the child, where the parent reports it."""
    sparse = workbook(tmp_path / "sparse.xlsx", ["A1", "XFD1048576"])
    unchecked = Limits(sheet_cells=10**12)
    with pytest.raises(SourceError, match=r"sparse\.xlsx: the Excel reader stopped \(SIGABRT"):
        run_import(ws, "customers", sparse, limits=unchecked)
    assert rows(ws, "customers") == []


@pytest.fixture
def api(ws):
    with ws.session(write=True) as s:
        _, key = apikeys.create(s, "tests", created_by="test", now=utcnow())
    c = TestClient(create_app(ws, sync_every=None), headers={"Authorization": f"Bearer {key}"})
    c.ws = ws
    return c


def upload(api, name: str, content: bytes, table: str = "customers"):
    return api.post("/api/imports", files={"file": (name, content)}, data={"table": table})


def test_uploads_that_hurt_get_a_422_naming_the_file_and_the_server_lives(api, tmp_path):
    sparse = workbook(tmp_path / "sparse.xlsx", ["A1", "XFD1048576"]).read_bytes()
    r = upload(api, "sparse.xlsx", sparse)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert SIZE in detail and "sparse.xlsx" in detail
    assert api.get("/health").status_code == 200

    # A small gzip whose trailer says it inflates to 3 GB is refused at once.
    bomb = bytearray(gzip.compress(b"customer_id\nC1\n"))
    bomb[-4:] = (3 * 10**9).to_bytes(4, "little")
    r = upload(api, "bomb.csv.gz", bytes(bomb))
    assert r.status_code == 422 and "2,000,000,000 bytes" in r.json()["detail"], r.text

    # Errors name the upload as it was sent, never where the workspace keeps it.
    for name, content in [("empty.csv", b""), ("sparse.xlsx", sparse), ("b.csv.gz", bomb)]:
        detail = upload(api, name, bytes(content)).json()["detail"]
        assert name in detail and str(api.ws.home) not in detail and "uploads" not in detail
    assert api.get("/health").status_code == 200


# -- gzip: inflated size bounded, a file cut short refused -------------------------------------
def test_a_gzip_bomb_is_refused_by_its_inflated_size(ws, tmp_path):
    block = b"customer_id,name\n" + b"C1,x\n" * 200_000  # 1 MB
    honest = tmp_path / "honest.csv.gz"
    honest.write_bytes(gzip.compress(block * 5))
    small = Limits(inflated_bytes=2_000_000)
    with pytest.raises(SourceError, match=r"honest\.csv\.gz: inflates to more than 2,000,000"):
        run_import(ws, "customers", honest, limits=small)
    # Members joined end to end: each trailer tells only its own size; the count catches it.
    joined = tmp_path / "joined.csv.gz"
    joined.write_bytes(gzip.compress(block) * 5)
    with pytest.raises(SourceError, match=r"joined\.csv\.gz: inflates to more than 2,000,000"):
        run_import(ws, "customers", joined, limits=small)
    assert rows(ws, "customers") == []
    assert list((ws.home / "tmp").iterdir()) == []  # the partial copy went with the import


def test_a_gzip_cut_short_is_refused(ws, tmp_path):
    text = "customer_id,name\n" + "".join(f"C{i},n{i}\n" for i in range(200_000))
    whole = gzip.compress(text.encode())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[:-8])  # without its trailer (CRC and size)
    with pytest.raises(SourceError, match=r"cut\.csv\.gz: the gzip file is cut short"):
        run_import(ws, "customers", cut)
    assert rows(ws, "customers") == []
    good = tmp_path / "good.csv.gz"
    good.write_bytes(whole)
    assert run_import(ws, "customers", good).inserted == 200_000


# -- scratch folders: none left behind, dead imports' swept, running imports' kept -----------
def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_scratch_of_killed_imports_is_swept_and_running_imports_are_left_alone(ws, tmp_path):
    tmp = ws.home / "tmp"
    tmp.mkdir(exist_ok=True)
    # What kill -9 leaves: a folder with its (no longer held) lock and a transcoded copy.
    killed = tmp / f"import-{dead_pid()}-k1"
    killed.mkdir()
    (killed / ".lock").touch()
    (killed / "transcoded_0123.csv").write_bytes(b"x" * 1000)
    # Killed before it took its lock; and one of an older Archer (no pid in the name).
    early = tmp / f"import-{dead_pid()}-k2"
    early.mkdir()
    old = tmp / "import-zz9_ab3x"
    old.mkdir()
    # A running import (this process holds its lock), and one being made by a live process.
    running = tmp / f"import-{dead_pid()}-r1"
    running.mkdir()
    held = os.open(running / ".lock", os.O_CREAT | os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    starting = tmp / f"import-{os.getpid()}-s1"
    starting.mkdir()
    try:
        r = run_import(ws, "customers", write(tmp_path / "c.csv", "customer_id\nC1\n", "gbk"))
        assert r.inserted == 1
        assert sorted(p.name for p in tmp.iterdir()) == sorted([running.name, starting.name])
    finally:
        os.close(held)
    # Once its lock is free, the next import sweeps it too.
    run_import(ws, "customers", write(tmp_path / "c.csv", "customer_id\nC2\n"))
    assert [p.name for p in tmp.iterdir()] == [starting.name]


def test_an_import_that_fails_leaves_no_scratch(ws, tmp_path):
    # GBK, with bytes that are not GBK after the first megabyte (the encoding is guessed from
    # that): the import fails while transcoding, its copy half written.
    text = "会员编号,姓名\n" + "".join(f"C{i},张三\n" for i in range(120_000))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(text.encode("gbk") + b"C0,\x81\x20\n")
    with pytest.raises(SourceError, match="line 120002: bytes that are not valid gb18030"):
        run_import(ws, "customers", bad)
    assert list((ws.home / "tmp").iterdir()) == []


# -- dates: epoch numbers, and a bad format is one line ----------------------------------------
def test_epoch_seconds_and_milliseconds(ws, tmp_path):
    # 1714550400 = 2024-05-01 08:00:00 UTC, stored as it is whatever the shop's zone.
    f = write(
        tmp_path / "o.csv",
        "order_id,created_at,paid_at\n"
        "E1,1714550400,1714550400.5\n"
        "E2,2024-05-01 16:00:00,\n"  # other cells are read as before
        "E3,99999999999999999999,\n",  # out of any range: refused, not a crash
    )
    r = run_import(ws, "orders", f, date_format="epoch")
    assert (r.inserted, r.rejected) == (2, 1)
    got = {o["order_id"]: o for o in rows(ws, "orders")}
    assert got["E1"]["created_at"] == datetime(2024, 5, 1, 8, 0)
    assert got["E1"]["paid_at"] == datetime(2024, 5, 1, 8, 0, 0, 500000)
    assert got["E2"]["created_at"] == datetime(2024, 5, 1, 8, 0)
    ms = write(tmp_path / "m.csv", "order_id,created_at\nM1,1714550400123\n")
    run_import(ws, "orders", ms, date_format="epoch_ms")
    run_import(
        ws,
        "orders",
        write(tmp_path / "s.csv", "order_id,created_at\nS1,1714550400\n"),
        date_format="%s",
    )  # strftime's spelling of epoch seconds
    got = {o["order_id"]: o for o in rows(ws, "orders")}
    assert got["M1"]["created_at"] == datetime(2024, 5, 1, 8, 0, 0, 123000)
    assert got["S1"]["created_at"] == datetime(2024, 5, 1, 8, 0)
    # A birthday as epoch seconds is the shop-local day: 1990-05-01 20:00 UTC is May 2nd.
    b = write(tmp_path / "b.csv", "customer_id,birthday\nB1,641592000\n")
    run_import(ws, "customers", b, date_format="epoch")
    assert rows(ws, "customers")[0]["birthday"] == date(1990, 5, 2)


@pytest.mark.parametrize("fmt", ["%Q", "%d/%Q/%Y"])
def test_a_bad_date_format_is_one_line_naming_the_option(ws, tmp_path, fmt):
    f = write(tmp_path / "o.csv", "order_id,created_at\nO1,2024-05-01\n")
    r = runner.invoke(
        app, ["import", "orders", str(f), "--date-format", fmt, "--home", str(ws.home)]
    )
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --date-format '{fmt}': not a date")
    assert "epoch" in lines[0]
    assert rows(ws, "orders") == []
    (ws.home / "archer.toml").write_text(
        (ws.home / "archer.toml").read_text() + f'\ndate_format = "{fmt}"\n'
    )
    r = runner.invoke(app, ["import", "orders", str(f), "--home", str(ws.home)])
    assert r.exit_code == 1 and "the date_format setting" in r.stderr


# -- a new user's slips: every row rejected, a misspelt column ----------------------------------
def test_an_import_that_rejects_every_row_fails(ws, tmp_path):
    f = write(tmp_path / "o.csv", "order_id,created_at\nO1,yesterday\nO2,soon\n")
    r = runner.invoke(app, ["import", "orders", str(f), "--home", str(ws.home)])
    assert r.exit_code == 1
    assert "every row of" in r.stderr and "was rejected (2)" in r.stderr
    assert "2 rejected" in r.stdout  # the summary and the reasons are still shown
    r = runner.invoke(app, ["import", "orders", str(f), "--home", str(ws.home), "--json"])
    assert r.exit_code == 1 and json.loads(r.stdout)["rejected"] == 2


def test_a_misspelt_column_stops_the_import_with_a_suggestion(ws, tmp_path):
    text = (
        "order_id,created_at,paid_amoutn,provnce,Shipping Method\nO1,2024-05-01,129.90,江苏,EMS\n"
    )
    f = write(tmp_path / "o.csv", text)
    r = runner.invoke(app, ["import", "orders", str(f), "--home", str(ws.home)])
    assert r.exit_code == 1, r.stdout
    err = r.stderr
    assert "'paid_amoutn' (did you mean 'paid_amount'?)" in err
    assert "'provnce' (did you mean 'province'?)" in err
    assert "Shipping Method" not in err  # a column of its own, not a slip
    assert "--ignore-unknown-columns" in err and rows(ws, "orders") == []

    # Mapped, the values land; or explicitly ignored, the rest lands and the hint stays.
    mapped = run_import(ws, "orders", f, mapping=["paid_amoutn=paid_amount", "provnce=province"])
    assert mapped.inserted == 1 and mapped.ignored_columns == ["Shipping Method"]
    assert rows(ws, "orders")[0]["paid_amount"] == Decimal("129.90")
    r = runner.invoke(
        app, ["import", "orders", str(f), "--home", str(ws.home), "--ignore-unknown-columns"]
    )
    assert r.exit_code == 0, r.stderr
    assert "paid_amoutn: did you mean paid_amount?" in r.stdout
    # customers keeps leftover headers as attributes: a slip there stops the import too.
    c = write(tmp_path / "c.csv", "customer_id,provnce,会员等级\nC1,江苏,金卡\n")
    with pytest.raises(ImportError_, match="did you mean 'province'"):
        run_import(ws, "customers", c)


def test_an_id_or_text_longer_than_its_bound_goes_to_quarantine_with_the_reason(ws, tmp_path):
    huge = "0" * 3_000_000  # the fuzz test's megabytes of id
    f = tmp_path / "long.csv.gz"
    f.write_bytes(gzip.compress(
        f"customer_id,name\nC1,ok\n{huge},x\nC2,{'名' * 2_001}\nC3,{'名' * 2_000}\n".encode()
    ))  # fmt: skip
    r = run_import(ws, "customers", f)
    assert r.inserted == 2 and r.rejected == 2
    assert sorted(x["customer_id"] for x in rows(ws, "customers")) == ["C1", "C3"]
    reasons = " ".join(r.reasons) if isinstance(r.reasons, list) else str(r.reasons)
    assert "customer_id" in reasons and "longer than 200 characters" in reasons
    assert "name" in reasons and "longer than 2,000 characters" in reasons
