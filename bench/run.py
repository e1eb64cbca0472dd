"""Run every benchmark (or those named with ``--only``), each writing its section of the report.

``.venv/bin/python bench/run.py`` (what ``make bench`` runs) is the full size, written to
docs/benchmarks.md: a 10-million-line orders import, a 1-million-customer sample shop, the CLV
models against lifetimes up to 100 million customers, the profile build, the audience count and
the pages on the 1-million-customer shop, a minute of tracking ingest, and a million tracked
events loaded into that shop. It takes hours the first time (the shop is imported once and kept
under bench/out/).

``--quick`` runs every subject at a small size to check that everything works, in a few minutes;
its sections go to bench/out/benchmarks-quick.md, never to docs/benchmarks.md.

Each subject runs as its own process (``bench/<subject>/bench.py``), one after the other; a
subject that fails is reported and the others still run. The build runs before the audience
and the pages, which read the shop it prepares.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# In the order they run; what each measures, against which peer: bench/README.md.
SUBJECTS = (
    "import", "sample", "clv", "build", "audience", "pages", "tracking", "loader", "campaigns",
    "targeting",
)  # fmt: skip


def subjects(only: list[str] | None) -> list[str]:
    """The subjects named (``--only build --only pages``, or ``--only build,pages``), in the
    order they run."""
    if not only:
        return list(SUBJECTS)
    named = {s.strip() for o in only for s in o.split(",") if s.strip()}
    unknown = sorted(named - set(SUBJECTS))
    if unknown:
        raise SystemExit(f"unknown subject {', '.join(unknown)}: choose from {', '.join(SUBJECTS)}")
    return [s for s in SUBJECTS if s in named]


def command(subject: str, quick: bool, out: Path | None) -> list[str]:
    argv = [sys.executable, str(BENCH_DIR / subject / "bench.py")]
    if quick:
        argv.append("--quick")
    if out is not None:
        argv += ["--out", str(out)]
    return argv


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--only",
        action="append",
        metavar="SUBJECT",
        help=f"run only these ({', '.join(SUBJECTS)}); repeat or separate with commas",
    )
    ap.add_argument("--quick", action="store_true", help="small sizes; not written to the docs")
    ap.add_argument("--out", type=Path, help="report to update instead of the default")
    args = ap.parse_args(argv)
    chosen = subjects(args.only)
    took: dict[str, tuple[int, float]] = {}
    for subject in chosen:
        print(f"== {subject}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        code = subprocess.run(command(subject, args.quick, args.out), check=False).returncode
        took[subject] = (code, time.perf_counter() - t0)
    print("\n== summary", file=sys.stderr)
    for subject, (code, seconds) in took.items():
        said = "ok" if code == 0 else f"FAILED (exit code {code})"
        print(f"  {subject:<9} {said:<24} {seconds:7.1f} s", file=sys.stderr)
    return 1 if any(code for code, _ in took.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
