"""The store's schema history, as Alembic revisions in ``versions/`` (applied by
:func:`archer.store.db.migrate` whenever Archer opens the store).

To change the schema, add a revision — never edit one that has shipped::

    python -m archer.store.migrations "users: a session generation per account"

writes ``versions/0002_….py`` (the next number, after the current head); fill in its
``upgrade()`` and ``downgrade()`` and change the model in the concept's module to match
(``tests/test_store.py`` checks on SQLite and PostgreSQL that they agree).
"""
