"""`archer measure experiment` and :func:`archer.measurement.experiment.report` on the
Hillstrom e-mail test, built from its published per-arm aggregates (tests/hillstrom.py: the
real file is not in ../shared/data), and on hostile files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import confint_proportions_2indep
from typer.testing import CliRunner

import hillstrom
from archer.cli import app
from archer.errors import Invalid, NotFound
from archer.measurement.experiment import MAX_ARMS, report
from archer.measurement.stats import HIGHER, NOT_DISTINGUISHABLE, NOT_ENOUGH_DATA

COLS = {"arm_col": "segment", "converted_col": "conversion", "revenue_col": "spend"}
OPTS = ["--arm-col", "segment", "--converted-col", "conversion", "--revenue-col", "spend"]


@pytest.fixture(scope="module")
def hillstrom_csv(tmp_path_factory) -> Path:
    return hillstrom.write_csv(tmp_path_factory.mktemp("hillstrom") / "hillstrom.csv")


@pytest.fixture(scope="module")
def hillstrom_report(hillstrom_csv):
    return report(hillstrom_csv, control="No E-Mail", **COLS)


def invoke(*args: str):
    return CliRunner().invoke(app, ["measure", "experiment", *map(str, args)])


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- the Hillstrom test --------------------------------------------------------------------------


def test_the_arms_are_the_published_figures(hillstrom_report):
    r = hillstrom_report
    assert [a.arm for a in r.arms] == ["No E-Mail", "Mens E-Mail", "Womens E-Mail"]
    got = {a.arm: (a.customers, a.buyers, round(a.spend, 2)) for a in r.arms}
    assert got == {arm: (n, b, float(s)) for arm, (n, b, s) in hillstrom.ARMS.items()}
    per_customer = {a.arm: round(a.spend_per_customer, 4) for a in r.arms}
    assert per_customer == {"Mens E-Mail": 1.4226, "Womens E-Mail": 1.0772, "No E-Mail": 0.6528}


def test_conversion_differences_and_newcombe_intervals(hillstrom_report):
    by_arm = {c.arm: c for c in hillstrom_report.comparisons}
    assert set(by_arm) == {"Mens E-Mail", "Womens E-Mail"}
    for arm, points in (("Mens E-Mail", 0.6805), ("Womens E-Mail", 0.3111)):
        d = by_arm[arm].conversion
        assert round(d.diff * 100, 4) == points
        n, buyers, _ = hillstrom.ARMS[arm]
        low, high = confint_proportions_2indep(buyers, n, 122, 21_306, method="newcomb")
        assert d.low == pytest.approx(low, abs=1e-9) and d.high == pytest.approx(high, abs=1e-9)
        assert d.verdict == HIGHER and 0 < d.mde < d.diff


def test_spend_per_customer_differences_are_welchs_on_the_customers(
    hillstrom_csv, hillstrom_report
):
    frame = pd.read_csv(hillstrom_csv)
    control = frame.loc[frame.segment == "No E-Mail", "spend"].to_numpy()
    for c in hillstrom_report.comparisons:
        treated = frame.loc[frame.segment == c.arm, "spend"].to_numpy()
        s = c.spend_per_customer
        assert s.diff == pytest.approx(treated.mean() - control.mean(), rel=1e-12)
        ci = sps.ttest_ind(treated, control, equal_var=False).confidence_interval(0.95)
        assert (s.low, s.high) == pytest.approx((ci.low, ci.high), rel=1e-9)
        assert s.method == "welch" and s.verdict == HIGHER


def test_parquet_and_a_data_frame_give_the_same_report(tmp_path, hillstrom_report):
    pq = hillstrom.write_parquet(tmp_path / "hillstrom.parquet")
    expected = {**hillstrom_report.to_dict(), "source": None}
    for source in (pq, pd.read_parquet(pq)):
        got = {**report(source, control="No E-Mail", **COLS).to_dict(), "source": None}
        assert _close(got, expected)


def _close(x, y) -> bool:
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_close(x[k], y[k]) for k in x)
    if isinstance(x, list):
        return len(x) == len(y) and all(_close(a, b) for a, b in zip(x, y, strict=True))
    if isinstance(x, float):
        assert x == pytest.approx(y, rel=1e-9, abs=1e-12)
        return True
    assert x == y
    return True


def test_without_a_revenue_column_only_conversion_is_reported(hillstrom_csv):
    r = report(hillstrom_csv, arm_col="segment", control="No E-Mail", converted_col="conversion")
    assert all(a.spend is None and a.spend_per_customer is None for a in r.arms)
    assert all(c.spend_per_customer is None for c in r.comparisons)
    assert round(r.comparisons[0].conversion.diff * 100, 4) == 0.6805


# -- the command ---------------------------------------------------------------------------------


def test_the_command_prints_the_report_as_json(hillstrom_csv, hillstrom_report):
    r = invoke(hillstrom_csv, *OPTS, "--control", "No E-Mail", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc == json.loads(json.dumps(hillstrom_report.to_dict()))
    mens = doc["comparisons"][0]
    assert mens["arm"] == "Mens E-Mail" and mens["conversion"]["verdict"] == "higher"
    assert invoke(hillstrom_csv, *OPTS, "--control", "No E-Mail", "--json").stdout == r.stdout


def test_the_command_prints_the_report_as_tables(hillstrom_csv):
    r = invoke(hillstrom_csv, *OPTS, "--control", "No E-Mail")
    assert r.exit_code == 0, r.output
    text = r.stdout
    for shown in ("21,307", "267", "30,311.69", "23,038.11", "13,908.33", "1.25%"):
        assert shown in text
    assert re.search(r"Mens E-Mail\s+\+0\.6805\s+\+0\.5014 to \+0\.8641", text)
    assert re.search(r"Womens E-Mail\s+\+0\.3111\s+\+0\.1502 to \+0\.4745", text)
    assert re.search(r"Mens E-Mail\s+\+0\.77\s+\+0\.\d\d to \+1\.00", text)
    assert "higher" in text and "fixed-horizon test" in text


def test_an_unknown_format_is_refused(hillstrom_csv):
    r = invoke(hillstrom_csv, *OPTS, "--control", "No E-Mail", "--format", "xml")
    assert r.exit_code == 1 and "expected table or json" in r.stderr


# -- hostile input -------------------------------------------------------------------------------

GOOD = "arm,bought,spend\nA,1,10\nA,0,0\nB,0,0\nB,1,5.5\n"


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        (GOOD, ["--arm-col", "arms"], "no column 'arms' — did you mean 'arm'?"),
        (GOOD, ["--converted-col", "buy"], "no column 'buy'"),
        (GOOD, ["--control", "C"], "no arm 'C' in column 'arm' (arms: 'A', 'B')"),
        (GOOD, ["--converted-col", "arm"], "must differ"),
        (
            "arm,bought,spend\nA,1,10\nB,2,0\n",
            [],
            "line 3, column 'bought': '2'; expected 0 or 1",
        ),
        ("arm,bought,spend\nA,1,10\nB,,0\n", [], "line 3, column 'bought': a blank"),
        ("arm,bought,spend\nA,1,10\nB,0,ten\n", [], "line 3, column 'spend': 'ten'; expected a"),
        ("arm,bought,spend\nA,1,10\nB,0,\n", [], "line 3, column 'spend': a blank"),
        ("arm,bought,spend\nA,1,inf\nB,0,0\n", [], "line 2, column 'spend': 'inf'"),
        ("arm,bought,spend\nA,1,1e300\nB,0,0\n", [], "at most 1e12"),
        ("arm,bought,spend\nA,1,1\n,0,0\n", [], "line 3, column 'arm': a blank"),
        ("arm,bought,spend\nA,1,1\nA,0,0\n", [], "holds only the control 'A'"),
        # a row with an extra cell: DuckDB's own sniffer would take it for the header
        ("arm,bought,spend\nA,1,1\nB,0,0,7\n", [], "CSV Error on Line: 3"),
        ("arm,bought,arm\nA,1,1\nB,0,0\n", [], "line 1: column 'arm' twice"),
        ("arm,,spend\nA,1,1\nB,0,0\n", [], "line 1: a blank column name"),
        ("", [], "no header line"),
    ],
)
def test_hostile_files_are_refused_with_the_file_the_column_and_what_was_expected(
    tmp_path, text, options, message
):
    path = write(tmp_path / "test.csv", text)
    base = {"--arm-col": "arm", "--control": "A", "--converted-col": "bought"}
    base["--revenue-col"] = "spend"
    for flag, value in zip(options[::2], options[1::2], strict=True):
        base[flag] = value
    r = invoke(path, *[x for kv in base.items() for x in kv])
    assert r.exit_code == 1, r.output
    assert str(path) in r.stderr and message in " ".join(r.stderr.split()), r.stderr
    assert "Traceback" not in r.output


def test_too_many_arms_are_refused_before_the_report(tmp_path):
    lines = ["arm,bought"] + [f"arm{i},{i % 2}" for i in range(MAX_ARMS + 1)]
    path = write(tmp_path / "many.csv", "\n".join(lines) + "\n")
    with pytest.raises(Invalid, match=f"more than {MAX_ARMS} arms"):
        report(path, arm_col="arm", control="arm0", converted_col="bought")
    lines = ["arm,bought"] + [f"arm{i},{i % 2}" for i in range(MAX_ARMS)]
    path = write(tmp_path / "enough.csv", "\n".join(lines) + "\n")
    r = report(path, arm_col="arm", control="arm0", converted_col="bought")
    assert len(r.comparisons) == MAX_ARMS - 1


def test_tab_separated_and_gzipped_files(tmp_path):
    import gzip

    tsv = write(tmp_path / "t.tsv", "arm\tbought\nA\t1\nA\t0\nB, the other\t1\n")
    r = report(tsv, arm_col="arm", control="A", converted_col="bought")
    assert [(a.arm, a.buyers) for a in r.arms] == [("A", 1), ("B, the other", 1)]
    gz = tmp_path / "t.csv.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write('arm,bought\nA,1\n"B, quoted",0\n')
    r = report(gz, arm_col="arm", control="A", converted_col="bought")
    assert [a.arm for a in r.arms] == ["A", "B, quoted"]


def test_a_long_header_or_too_many_columns_are_refused(tmp_path):
    wide = write(tmp_path / "wide.csv", ",".join(f"c{i}" for i in range(5000)) + "\n")
    with pytest.raises(Invalid, match="5,000 columns"):
        report(wide, arm_col="c0", control="x", converted_col="c1")
    endless = write(tmp_path / "endless.csv", "x" * 300_000)
    with pytest.raises(Invalid, match="header longer than"):
        report(endless, arm_col="c0", control="x", converted_col="c1")


def test_a_long_arm_label_is_refused(tmp_path):
    path = write(tmp_path / "long.csv", f"arm,bought\nA,1\n{'x' * 5000},0\n")
    with pytest.raises(Invalid, match="5,000 characters"):
        report(path, arm_col="arm", control="A", converted_col="bought")


def test_files_that_are_not_there_or_not_tables(tmp_path):
    with pytest.raises(NotFound, match="no such file"):
        report(tmp_path / "none.csv", arm_col="a", control="x", converted_col="b")
    with pytest.raises(Invalid, match="expected a .csv or .parquet"):
        report(write(tmp_path / "test.xlsx", "x"), arm_col="a", control="x", converted_col="b")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(Invalid, match="cannot read as Parquet"):
        report(bad, arm_col="a", control="x", converted_col="b")
    r = invoke(tmp_path / "none.csv", "--arm-col", "a", "--control", "x", "--converted-col", "b")
    assert r.exit_code == 1 and "no such file" in r.stderr


def test_converted_and_arms_in_other_spellings_and_types(tmp_path):
    frame = pd.DataFrame(
        {"arm": [1, 1, 0, 0, 0], "bought": [True, False, False, True, False],
         "spend": [3.0, 0.0, 0.0, 2.0, 0.0]}
    )  # fmt: skip
    r = report(frame, arm_col="arm", control="0", converted_col="bought", revenue_col="spend")
    assert [(a.arm, a.customers, a.buyers) for a in r.arms] == [("0", 3, 1), ("1", 2, 1)]
    path = write(tmp_path / "words.csv", "arm,bought\nA, yes\nA,No\nB,TRUE\nB,f\n")
    r = report(path, arm_col="arm", control="A", converted_col="bought")
    assert [(a.arm, a.buyers) for a in r.arms] == [("A", 1), ("B", 1)]


# -- small and empty arms give clean reports -----------------------------------------------------


def test_an_arm_without_buyers_and_an_arm_of_one(tmp_path):
    path = write(tmp_path / "small.csv", "arm,bought,spend\nA,0,0\nA,0,0\nA,0,0\nB,0,0\nC,1,9\n")
    r = report(path, arm_col="arm", control="A", converted_col="bought", revenue_col="spend")
    json.dumps(r.to_dict(), allow_nan=False)  # no NaN reaches a report
    b, c = r.comparisons
    assert b.conversion.diff == 0 and b.conversion.verdict == NOT_DISTINGUISHABLE
    assert b.spend_per_customer.verdict == NOT_ENOUGH_DATA  # one customer: no spread
    assert c.spend_per_customer.diff == 9 and c.spend_per_customer.low is None
    assert r.arms[0].spend_per_buyer is None and r.arms[0].spend_per_customer == 0
    out = invoke(path, "--arm-col", "arm", "--control", "A", "--converted-col", "bought",
                 "--revenue-col", "spend")  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "not enough data" in out.stdout and "–" in out.stdout


# -- docs/measure.md ---------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "measure.md"
RUN = re.compile(r"<!-- run -->\s*\n```(sh|python)\n(.*?)```\n(?:\s*\n```\n(.*?)```)?", re.S)


def test_the_examples_of_measure_md_run_and_print_what_the_page_shows(
    tmp_path, monkeypatch, capsys
):
    from test_docs import run_block

    blocks = RUN.findall(DOC.read_text(encoding="utf-8"))
    assert [lang for lang, _, _ in blocks] == ["python", "sh", "python"]
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0][1], f"{DOC} example 1", "exec"), {"__name__": "doc_example"})
    got = pd.read_csv(tmp_path / "hillstrom.csv")
    sums = got.groupby("segment").agg(n=("spend", "size"), b=("conversion", "sum"))
    assert sums.loc["Mens E-Mail"].tolist() == [21_307, 267]
    assert np.isclose(got.spend.sum(), 30_311.69 + 23_038.11 + 13_908.33)
    r = run_block(blocks[1][1], tmp_path)
    shown = {" ".join(line.split()) for line in blocks[1][2].splitlines()}
    for line in r.stdout.splitlines():  # the page shows what the command prints
        if line.strip() and not line.startswith("A fixed-horizon") and "─" not in line:
            assert " ".join(line.split()) in shown, line
    capsys.readouterr()
    exec(compile(blocks[2][1], f"{DOC} example 3", "exec"), {"__name__": "doc_example"})
    assert capsys.readouterr().out == blocks[2][2]


def test_every_option_of_the_command_is_documented():
    import typer.main

    text = DOC.read_text(encoding="utf-8")
    cmd = typer.main.get_command(app).commands["measure"].commands["experiment"]
    for p in cmd.params:
        assert p.help, p.name  # every option explains itself in --help
        for opt in p.opts:
            if opt.startswith("--"):
                assert f"`{opt}`" in text, opt
