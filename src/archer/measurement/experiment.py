"""The report of an arm-level test a shop ran elsewhere: a file (CSV or Parquet) or a data
frame with one row per customer — the arm, whether the customer converted and, optionally,
what they spent. Each arm is compared with the control: conversion (Newcombe) and spend per
customer (Welch), each with its interval, MDE and verdict (:mod:`archer.measurement.stats`).

The file is summed where it lies (DuckDB): its size costs time, not memory. What the file
controls is bounded before the work: at most :data:`MAX_ARMS` arms, labels of at most
:data:`MAX_LABEL` characters; a missing column, a converted value that is not 0/1, a spend that
is not a number or an unknown control stops with the file, the column and what was expected.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from archer.errors import Invalid, NotFound, did_you_mean
from archer.measurement.stats import (
    LEVEL,
    POWER,
    Difference,
    Moments,
    mean_difference,
    rate_difference,
)

MAX_ARMS = 20
MAX_LABEL = 200
MAX_HEADER = 100_000  # characters of a CSV's header line
MAX_COLUMNS = 1000
MAX_MONEY = 1e12  # a spend per customer beyond this is not a spend
TRUE_WORDS = ("1", "1.0", "true", "t", "yes", "y")
FALSE_WORDS = ("0", "0.0", "false", "f", "no", "n")
PARQUET = (".parquet", ".pq")
CSV = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")


@dataclass(frozen=True)
class ArmFigures:
    """One arm as counted: customers, buyers, conversion, and with a spend column the spend,
    spend per customer and spend per buyer (``None`` where there is nothing to divide by)."""

    arm: str
    customers: int
    buyers: int
    conversion: float | None
    spend: float | None
    spend_per_customer: float | None
    spend_per_buyer: float | None


@dataclass(frozen=True)
class Comparison:
    """An arm against the control: the difference in conversion and in spend per customer."""

    arm: str
    control: str
    conversion: Difference
    spend_per_customer: Difference | None


@dataclass(frozen=True)
class ExperimentReport:
    source: str
    arm_col: str
    control: str
    converted_col: str
    revenue_col: str | None
    level: float
    power: float
    arms: tuple[ArmFigures, ...]  # the control first, then the others by name
    comparisons: tuple[Comparison, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def report(
    source: str | Path | Any,
    *,
    arm_col: str,
    control: str,
    converted_col: str,
    revenue_col: str | None = None,
    level: float = LEVEL,
    power: float = POWER,
) -> ExperimentReport:
    """The experiment report of ``source`` (a CSV or Parquet path, or a pandas data frame):
    each arm of ``arm_col`` other than ``control`` against ``control``."""
    t, label, csv = _open(source)
    columns = [arm_col, converted_col] + ([revenue_col] if revenue_col else [])
    if len(set(columns)) < len(columns):
        raise Invalid(f"{label}: the arm, converted and revenue columns must differ")
    for col in columns:
        if col not in t.columns:
            raise Invalid(
                f"{label}: no column {col!r}{did_you_mean(col, t.columns)} "
                f"(columns: {', '.join(map(str, t.columns[:30]))})"
            )
    import duckdb
    from ibis.common.exceptions import IbisError

    try:
        rows = _checked(t, label, csv, arm_col, converted_col, revenue_col)
        arms = _aggregate(rows, label, arm_col, revenue_col is not None)
    except (duckdb.Error, IbisError) as e:  # their own words on a file they cannot sum
        said = "; ".join(line.strip() for line in str(e).splitlines()[:3] if line.strip())
        raise Invalid(f"{label}: cannot read the columns: {said[:400]}") from None
    if control not in arms:
        raise NotFound(
            f"{label}: no arm {control!r} in column {arm_col!r}{did_you_mean(control, arms)} "
            f"(arms: {', '.join(repr(a) for a in sorted(arms))})"
        )
    others = sorted(a for a in arms if a != control)
    if not others:
        raise Invalid(f"{label}: column {arm_col!r} holds only the control {control!r}: "
                      "expected at least one other arm to compare with it")  # fmt: skip
    c = arms[control]
    comparisons = []
    for name in others:
        a = arms[name]
        conv = rate_difference(a["buyers"], a["n"], c["buyers"], c["n"], level=level, power=power)
        spend = (
            mean_difference(a["moments"], c["moments"], level=level, power=power)
            if revenue_col
            else None
        )
        comparisons.append(Comparison(name, control, conv, spend))
    return ExperimentReport(
        source=label,
        arm_col=arm_col,
        control=control,
        converted_col=converted_col,
        revenue_col=revenue_col,
        level=level,
        power=power,
        arms=tuple(_figures(name, arms[name]) for name in [control, *others]),
        comparisons=tuple(comparisons),
    )


# -- reading -------------------------------------------------------------------------------------


def _open(source: Any):
    """(table, label for messages, whether rows are CSV lines)."""
    import ibis

    con = ibis.duckdb.connect()
    if not isinstance(source, str | Path):
        import pandas as pd

        if not isinstance(source, pd.DataFrame):
            raise Invalid(f"expected a path or a pandas DataFrame, not {type(source).__name__}")
        if source.columns.duplicated().any():
            raise Invalid("the data frame has duplicate column names")
        return con.create_table("experiment", source.rename(columns=str), temp=True), "frame", False
    path = Path(source)
    name = path.name.lower()
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    parquet = name.endswith(PARQUET)
    if not parquet and not name.endswith(CSV):
        raise Invalid(f"{path}: expected a .csv or .parquet file")
    if not parquet:
        delim = "\t" if ".tsv" in name else ","
        columns = {c: "VARCHAR" for c in _header(path, delim)}
    try:
        if parquet:
            return con.read_parquet(str(path)), str(path), False
        # as text, with the header's columns: arms stay as written, a bad value can be shown
        # as it is in the file, and a row with more or fewer cells stops with its line (left
        # to itself, DuckDB's sniffer may take such a row for the header)
        table = con.read_csv(str(path), columns=columns, header=True, delim=delim, quote='"',
                             escape='"', auto_detect=False)  # fmt: skip
        return table, str(path), True
    except Exception as e:  # DuckDB says what it could not read
        kind = "Parquet" if parquet else "CSV"
        raise Invalid(f"{path}: cannot read as {kind}: {str(e).splitlines()[0][:400]}") from None


def _header(path: Path, delim: str) -> list[str]:
    """The column names on a CSV's first line (at most :data:`MAX_HEADER` bytes, at most
    :data:`MAX_COLUMNS` columns, no name twice)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
            first = f.readline(MAX_HEADER + 1)
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise Invalid(f"{path}: cannot read as CSV: {e}") from None
    if len(first) > MAX_HEADER:
        raise Invalid(f"{path}, line 1: a header longer than {MAX_HEADER:,} characters")
    names = next(csv.reader([first], delimiter=delim), [])
    names = [n.strip() for n in names]
    if not names or not any(names):
        raise Invalid(f"{path}: no header line: expected the column names on line 1")
    if len(names) > MAX_COLUMNS:
        raise Invalid(f"{path}, line 1: {len(names):,} columns; expected at most {MAX_COLUMNS:,}")
    seen = set()
    for n in names:
        if not n or n in seen:
            what = "a blank column name" if not n else f"column {n!r} twice"
            raise Invalid(f"{path}, line 1: {what}; expected one name per column")
        seen.add(n)
    return names


