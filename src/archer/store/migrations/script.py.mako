"""${message}

Revision ${up_revision}, after ${down_revision | comma,n}; made ${create_date}.

Write the tables as they are at this revision (``sa.Column(...)`` with plain types), not
through today's models, so that replaying history always builds the same schema. On SQLite,
change a table inside ``with op.batch_alter_table(name) as t:`` (SQLite cannot alter most
of a table in place; batch mode copies it).
"""

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = ${repr(up_revision).replace("'", '"')}
down_revision = ${repr(down_revision).replace("'", '"')}
branch_labels = None
depends_on = None


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
