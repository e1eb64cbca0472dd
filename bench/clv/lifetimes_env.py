"""The separate environment for ``lifetimes`` 0.11.3, created on first use.

``lifetimes`` is unmaintained (last release 2020) and pulls in ``autograd`` and ``dill``, so it
gets its own environment, ``bench/out/venv-lifetimes`` (ignored by git, kept between runs). It is
pinned to the NumPy, pandas and SciPy that Archer's environment has, so both sides compute with
the same numerical libraries.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

from common.harness import OUT

VENV = OUT / "venv-lifetimes"
# Tried on Python 3.11: the summary, BetaGeoFitter.fit (plain and weighted) and its conditional
# expectation run and reproduce the paper's CDNOW estimates with these pins, with the older
# numpy 1.26.4 / pandas 2.2.3 / scipy 1.11.1, and even with pandas 3.0.6.
PINS = [
    "lifetimes==0.11.3",
    "numpy==2.4.6",
    "pandas==2.3.3",
    "scipy==1.17.1",
    "autograd==1.9.1",
    "dill==0.4.1",
]


def python(log=lambda m: None) -> Path:
    """The interpreter of the lifetimes environment, installing it if it is missing."""
    py = VENV / "bin" / "python"
    stamp = VENV / ".pins"
    if py.exists() and stamp.exists() and stamp.read_text() == "\n".join(PINS):
        return py
    log(f"creating {VENV} with {' '.join(PINS)}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PINS],
        check=True,
    )
    stamp.write_text("\n".join(PINS))
    return py


def versions(py: Path) -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m;"
        "print(json.dumps({p: m.version(p) for p in "
        "('lifetimes', 'numpy', 'pandas', 'scipy', 'autograd')}))"
    )
    import json

    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


if __name__ == "__main__":
    print(python(print))
