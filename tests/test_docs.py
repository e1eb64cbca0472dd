"""The user guide stays true: its lists come from the code, its examples run."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from archer.cli import app
from archer.config import Settings
from archer.ingest import presets
from archer.ingest.columns import ALIASES
from archer.ingest.importer import ImportResult, TableResult
from archer.ingest.parse import FALSE_WORDS, GENDERS, STATUS_WORDS, TIMESTAMP_FORMATS, TRUE_WORDS
from archer.schema import TABLES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# How tables.md writes the storage type of each column kind (its "type" cell).
DOC_TYPES = {
    "id": "string",
    "text": "string",
    "json": "string (JSON)",
    "gender": "string",
    "province": "string",
    "city": "string",
    "int": "int64",
    "money": "decimal(18,2)",
    "bool": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}


def read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def sections(text: str, level: int = 2) -> dict[str, str]:
    """Heading text of ``level`` → the body under it, up to the next heading that deep."""
    parts = re.split(rf"^(#{{1,{level}}}) (.+)$", text, flags=re.M)
    return {
        parts[i + 1].strip(): parts[i + 2]
        for i in range(1, len(parts), 3)
        if len(parts[i]) == level
    }


def table_rows(body: str) -> dict[str, list[str]]:
    """Markdown table rows whose first cell names `things`: each name → the other cells."""
    out = {}
    for line in body.splitlines():
        m = re.match(r"^\| ((?:`[^`]+`(?:, )?)+) \|(.*)\|\s*$", line)
        if m:
            cells = [c.strip() for c in m.group(2).split("|")]
            for name in backticked(m.group(1)):
                out[name] = cells
    return out


def backticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


# -- tables.md ---------------------------------------------------------------------------
def test_tables_md_documents_every_column_with_its_type():
    doc = sections(read("tables.md"))
    for name, table in TABLES.items():
        assert name in doc, f"docs/tables.md has no section '## {name}'"
        rows = table_rows(doc[name])
        assert set(rows) == set(table.names), f"{name}: documented columns differ from schema"
        for col in table.columns:
            type_cell, required_cell = rows[col.name][0], rows[col.name][1]
            assert type_cell == DOC_TYPES[col.kind], f"{name}.{col.name}: type {type_cell!r}"
            assert required_cell.startswith("yes") == col.required, f"{name}.{col.name}"
            assert ("key" in required_cell) == (col.name in table.key), f"{name}.{col.name}"


def test_tables_md_documents_the_import_log():
    from archer.schema import IMPORT_LOG

    rows = table_rows(sections(read("tables.md"))["import_log"])
    assert set(rows) == set(IMPORT_LOG.names)


def test_every_canonical_column_appears_in_tables_md():
    text = read("tables.md")
    for table in TABLES.values():
        for col in table.names:
            assert f"`{col}`" in text, f"{table.name}.{col} missing from docs/tables.md"


# -- import.md ---------------------------------------------------------------------------
def test_every_alias_appears_in_import_md():
    text = read("import.md")
    for table, columns in ALIASES.items():
        for col, aliases in columns.items():
            for alias in aliases:
                assert f"`{alias}`" in text, f"alias {alias!r} of {table}.{col} not in import.md"


def test_import_md_alias_lists_match_the_code_exactly():
    text = read("import.md")
    block = text.split("<!-- aliases:start -->")[1].split("<!-- aliases:end -->")[0]
    documented: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in block.splitlines():
        m = re.match(r"^\*\*(\w+)\*\*$", line.strip())
        if m:
            current = documented.setdefault(m.group(1), {})
            continue
        row = table_rows(line)
        if row:
            assert current is not None, f"alias row before any table heading: {line}"
            (col, cells), *_ = row.items()
            current[col] = backticked(cells[0])
    expected = {t: {c: list(a) for c, a in cols.items()} for t, cols in ALIASES.items()}
    assert documented == expected


def test_every_preset_appears_in_import_md():
    presets._load_plugins()
    text = read("import.md")
    assert presets.PRESETS, "no presets registered"
    for name in presets.PRESETS:
        assert f"### `{name}`" in text, f"preset {name!r} has no section in docs/import.md"


def test_import_md_lists_the_accepted_words_and_formats():
    text = read("import.md")
    words = [*TRUE_WORDS, *FALSE_WORDS, *(w for ws in GENDERS.values() for w in ws)]
    words += [w for ws in STATUS_WORDS.values() for w in ws]
    for w in words:
        assert f"`{w}`" in text, f"word {w!r} not in docs/import.md"
    for fmt in TIMESTAMP_FORMATS:
        assert f"`{fmt}`" in text, f"timestamp format {fmt!r} not in docs/import.md"


def test_import_md_json_example_has_the_result_fields():
    text = read("import.md")
    example = text.split("<!-- import-json -->")[1].split("```json\n")[1].split("```")[0]
    doc = json.loads(example)
    fields = [f.name for f in dataclasses.fields(ImportResult)]
    assert list(doc) == fields, "the JSON example of import.md is not what --json prints"
    documented = table_rows(sections(read("import.md"))["The result"])
    assert set(documented) == set(fields), "the field table of import.md differs"
    per_table = [f.name for f in dataclasses.fields(TableResult)]
    assert all(list(t) == per_table for t in doc["tables"].values())


# -- workspace.md and sample.md -------------------------------------------------------------
def test_workspace_md_names_every_setting_and_its_variable():
    rows = table_rows(sections(read("workspace.md"))["Settings"])
    for name in Settings.model_fields:
        assert name in rows, f"setting {name!r} not in the settings table of workspace.md"
        assert rows[name][0] == f"`ARCHER_{name.upper()}`", name


def test_sample_md_describes_every_truth_column_and_key(tmp_path):
    from archer.sample import generate

    generate(tmp_path, customers=20, seed=1, start=date(2025, 3, 1), end=date(2025, 3, 31))
    with open(tmp_path / "truth.csv", encoding="utf-8") as f:
        columns = next(csv.reader(f))
    keys = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    body = sections(read("sample.md"), 3)
    truth_csv = table_rows(body["`truth.csv`"])
    assert set(truth_csv) == set(columns)
    assert set(table_rows(body["`truth.json`"])) == set(keys)


# -- the CLI -----------------------------------------------------------------------------------
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_command_answers_help(command):
    args = ["--help"] if command is None else [command, "--help"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "Usage" in r.output


# -- the runnable examples of import.md ----------------------------------------------------------
RUN_BLOCK = re.compile(r"<!-- run -->\s*\n```sh\n(.*?)```", re.S)


def venv_bin() -> Path:
    local = ROOT / ".venv" / "bin"
    return local if (local / "archer").exists() else Path(sys.executable).parent


def test_marked_examples_of_import_md_run(tmp_path):
    blocks = RUN_BLOCK.findall(read("import.md"))
    assert 1 <= len(blocks) <= 4, "keep the <!-- run --> blocks few and fast"
    env = {
        **os.environ,
        "ARCHER_HOME": str(tmp_path / "archer-data"),
        "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env = {k: v for k, v in env.items() if not k.startswith("ARCHER_") or k == "ARCHER_HOME"}
    for block in blocks:
        r = subprocess.run(
            ["bash", "-e", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, f"{block}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"


def run_block(block: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run a guide's shell example in a fresh workspace under ``tmp_path``; it must succeed."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ARCHER_")},
        "ARCHER_HOME": str(tmp_path / "archer-data"),
        "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    r = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, f"--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
    return r


def test_the_quick_start_of_campaigns_md_runs(tmp_path):
    (block,) = RUN_BLOCK.findall(read("campaigns.md"))
    r = run_block(block, tmp_path)
    assert "unpaid-reminders" in r.stdout and '"enrolled": 0' in r.stdout


def test_campaigns_md_lists_every_campaign_setting():
    from archer.config import CampaignSettings

    rows = table_rows(sections(read("campaigns.md"))["Settings"])
    assert set(rows) == set(CampaignSettings.model_fields)


# -- the runnable examples of python.md ------------------------------------------------------------
PY_BLOCK = re.compile(r"<!-- run -->\s*\n```python\n(.*?)```", re.S)


def test_the_examples_of_python_md_run(tmp_path, monkeypatch):
    """Each ``<!-- run -->`` example, in order and in one namespace, as a notebook would run
    them, on a sample shop imported at ./myshop and not yet built."""
    from archer.ingest.importer import import_file
    from archer.sample import generate
    from archer.schema import LOAD_ORDER
    from support import workspace

    blocks = PY_BLOCK.findall(read("python.md"))
    assert len(blocks) >= 8, "docs/python.md lost its <!-- run --> markers"
    generate(tmp_path / "sample", customers=300, seed=7)
    ws = workspace(tmp_path / "myshop")
    for table in LOAD_ORDER:
        assert import_file(ws, table, tmp_path / "sample" / f"{table}.csv").rejected == 0
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "python_md"}
    for i, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"docs/python.md example {i}", "exec"), namespace)  # noqa: S102
        except Exception as e:
            raise AssertionError(f"example {i} of docs/python.md failed:\n{block}") from e
    assert (tmp_path / "lapsed.csv").is_file()


# -- links ---------------------------------------------------------------------------------------
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_every_link_of_the_readme_and_the_guides_stays_inside_the_repository():
    """A user of the repository has nothing beside it: every relative link resolves to a file
    of the repository (the README used to link ../shared/DESIGN.md)."""
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"^(https?:|mailto:|#)", target):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []
    readme = read_root("README.md")
    assert "(docs/architecture.md)" in readme and "(docs/python.md)" in readme


def read_root(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def test_the_coupon_example_of_offers_md_runs(tmp_path):
    (block,) = RUN_BLOCK.findall(read("offers.md"))
    r = run_block(block, tmp_path)
    assert "满99减10" in r.stdout and '"state": "issued"' in r.stdout


def test_the_playbook_lists_every_template_and_its_example_runs(tmp_path):
    from archer.campaigns import service

    rows = table_rows(read("playbook.md").split("| template |")[1])
    assert set(rows) == {t["name"] for t in service.templates_list()}
    (block,) = RUN_BLOCK.findall(read("playbook.md"))
    r = run_block(block, tmp_path)
    assert "unpaid-cash-20" in r.stdout and "ladder" in r.stdout


# -- o2o.md ------------------------------------------------------------------------------------
def test_the_group_buy_example_of_o2o_md_runs_and_gives_its_figures(tmp_path):
    (block,) = RUN_BLOCK.findall(read("o2o.md"))
    r = run_block(block, tmp_path)
    assert "S1: wechat (a double scan: counted once)" in r.stdout and "S3: walk-in" in r.stdout
    doc = json.loads(r.stdout[r.stdout.index("{\n") :])
    shown = {
        row.split()[0]: row.split()[1:]
        for row in read("o2o.md").split("五一团购 as of")[1].split("```")[0].splitlines()[2:]
        if row.strip()
    }
    for row in [*doc["channels"], doc["total"]]:
        figures = [
            row[k]
            for k in (
                "signups",
                "checkins",
                "buyers",
                "orders",
                "sales",
                "unit_price",
                "cost",
                "cost_per_signup",
                "cost_per_attendee",
                "cost_per_order",
            )
        ]
        assert shown[row["channel"]] == [
            "–" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:,.2f}" for v in figures
        ]


def test_o2o_md_lists_every_channel_and_column_word():
    from archer.measurement import o2o

    text = read("o2o.md")
    rows = table_rows(text.split("| channel | also written |")[1].split("\n\n")[0])
    assert {k: backticked(v[0]) for k, v in rows.items()} == {
        k: list(v) for k, v in o2o.CHANNEL_ALIASES.items()
    }
    for columns in (o2o.SIGNUP_COLUMNS, o2o.PAYMENT_COLUMNS):
        for field, words in columns.items():
            for w in (field, *words):
                assert f"`{w}`" in text, f"{w!r} of {field} is not in docs/o2o.md"
    for words in o2o.PAYMENT_KINDS.values():
        for w in words:
            assert f"`{w}`" in text
