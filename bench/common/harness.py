"""Running one contender in its own process and measuring it: time, CPU and peak memory.

Each contender runs in a fresh process so that its peak resident set size is its own.
Two traps are avoided: ``getrusage(RUSAGE_CHILDREN)`` gives the largest of all children
run so far, and Linux starts a child's ``ru_maxrss`` at its parent's peak (the value is
carried through fork and exec). So a tiny launcher (this file, standard library only)
starts the contender and reads its rusage with ``os.wait4``; the parent may be as big
as it likes. A contender prints one JSON object as the last line of its standard
output: at least ``seconds`` (the work alone, without interpreter start-up and
imports) and ``rows``.
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

BENCH_DIR = Path(__file__).resolve().parents[1]  # bench/
OUT = BENCH_DIR / "out"  # kept between runs, ignored by git: shops, results, the quick report


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
    """Run ``argv`` to completion through the launcher; its last stdout line is its report."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as d,
    ):
        usage_file = Path(d) / "usage.json"
        load = os.getloadavg()[0]
        launcher = [sys.executable, "-S", __file__, "launch", str(usage_file), "--", *argv]
        subprocess.run(launcher, stdout=out, stderr=err, cwd=cwd, check=False)
        usage = json.loads(usage_file.read_text()) if usage_file.exists() else {}
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    code = usage.get("exit_code", -1)
    wall = usage.get("wall", 0.0)
    cpu = usage.get("cpu", 0.0)
    peak = usage.get("maxrss_kib", 0) / 1024
    report = _last_json(stdout)
    if code != 0 or report is None:
        why = f"exit code {code}" if code else "no JSON report"
        if code < 0:
            why = f"killed by signal {-code} (out of memory?)"
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
    """The command that runs ``bench/<script>`` (e.g. ``build/bench.py``) with this interpreter."""
    return [sys.executable, str(BENCH_DIR / script), *args]


def log(message: str) -> None:
    """Progress for the person running a benchmark: standard error, so stdout keeps the figures."""
    print(message, file=sys.stderr, flush=True)


def said(m: Measured, digits: int = 1) -> str:
    """One line on how a contender went, for the progress log."""
    if not m.ok:
        return f"  failed: {m.error}"
    return f"  {m.seconds:.{digits}f} s, {m.peak_rss_mb:,.0f} MB"


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


def launch(usage_file: Path, argv: list[str]) -> int:
    """Run ``argv`` as a child of this small process; write its rusage to ``usage_file``."""
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: become the contender
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    usage = {
        "exit_code": code,
        "wall": time.perf_counter() - started,
        "cpu": ru.ru_utime + ru.ru_stime,
        "maxrss_kib": ru.ru_maxrss,  # KiB on Linux
    }
    usage_file.write_text(json.dumps(usage))
    return code


if __name__ == "__main__" and sys.argv[1:2] == ["launch"]:
    # harness.py launch USAGE_FILE -- COMMAND ...
    sys.exit(launch(Path(sys.argv[2]), sys.argv[4:]))
