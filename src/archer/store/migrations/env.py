"""Alembic's environment for the operational store, run by :func:`archer.store.db.migrate`.

Archer configures Alembic in code (no ``alembic.ini``): ``migrate`` hands over an open
connection, already in the transaction that applies every pending revision at once, in
``config.attributes["connection"]``. SQLite runs in batch mode (``render_as_batch``), so a
revision's ``op.batch_alter_table`` rebuilds a table where SQLite cannot alter it in place.
"""

from alembic import context

from archer.store.db import Base

conn = context.config.attributes.get("connection")
if conn is None:
    raise RuntimeError(
        "the store's migrations run through archer.store.db.migrate (they need its connection)"
    )
context.configure(
    connection=conn,
    target_metadata=Base.metadata,
    render_as_batch=conn.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
