"""The CLI as a user runs it: --json on stdout, errors on stderr with exit code 1."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from archer.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_init_import_status_json(tmp_path):
    home = str(tmp_path / "shop")
    r = run("init", "--home", home, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["timezone"] == "Asia/Shanghai"
    f = tmp_path / "c.csv"
    f.write_text(
        "客户编号,注册时间,省份\nC1,2024-01-01 08:00:00,浙江省\nC2,bad,\n", encoding="utf-8"
    )
    r = run("import", "customers", str(f), "--home", home, "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)  # stdout holds the JSON document and nothing else
    assert (doc["rows_read"], doc["inserted"], doc["rejected"]) == (2, 1, 1)
    assert doc["quarantine"].endswith(".csv")
    r = run("status", "--home", home, "--json")
    st = json.loads(r.stdout)
    assert st["tables"]["customers"] == 1
    assert st["last_imports"][0]["rejected"] == 1


def test_human_output_names_the_quarantine(tmp_path):
    home = str(tmp_path / "shop")
    run("init", "--home", home)
    f = tmp_path / "o.csv"
    f.write_text("order_id,created_at\nA,2024-01-01\nB,someday\n", encoding="utf-8")
    r = run("import", "orders", str(f), "--home", home)
    assert r.exit_code == 0
    assert "1 rejected" in r.stdout and "quarantine" in r.stdout


def test_errors_go_to_stderr_with_exit_code_1(tmp_path):
    home = str(tmp_path / "shop")
    run("init", "--home", home)
    r = run("import", "orders", str(tmp_path / "missing.csv"), "--home", home, "--json")
    assert r.exit_code == 1 and r.stdout == ""
    assert "no such file" in r.stderr
    f = tmp_path / "o.csv"
    f.write_text("id,when\n1,2024-01-01\n", encoding="utf-8")
    r = run("import", "orders", str(f), "--home", home)
    assert r.exit_code == 1 and "headers found: id, when" in r.stderr
    r = run("import", "orders", str(f), "--home", str(tmp_path / "nowhere"))
    assert r.exit_code == 1 and "archer init" in r.stderr
    r = run("sample", "--out", str(tmp_path / "s"), "--format", "xml")
    assert r.exit_code == 1 and "csv or parquet" in r.stderr


def test_every_command_has_help():
    for cmd in ("init", "import", "status", "sample", "demo"):
        r = run(cmd, "--help")
        assert r.exit_code == 0 and "Usage" in r.stdout


def test_sample_and_demo_json(tmp_path):
    r = run("sample", "--out", str(tmp_path / "s"), "--customers", "300", "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["rows"]["customers"] == 300
    r = run("demo", "--home", str(tmp_path / "d"), "--customers", "300", "--json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["tables"]["customers"] == 300
    assert sum(i["rejected"] for i in doc["imports"]) == 0
    # It ends with what each campaign earned over its holdout, beside the simulator's truth.
    res = doc["results"]
    assert res["simulated"]["orders"] > 0
    for name in ("unpaid-reminders", "win-back-vip"):
        arms = res[name]["arms"]
        assert arms["treatment"]["runs"] + arms["holdout"]["runs"] > 0
        assert "conversion" in res[name]["uplift"] and "true_uplift" in res[name]
    # The demo refuses to wipe a folder that is not its own.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("x")
    r = run("demo", "--home", str(tmp_path / "mine"))
    assert r.exit_code == 1 and "not a demo workspace" in r.stderr
    assert (tmp_path / "mine" / "precious.txt").exists()


def test_status_after_an_empty_build_says_the_day_not_none(tmp_path):
    """Issue 11 item 22: `archer status` printed "as of None" after a build of nothing."""
    home = str(tmp_path / "shop")
    run("init", "--home", home)
    assert run("build", "--home", home, "--as-of", "2026-11-01").exit_code == 0
    r = run("status", "--home", home)
    assert r.exit_code == 0 and "None" not in r.stdout
    assert "0 customers as of 2026-11-01" in " ".join(r.stdout.split())
    assert json.loads(run("status", "--home", home, "--json").stdout)["last_build"]["as_of"] == (
        "2026-11-01"
    )