def _checked(t, label: str, csv: bool, arm_col: str, conv_col: str, rev_col: str | None):
    """arm (text), converted (0/1) and revenue (a finite number) of each row, or the first
    offending row named with the file, column and what was expected."""
    import ibis

    arm = t[arm_col].cast("string").strip()
    raw_conv = t[conv_col].cast("string").strip().lower()
    conv = raw_conv.isin(TRUE_WORDS).ifelse(
        1, raw_conv.isin(FALSE_WORDS).ifelse(0, ibis.null("int64"))
    )
    cols = {"arm": arm, "converted": conv}
    problems = [
        (arm.isnull() | (arm == ""), arm_col, t[arm_col], "an arm (it is blank)"),
        (conv.isnull(), conv_col, t[conv_col], "0 or 1 (also true/false, yes/no)"),
    ]
    if rev_col:
        col = t[rev_col]
        rev = col.strip().try_cast("float64") if col.type().is_string() else col.cast("float64")
        cols["revenue"] = rev
        bad_rev = rev.isnull() | rev.isnan() | (rev.abs() > MAX_MONEY)
        expected = "a number (0 for a customer who spent nothing) of at most 1e12"
        problems.append((bad_rev, rev_col, col, expected))
    counts = (
        t.aggregate(**{f"p{i}": bad.cast("int64").sum() for i, (bad, *_) in enumerate(problems)})
        .to_pyarrow()
        .to_pylist()[0]
    )
    for i, (bad, col_name, raw, expected) in enumerate(problems):
        if not counts[f"p{i}"]:
            continue
        hit = (
            t.mutate(_row=ibis.row_number() + 1, _bad=bad, _raw=raw.cast("string"))
            .filter(lambda r: r._bad)
            .order_by("_row")
            .select("_row", "_raw")
            .limit(1)
            .to_pyarrow()
        )
        if hit.num_rows:
            row = int(hit.column("_row")[0].as_py())
            value = hit.column("_raw")[0].as_py()
            where = f"line {row + 1}" if csv else f"row {row}"  # a CSV's header is line 1
            shown = "a blank" if value is None or not str(value).strip() else repr(value[:60])
            raise Invalid(f"{label}, {where}, column {col_name!r}: {shown}; expected {expected}")
    return t.select(**cols)


def _aggregate(rows, label: str, arm_col: str, revenue: bool) -> dict[str, dict[str, Any]]:
    metrics = {"n": rows.count(), "buyers": rows.converted.sum()}
    if revenue:
        metrics |= {
            "spend": rows.revenue.cast("decimal(38, 6)").sum(),  # exact to the cent
            "mean": rows.revenue.mean(),
            "var": rows.revenue.var(how="sample"),
        }
    got = rows.group_by("arm").aggregate(**metrics).limit(MAX_ARMS + 1).to_pyarrow().to_pylist()
    if len(got) > MAX_ARMS:
        raise Invalid(
            f"{label}: column {arm_col!r} has more than {MAX_ARMS} arms: expected the arm of "
            "a test (is it the right column?)"
        )
    arms = {}
    for r in got:
        name = r["arm"]
        if len(name) > MAX_LABEL:
            raise Invalid(f"{label}: column {arm_col!r} has an arm of {len(name):,} characters: "
                          f"expected at most {MAX_LABEL}")  # fmt: skip
        n, buyers = int(r["n"]), int(r["buyers"])
        r["n"], r["buyers"] = n, buyers
        if revenue:
            var = None if n < 2 or r["var"] is None else max(float(r["var"]), 0.0)
            r["moments"] = Moments.from_mean_variance(n, r["mean"], var)
        arms[name] = r
    return arms


def _figures(name: str, a: dict[str, Any]) -> ArmFigures:
    n, buyers = a["n"], a["buyers"]
    spend = float(a["spend"]) if "spend" in a else None
    return ArmFigures(
        arm=name,
        customers=n,
        buyers=buyers,
        conversion=buyers / n if n else None,
        spend=spend,
        spend_per_customer=spend / n if spend is not None and n else None,
        spend_per_buyer=spend / buyers if spend is not None and buyers else None,
    )
