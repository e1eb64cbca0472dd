"""Imports of files made to hurt: formulas in rejected cells, bombs, truncated archives,
killed imports, and a new user's slips (issue 11)."""

from __future__ import annotations

import csv

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
