"""Alembic environment for the ILL ledger; run through ``ill.db.upgrade`` (no alembic.ini).

The caller hands over an open connection in ``config.attributes["connection"]``, already in
the transaction that holds the migration lock (so the migrations run inside it, not in a
transaction of their own); the command-line ``alembic`` tool is only needed to write new
migrations (see README), and takes no lock.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from ill.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


connection = config.attributes.get("connection")
if connection is not None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()
else:  # `alembic -x url=... revision --autogenerate` while developing
    url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///instance/dev.sqlite3")
    engine = create_engine(url)
    with engine.begin() as own:
        _configure(own)
        with context.begin_transaction():
            context.run_migrations()
