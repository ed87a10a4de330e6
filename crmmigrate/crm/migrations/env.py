"""Alembic's environment for the CRM schema, driven from crmmigrate.crm.schema (no alembic.ini).

The caller hands over an open connection in ``config.attributes["connection"]`` so that a
pre-Alembic CRM's stamp and its upgrade run on one connection (and, on PostgreSQL, in one
transaction: a failed upgrade leaves the CRM as it was).
"""

from alembic import context

from crmmigrate.crm.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the CRM migrations run through crmmigrate.crm.schema (`crmmigrate db upgrade`), "
                       "which passes a connection; there is no alembic.ini")

context.configure(
    connection=connection,
    # Only for drafting a revision with autogenerate; the revisions themselves never read the models.
    target_metadata=Base.metadata,
    # SQLite alters little in place: batch mode copies a table when a change needs it.
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
