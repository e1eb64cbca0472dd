"""Running one contender in its own process and measuring it: time, CPU and peak memory.

Each contender runs in a fresh child process so that its peak resident set size is
its own: ``os.wait4`` returns the rusage of exactly that child (and anything it
waited for), whereas ``getrusage(RUSAGE_CHILDREN)`` would give the largest of all
children run so far. A contender prints one JSON object as the last line of its
standard output: at least ``seconds`` (the work alone, without interpreter start-up
and imports) and ``rows``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


@dataclass
class Measured:
    """One contender's run, as the parent saw it and as the child reported it."""

    name: str
    label: str
    ok: bool
    seconds: float  # the work alone, as reported by the child
    wall: float  # the whole process, start-up and imports included
    cpu: float  # user + system seconds of the whole process
    peak_rss_mb: float
    rows: int
    load: float  # 1-minute load average when the contender started
    detail: dict = field(default_factory=dict)
    error: str = ""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.ok and self.seconds > 0 else 0.0


def run_child(name: str, label: str, argv: list[str], *, cwd: Path | None = None) -> Measured:
    """Run ``argv`` to completion; its last stdout line is its JSON report."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        load = os.getloadavg()[0]
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    # ru_maxrss is in KiB on Linux.
    peak = usage.ru_maxrss / 1024
    cpu = usage.ru_utime + usage.ru_stime
    report = _last_json(stdout)
    if proc.returncode != 0 or report is None:
        why = f"exit code {proc.returncode}" if proc.returncode else "no JSON report"
        if proc.returncode and proc.returncode < 0:
            why = f"killed by signal {-proc.returncode} (out of memory?)"
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        return Measured(name, label, False, 0.0, wall, cpu, peak, 0, load, error=f"{why}\n{tail}")
    # A CLI's own JSON may use "rows" for something else (rows per file): left in detail.
    rows = report.pop("rows") if isinstance(report.get("rows"), int) else 0
    return Measured(
        name,
        label,
        True,
        seconds=float(report.pop("seconds", wall)),
        wall=wall,
        cpu=cpu,
        peak_rss_mb=peak,
        rows=rows,
        load=load,
        detail=report,
    )


def python_child(script: str, *args: str) -> list[str]:
    """The command that runs ``bench/<script>`` with this interpreter."""
    return [sys.executable, str(BENCH_DIR / script), *args]


def report(seconds: float, rows: int, **extra: object) -> None:
    """A contender's JSON report, as the last line of its standard output."""
    print(json.dumps({"seconds": round(seconds, 3), "rows": rows, **extra}), flush=True)


def _last_json(stdout: str) -> dict | None:
    """The report: the whole output if it is one JSON document, else its last JSON line."""
    try:
        doc = json.loads(stdout)
        return doc if isinstance(doc, dict) else None
    except json.JSONDecodeError:
        pass
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None
