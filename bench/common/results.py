"""A run's figures as JSON under ``bench/out/``, so that a section can be written again
(``--render``) without running the benchmark; a quick run keeps its own file."""

from __future__ import annotations

import json
from pathlib import Path

from common.harness import OUT


def path(name: str, quick: bool = False) -> Path:
    return OUT / (f"{name}-results-quick.json" if quick else f"{name}-results.json")


def save(name: str, doc: dict, *, quick: bool = False) -> Path:
    p = path(name, quick)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    return p


def load(name: str) -> dict:
    """The last full-size run's figures; a clear stop when there are none."""
    p = path(name)
    if not p.exists():
        raise SystemExit(f"no {p}: run the benchmark at full size first")
    return json.loads(p.read_text(encoding="utf-8"))
