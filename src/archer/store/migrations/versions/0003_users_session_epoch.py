"""Users: a session epoch, bumped at sign-out, so that a copied cookie stops working.

Revision 0003. Session cookies carry a stamp of the password hash and this number; a sign-out
adds one to it, which ends every session of that operator on the server.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as t:
        t.add_column(sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("users") as t:
        t.drop_column("session_epoch")
