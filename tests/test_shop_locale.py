"""Currency and time zone follow the data (issue 12, item 7): ``archer init`` says what it chose
and how to change it; a preset that knows its shops' currency and time zone (Online Retail: a UK
shop; the Taobao reports: Chinese shops) warns when the workspace is set otherwise, naming both
and the setting to change. Real workspaces in tmp_path, the CLI as a user runs it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archer.cli import app
from archer.ingest import presets, uploads
from archer.workspace import open_workspace
from conftest import write
from support import workspace

runner = CliRunner()
TAOBAO = Path(__file__).parent / "data" / "taobao_orders_gbk.csv"
# Four lines in the layout of the UCI file (tests/data/README.md: online_retail.csv.gz): two
# invoices of a UK customer and a credit note.
RETAIL = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,17850.0,United Kingdom
C536379,71053,WHITE METAL LANTERN,-1,2010-12-01 09:41:00,3.39,17850.0,United Kingdom
"""


def run(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), catch_exceptions=False, env=env)


def notes(stdout: str) -> list[str]:
    return [line.removeprefix("Note: ") for line in stdout.splitlines() if line.startswith("Note:")]


# -- archer init says what it chose -------------------------------------------------------------
def test_init_says_currency_time_zone_and_language_and_how_to_change_them(tmp_path):
    home = tmp_path / "shop"
    r = run("init", "--home", str(home))
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    cfg = str((home / "archer.toml").resolve())
    assert "currency CNY (the default; another with --currency, e.g. --currency GBP)" in out
    assert "time zone Asia/Shanghai (the default; another with --timezone" in out
    assert "language zh (Simplified Chinese; the default: zh for a shop in CNY, else en)" in out
    assert f'set currency = "…", timezone = "…" or language = "zh" / "en" in {cfg}' in out
    # What it names is what the file holds, under those keys.
    cfg_doc = tomllib.loads((home / "archer.toml").read_text(encoding="utf-8"))
    assert (cfg_doc["currency"], cfg_doc["timezone"]) == ("CNY", "Asia/Shanghai")


def test_init_with_flags_says_they_were_used_and_the_language_follows_the_currency(tmp_path):
    home = tmp_path / "uk"
    r = run("init", "--home", str(home), "--currency", "gbp", "--timezone", "Europe/London")
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    assert "currency GBP (--currency gbp)" in out
    assert "time zone Europe/London (--timezone Europe/London)" in out
    assert "language en (English; the default: zh for a shop in CNY, else en)" in out
    r = run("init", "--home", str(home), "--json")
    doc = json.loads(r.stdout)
    assert (doc["currency"], doc["timezone"], doc["language"]) == ("GBP", "Europe/London", "en")
    assert doc["settings_file_kept"] is True
    assert doc["settings_file"] == str((home / "archer.toml").resolve())


def test_init_on_an_existing_workspace_says_which_flags_it_did_not_apply(tmp_path):
    home = tmp_path / "shop"
    assert run("init", "--home", str(home)).exit_code == 0
    r = run("init", "--home", str(home), "--currency", "USD", "--timezone", "Asia/Shanghai")
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    assert "was there already and is kept as it is" in out
    assert "currency CNY (from the settings file)" in out
    assert "Not applied, as the file says otherwise: --currency USD." in out
    assert "--timezone" not in out.split("Not applied")[1]  # the same as the file's: applied
    assert open_workspace(home).settings.currency == "CNY"


# -- a preset's known currency and time zone ----------------------------------------------------
def test_the_presets_know_their_shops_currency_and_time_zone():
    known = presets.available()
    assert (known["online-retail"].currency, known["online-retail"].timezone) == (
        "GBP",
        "Europe/London",
    )
    for name in ("taobao-orders", "taobao-items", "taobao-members"):
        assert (known[name].currency, known[name].timezone) == ("CNY", "Asia/Shanghai"), name
    assert (known["cdnow"].currency, known["cdnow"].timezone) == (None, None)  # not said


def test_online_retail_into_a_cny_workspace_warns_with_both_values_and_the_setting(tmp_path):
    home = tmp_path / "shop"
    run("init", "--home", str(home))
    f = write(tmp_path / "online_retail.csv", RETAIL)
    r = run("import", "orders", str(f), "--preset", "online-retail", "--home", str(home))
    assert r.exit_code == 0, r.output
    (note,) = notes(r.stdout.replace("\n  ", " "))
    note = " ".join(note.split())
    cfg = str(home / "archer.toml")
    assert note == (
        "an online-retail file comes from a shop in GBP and Europe/London, but the workspace is "
        "set to CNY and Asia/Shanghai: its amounts are shown as CNY and its times were read as "
        'Asia/Shanghai clock times. To change it, set currency = "GBP" and timezone = '
        f'"Europe/London" in {cfg}, then import the file again and run `archer build`'
    )
    # The same in the JSON document, and the rows were imported all the same.
    doc = json.loads(
        run(
            "import", "orders", str(f), "--preset", "online-retail", "--home", str(home), "--json"
        ).stdout
    )
    assert [" ".join(n.split()) for n in doc["notes"]] == [note]
    assert doc["tables"]["order_items"]["unchanged"] == 3


