"""docs/views.md names every column each view returns and every option of its command."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import typer.main

from archer.analytics import affinities, cohorts, funnel, kpis, recommendations
from archer.cli import app
from archer.facts import Snapshot
from archer.warehouse import connect

DOC = Path(__file__).resolve().parents[1] / "docs" / "views.md"
VIEWS = {
    "Lifecycle funnel": funnel,
    "Cohorts": cohorts,
    "Basket affinities": affinities,
    "Next categories to recommend": recommendations,
    "KPIs over time": kpis,
}
STEP_COLUMNS = re.compile(r"^(registered|viewed|carted|ordered|paid|repeated)_(rate|overall)$")


def section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f" {title}\n")
    nxt = re.search(r"^#{2,3} ", text[start + len(title) + 2 :], flags=re.M)
    return text[start : start + len(title) + 2 + (nxt.start() if nxt else len(text))]


@pytest.mark.parametrize("title", VIEWS)
def test_every_column_is_documented(ws, title):
    with connect(ws.settings.warehouse_url) as wh:  # an empty shop: the columns are known anyway
        columns = VIEWS[title](Snapshot.at(wh, date(2026, 1, 31), ws.tz)).columns
    body = section(title)
    for col in columns:
        if STEP_COLUMNS.match(col):
            assert f"`{col}`" in body or f"`<step>_{col.split('_')[-1]}`" in body, col
        else:
            assert f"`{col}`" in body, (title, col)


@pytest.mark.parametrize("command", ["funnel", "cohorts", "affinities", "kpis"])
def test_every_option_is_documented(command):
    text = DOC.read_text(encoding="utf-8")
    cmd = typer.main.get_command(app).commands[command]
    for p in cmd.params:
        for opt in p.opts:
            if opt.startswith("--") and opt not in ("--home", "--json", "--as-of"):
                assert f"`{opt}" in text, (command, opt)
        assert p.help, (command, p.name)  # every option explains itself in --help
