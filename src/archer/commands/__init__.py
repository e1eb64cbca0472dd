"""CLI commands by domain; each module registers its commands on :data:`archer.cli_support.app`."""