def test_done_as_the_warning_says_the_warning_goes(tmp_path):
    home = tmp_path / "shop"
    run("init", "--home", str(home))
    cfg = home / "archer.toml"
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(
        text.replace('currency = "CNY"', 'currency = "GBP"').replace(
            'timezone = "Asia/Shanghai"', 'timezone = "Europe/London"'
        ),
        encoding="utf-8",
    )
    f = write(tmp_path / "online_retail.csv", RETAIL)
    r = run("import", "orders", str(f), "--preset", "online-retail", "--home", str(home))
    assert r.exit_code == 0, r.output
    assert notes(r.stdout) == []


def test_only_what_differs_is_named(tmp_path):
    home = tmp_path / "shop"
    run("init", "--home", str(home), "--currency", "GBP")  # time zone left at Asia/Shanghai
    f = write(tmp_path / "online_retail.csv", RETAIL)
    r = run("import", "orders", str(f), "--preset", "online-retail", "--home", str(home), "--json")
    (note,) = json.loads(r.stdout)["notes"]
    assert "GBP" not in note.split("but")[1]  # the currency agrees: not named
    assert "in Europe/London, but the workspace is set to Asia/Shanghai" in note
    assert 'set timezone = "Europe/London" in' in note and "currency =" not in note
    assert note.endswith("then import the file again and run `archer build`")


def test_a_currency_alone_needs_no_new_import(tmp_path):
    home = tmp_path / "shop"
    run("init", "--home", str(home), "--timezone", "Europe/London")
    f = write(tmp_path / "online_retail.csv", RETAIL)
    r = run("import", "orders", str(f), "--preset", "online-retail", "--home", str(home), "--json")
    (note,) = json.loads(r.stdout)["notes"]
    assert "in GBP, but the workspace is set to CNY: its amounts are shown as CNY." in note
    assert note.endswith(f'set currency = "GBP" in {home / "archer.toml"}')


def test_a_variable_that_wins_over_the_file_is_named(tmp_path):
    home = tmp_path / "shop"
    run("init", "--home", str(home), "--timezone", "Europe/London")
    f = write(tmp_path / "online_retail.csv", RETAIL)
    r = run(
        "import", "orders", str(f), "--preset", "online-retail", "--home", str(home), "--json",
        env={"ARCHER_CURRENCY": "USD"},
    )  # fmt: skip
    (note,) = json.loads(r.stdout)["notes"]
    assert "set to USD" in note
    assert note.endswith("and in the variable ARCHER_CURRENCY, which is set and wins over the file")


def test_a_taobao_report_warns_in_a_uk_workspace_and_not_in_a_chinese_one(tmp_path):
    cn, uk = tmp_path / "cn", tmp_path / "uk"
    run("init", "--home", str(cn))
    run("init", "--home", str(uk), "--currency", "GBP", "--timezone", "Europe/London")
    args = ("import", "orders", str(TAOBAO), "--preset", "taobao-orders", "--json")
    doc = json.loads(run(*args, "--home", str(cn)).stdout)
    assert not any("workspace is set to" in n for n in doc["notes"])
    doc = json.loads(run(*args, "--home", str(uk)).stdout)
    (note,) = [n for n in doc["notes"] if "workspace is set to" in n]
    assert "a taobao-orders file comes from a shop in CNY and Asia/Shanghai" in note
    assert "set to GBP and Europe/London" in note
    assert 'set currency = "CNY" and timezone = "Asia/Shanghai"' in note


def test_a_plain_import_says_nothing_of_currency(tmp_path):
    home = tmp_path / "shop"
    run("init", "--home", str(home), "--currency", "GBP")
    f = write(tmp_path / "o.csv", "order_id,created_at,paid_amount\nO1,2026-01-01,10\n")
    doc = json.loads(run("import", "orders", str(f), "--home", str(home), "--json").stdout)
    assert doc["notes"] == []


@pytest.fixture
def uk_upload(tmp_path):
    ws = workspace(tmp_path / "shop")  # CNY, Asia/Shanghai
    folder = ws.home / uploads.UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    return ws, write(folder / "online_retail.csv", RETAIL)


def test_an_upload_gets_the_warning_without_the_workspace_path(uk_upload):
    ws, path = uk_upload
    doc = uploads.import_upload(ws, "orders", path, "online-retail", [])
    (note,) = doc["notes"]
    assert "from a shop in GBP and Europe/London" in note
    assert "in the workspace's archer.toml, then import the file again" in note
    assert str(ws.home) not in note and str(ws.home.resolve()) not in note


def test_the_data_page_shows_the_warning(tmp_path):
    import re

    from fastapi.testclient import TestClient

    from archer.store import users, utcnow
    from archer.web import create_app

    ws = workspace(tmp_path / "shop")
    with ws.session(write=True) as s:
        users.create(s, "alice", "correct horse battery", now=utcnow())
    with TestClient(create_app(ws, sync_every=None), follow_redirects=False) as c:
        c.cookies.set("archer_lang", "en")
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        login = {"username": "alice", "password": "correct horse battery", "csrf": token}
        assert c.post("/login", data=login).status_code == 303
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/data").text).group(1)
        r = c.post(
            "/data/import",
            files={"file": ("online_retail.csv", RETAIL.encode())},
            data={"table": "orders", "preset": "online-retail", "csrf": csrf},
        )
    assert r.status_code == 200, r.text
    notes = re.search(r'<ul class="reasons" id="import-notes">(.*?)</ul>', r.text, re.S)
    assert notes is not None, r.text
    assert "Note: an online-retail file comes from a shop in GBP and Europe/London" in notes[1]
    assert "set currency = &#34;GBP&#34; and timezone = &#34;Europe/London&#34;" in notes[1]
