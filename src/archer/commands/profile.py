"""`archer` commands: profile (see the module docstring once filled)."""

from archer.cli_support import app  # noqa: F401
