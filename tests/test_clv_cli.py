"""`archer clv fit` and `archer clv validate` on the raw CDNOW sample (issue 4)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from archer.cli import app
from archer.cli.clv import models
from conftest import shared

# Fader, Hardie & Lee (2005), "'Counting Your Customers' the Easy Way: An Alternative to the
# Pareto/NBD Model", Marketing Science 24(2), 275-284, fitted from the raw CDNOW 1/10 sample
# with a 39-week calibration period from 1997-01-01, in weeks.
PUBLISHED = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
PUBLISHED_LL = -9582.43
CAL = ["--calibration-end", "1997-09-30"]


def invoke(*args: str):
    return CliRunner().invoke(app, ["clv", *map(str, args)])


def as_json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def cdnow_csv(tmp_path_factory) -> Path:
    """The whitespace-separated sample (master id, sample id, YYYYMMDD, CDs, dollars) as CSV."""
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.csv"
    lines = ["customer_id,date,cds,amount"]
    for line in shared("cdnow", "CDNOW_sample.txt").read_text().splitlines():
        if line.strip():
            _, sample_id, day, cds, dollars = line.split()
            lines.append(f"{sample_id},{day[:4]}-{day[4:6]}-{day[6:]},{cds},{dollars}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def fitted(cdnow_csv) -> dict:
    return as_json(invoke("fit", "--transactions", cdnow_csv, *CAL, "--json"))


def assert_published(doc: dict) -> None:
    for name, value in PUBLISHED.items():
        assert doc["params"][name] == pytest.approx(value, abs=5e-5), name
    assert doc["log_likelihood"] == pytest.approx(PUBLISHED_LL, abs=5e-3)


def test_fit_reproduces_the_paper_from_the_raw_log(fitted):
    assert_published(fitted)
    assert fitted["model"] == "bgnbd"
    assert fitted["n_customers"] == 2357
    assert fitted["converged"] is True and fitted["message"]
    assert fitted["aic"] == pytest.approx(8 - 2 * fitted["log_likelihood"])
    assert set(fitted["standard_errors"]) == set(PUBLISHED)
    assert all(0 < se < 1 for se in fitted["standard_errors"].values())
    assert fitted["calibration_end"] == "1997-09-30" and fitted["unit"] == "week"


def test_fit_on_parquet_with_timestamps_and_other_names(tmp_path, cdnow_csv):
    import pandas as pd

    df = pd.read_csv(cdnow_csv, parse_dates=["date"])
    df["date"] += pd.Timedelta(hours=15)  # a time of day changes nothing
    path = tmp_path / "orders.parquet"
    pq.write_table(pa.Table.from_pandas(df.rename(columns={"customer_id": "member"})), path)
    doc = as_json(
        invoke(
            "fit", "--transactions", path, "--customer-col", "member", "--date-col", "date",
            *CAL, "--json",
        )
    )  # fmt: skip
    assert_published(doc)


def test_fit_on_a_summary_with_weights(tmp_path, fitted, cdnow_csv):
    # A summary file: one row per pattern with its weight, computed here with pandas.
    import pandas as pd

    df = pd.read_csv(cdnow_csv, parse_dates=["date"])
    df = df[df["date"] <= "1997-09-30"].drop_duplicates(["customer_id", "date"])
    g = df.groupby("customer_id")["date"]
    end = pd.Timestamp("1997-09-30")
    s = pd.DataFrame(
        {
            "frequency": g.count() - 1,
            "recency": (g.max() - g.min()).dt.days / 7,
            "T": (end - g.min()).dt.days / 7,
        }
    )
    patterns = s.groupby(["frequency", "recency", "T"]).size().rename("weights").reset_index()
    path = tmp_path / "summary.csv"
    patterns.to_csv(path, index=False)
    doc = as_json(invoke("fit", "--summary", path, "--json"))
    assert_published(doc)
    assert doc["n_customers"] == 2357 and doc["patterns"] == len(patterns)
    assert doc["summary"] == str(path)


def test_fit_prints_a_table(cdnow_csv):
    r = invoke("fit", "--transactions", cdnow_csv, *CAL)
    assert r.exit_code == 0, r.output
    assert "alpha" in r.stdout and "4.4136" in r.stdout and "-9,582.43" in r.stdout


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("mbgnbd", {"r", "alpha", "a", "b"}),
        ("pareto-nbd", {"r", "alpha", "s", "beta"}),
        ("gamma-gamma", {"p", "q", "gamma"}),
    ],
)
def test_other_models_fit_from_the_log(cdnow_csv, name, params):
    if name not in models():
        pytest.skip(f"{name} is not in archer.models.MODELS yet")
    doc = as_json(
        invoke("fit", "--model", name, "--transactions", cdnow_csv, "--amount-col", "amount",
               *CAL, "--json")
    )  # fmt: skip
    assert doc["model"] == name and set(doc["params"]) == params
    assert doc["converged"] is True
    if name == "gamma-gamma":
        assert doc["n_customers"] < 2357  # repeat customers only


def test_bgbb_fits_periods_from_a_summary(tmp_path):
    if "bgbb" not in models():
        pytest.skip("bgbb is not in archer.models.MODELS yet")
    path = tmp_path / "donations.csv"
    path.write_text(
        "frequency,recency,periods,weights\n6,6,6,1203\n5,6,6,728\n4,6,6,512\n3,6,6,357\n"
        "2,6,6,234\n1,6,6,129\n5,5,6,335\n4,5,6,284\n3,5,6,225\n2,5,6,173\n1,5,6,119\n"
        "0,0,6,3464\n"
    )
    doc = as_json(invoke("fit", "--model", "bgbb", "--summary", path, "--json"))
    assert set(doc["params"]) == {"alpha", "beta", "gamma", "delta"}
    assert doc["n_customers"] == 7763


def test_validate_writes_the_diagnostics(tmp_path, cdnow_csv, fitted):
    out = tmp_path / "diag"
    doc = as_json(
        invoke("validate", "--transactions", cdnow_csv, *CAL, "--observation-end", "1998-06-30",
               "--out", out, "--json")
    )  # fmt: skip
    assert_published(doc["fit"])
    e = doc["errors"]
    assert e["n_customers"] == 2357 and e["actual_purchases"] > 1000
    assert e["expected_purchases"] == pytest.approx(e["actual_purchases"], rel=0.2)
    for name in ("holdout-by-frequency", "tracking", "frequency-histogram", "p-alive"):
        png = out / f"clv-{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    on_disk = json.loads((out / "figures.json").read_text())
    assert on_disk["errors"] == doc["errors"]
    assert len(on_disk["tracking"]) == 78


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd", "pareto-nbd", "bgbb"])
def test_validate_on_a_summary_prints_the_errors(tmp_path, name):
    if name not in models():
        pytest.skip(f"{name} is not in archer.models.MODELS yet")
    path = tmp_path / "holdout.csv"
    rows = [
        (0, 0, 30, 0, 600), (0, 0, 30, 1, 40), (1, 10, 30, 0, 150), (1, 25, 30, 1, 90),
        (2, 20, 25, 1, 60), (3, 28, 30, 2, 40), (5, 29, 30, 4, 20), (2, 5, 30, 0, 30),
    ]  # fmt: skip
    path.write_text(
        "frequency,recency,T,periods,frequency_holdout,duration_holdout,weights\n"
        + "".join(f"{x},{tx},{T},{T},{h},20,{w}\n" for x, tx, T, h, w in rows)
    )
    out = tmp_path / "diag"
    r = invoke("validate", "--model", name, "--summary", path, "--out", out)
    assert r.exit_code == 0, r.output
    assert "MAE" in r.stdout and "clv-p-alive.png" in r.stdout
    assert not (out / "clv-tracking.png").exists()  # no dates in a summary
    assert json.loads((out / "figures.json").read_text())["errors"]["n_customers"] == 1030


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customer-col", "member"], "no column 'member'"),
        (["--model", "nbd"], "--model 'nbd'"),
        (["--calibration-end", "1997-13-01"], "--calibration-end '1997-13-01'"),
        (["--calibration-end", "1999-01-01"], "must be before"),
        (["--unit", "month"], "--unit 'month'"),
        (["--model", "gamma-gamma"], "--amount-col"),
        (["--amount-col", "date"], "column 'date'"),
    ],
)
def test_fit_errors_name_the_problem(cdnow_csv, args, message):
    if "gamma-gamma" in args and "gamma-gamma" not in models():
        pytest.skip("gamma-gamma is not in archer.models.MODELS yet")
    r = invoke("fit", "--transactions", cdnow_csv, *args)
    assert r.exit_code == 1, r.output
    assert message in r.stderr


def test_fit_reads_yyyymmdd_numbers(tmp_path, cdnow_csv):
    raw = tmp_path / "raw.csv"
    lines = cdnow_csv.read_text().splitlines()
    raw.write_text("\n".join(line.replace("-", "", 2) for line in lines) + "\n")
    assert raw.read_text().splitlines()[1] == "0001,19970101,2,29.33"
    assert_published(as_json(invoke("fit", "--transactions", raw, *CAL, "--json")))
    raw.write_text("customer_id,date\n1,19970101\n2,19971345\n")
    r = invoke("fit", "--transactions", raw)
    assert r.exit_code == 1 and "'19971345'" in r.stderr


def test_input_errors(tmp_path, cdnow_csv):
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,date\n1,1997-01-01\n2,1997-13-45\n")
    r = invoke("fit", "--transactions", bad)
    assert r.exit_code == 1 and str(bad) in r.stderr and "'date'" in r.stderr
    assert "1997-13-45" in r.stderr
    r = invoke("fit", "--transactions", tmp_path / "missing.csv")
    assert r.exit_code == 1 and "no such file" in r.stderr
    r = invoke("fit")
    assert r.exit_code == 1 and "--transactions" in r.stderr
    r = invoke("fit", "--transactions", cdnow_csv, "--summary", cdnow_csv)
    assert r.exit_code == 1
    summary = tmp_path / "s.csv"
    summary.write_text("frequency,recency\n1,2\n")
    r = invoke("fit", "--summary", summary)
    assert r.exit_code == 1 and "no column 'T'" in r.stderr and str(summary) in r.stderr
    one = tmp_path / "one.csv"
    one.write_text("customer_id,date\n1,2024-01-01\n")
    r = invoke("fit", "--transactions", one)
    assert r.exit_code == 1 and "nothing to fit" in r.stderr
    r = invoke("validate", "--transactions", cdnow_csv, "--out", tmp_path / "o")
    assert r.exit_code == 1 and "--calibration-end" in r.stderr


def test_help():
    for args in (["--help"], ["fit", "--help"], ["validate", "--help"]):
        r = invoke(*args)
        assert r.exit_code == 0 and "Usage" in r.output


# -- docs/clv.md stays true ------------------------------------------------------------------------
DOC = Path(__file__).resolve().parents[1] / "docs" / "clv.md"
RUN = re.compile(r"<!-- run -->\s*\n```(sh|python)\n(.*?)```\n(?:\s*\n```\n(.*?)```)?", re.S)


def test_doc_examples_run_and_print_what_the_page_shows(tmp_path, monkeypatch, capsys, cdnow_csv):
    blocks = RUN.findall(DOC.read_text(encoding="utf-8"))
    assert [lang for lang, _, _ in blocks] == ["sh", "python", "python"]
    raw = str(shared("cdnow", "CDNOW_sample.txt"))
    script = blocks[0][1].replace("../shared/data/cdnow/CDNOW_sample.txt", raw)
    subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, check=True)
    assert (tmp_path / "cdnow.csv").read_bytes() == cdnow_csv.read_bytes()
    monkeypatch.chdir(tmp_path)
    for _, code, shown in blocks[1:]:
        capsys.readouterr()
        exec(compile(code, str(DOC), "exec"), {"__name__": "doc_example"})
        assert capsys.readouterr().out == shown
    assert (tmp_path / "clv-diagnostics" / "clv-p-alive.png").exists()


def test_doc_json_example_is_what_fit_prints(fitted):
    text = DOC.read_text(encoding="utf-8")
    example = json.loads(
        text.split("<!-- clv-fit-json -->")[1].split("```json\n")[1].split("```")[0]
    )
    assert list(example) == list(fitted)
    for k, v in example["params"].items():
        assert fitted["params"][k] == pytest.approx(v, rel=1e-6)
