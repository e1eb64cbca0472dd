"""``python -m archer.store.migrations MESSAGE``: a new, empty revision after the head."""

from __future__ import annotations

import sys

from alembic import command

from archer.store.db import alembic_config, head_revision


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].strip():
        print('usage: python -m archer.store.migrations "what the revision changes"')
        return 2
    head = head_revision()
    rev = f"{int(head) + 1:04d}" if head.isdigit() else None  # 0001, 0002, … in order
    script = command.revision(alembic_config(), message=argv[0], rev_id=rev)
    print(f"wrote {script.path}")  # type: ignore[union-attr]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
