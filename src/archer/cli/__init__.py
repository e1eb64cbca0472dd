"""The ``archer`` command: one command per user task, each a thin shell over the core.

Every command that reports something takes ``--json`` and then prints one JSON
document on stdout and nothing else there; errors go to stderr with exit code 1.
Each module registers its commands on :data:`archer.cli.support.app`.
"""

from archer.cli import (  # noqa: F401  (each registers its commands)
    audience,
    campaign,
    clv,
    consent,
    hotwords,
    measure,
    o2o,
    offers,
    profile,
    targeting,
    theme,
    tracking,
    users,
    views,
    workspace,
)
from archer.cli.support import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover
    app()
