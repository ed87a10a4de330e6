"""Baseline: the CRM schema as crmmigrate made it with create_all before Alembic (commit 537730e).

Revision ID: 0001
Revises:
Create Date: 2026-12-08

Written out column by column rather than derived from the models, so that this revision stays
what it was when the models change. A CRM made before Alembic that matches it is stamped 0001
(crmmigrate.crm.schema) and upgraded from there.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(36)
# crmmigrate.crm.models.Money as it stored values then: exact decimal text on SQLite (no decimal
# type there), NUMERIC elsewhere. Frozen here so that a later change to Money changes no past revision.
MONEY_14_2 = sa.Numeric(14, 2).with_variant(sa.String(16), "sqlite")
MONEY_5_2 = sa.Numeric(5, 2).with_variant(sa.String(7), "sqlite")
MODIFIED = sa.DateTime(timezone=True)


def _child(name: str, parent: str, parent_column: str, *columns: sa.Column) -> None:
    """A CRM entity whose rows hang off *parent*: id, the indexed foreign key, its own columns."""
    op.create_table(
        name,
        sa.Column("id", ID, nullable=False),
        sa.Column(parent_column, ID, nullable=False),
        *columns,
        sa.Column("last_modified_at", MODIFIED, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint([parent_column], [f"{parent}.id"]),
    )
    op.create_index(f"ix_{name}_{parent_column}", name, [parent_column])


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("last_modified_at", MODIFIED, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "crm_user",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "contact",
        sa.Column("id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("owner_id", ID, nullable=True),
        sa.Column("first_name", sa.String(200), nullable=True),
        sa.Column("last_name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("tax_id", sa.String(40), nullable=True),
        sa.Column("owner_name", sa.String(200), nullable=True),
        sa.Column("last_modified_at", MODIFIED, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.ForeignKeyConstraint(["owner_id"], ["crm_user.id"]),
    )
    op.create_index("ix_contact_account_id", "contact", ["account_id"])
    op.create_index("ix_contact_owner_id", "contact", ["owner_id"])
    _child("address", "contact", "contact_id",
           sa.Column("kind", sa.String(20), nullable=False),
           sa.Column("street", sa.String(300), nullable=True),
           sa.Column("city", sa.String(200), nullable=True),
           sa.Column("postcode", sa.String(20), nullable=True),
           sa.Column("country", sa.String(2), nullable=True))
    _child("sales_order", "contact", "contact_id",
           sa.Column("order_number", sa.String(40), nullable=False),
           sa.Column("ordered_on", sa.Date(), nullable=False),
           sa.Column("total", MONEY_14_2, nullable=True),
           sa.Column("currency", sa.String(3), nullable=True))
    _child("order_line", "sales_order", "order_id",
           sa.Column("line_no", sa.Integer(), nullable=False),
           sa.Column("sku", sa.String(60), nullable=True),
           sa.Column("description", sa.Text(), nullable=True),
           sa.Column("quantity", sa.Integer(), nullable=False),
           sa.Column("unit_price", MONEY_14_2, nullable=False))
    _child("invoice", "contact", "contact_id",
           sa.Column("invoice_number", sa.String(40), nullable=False),
           sa.Column("issued_on", sa.Date(), nullable=False),
           sa.Column("amount", MONEY_14_2, nullable=False),
           sa.Column("tax_rate", MONEY_5_2, nullable=True),
           sa.Column("currency", sa.String(3), nullable=False),
           sa.Column("status", sa.String(20), nullable=False))
    _child("shipment", "sales_order", "order_id",
           sa.Column("shipment_number", sa.String(40), nullable=False),
           sa.Column("carrier", sa.String(60), nullable=True),
           sa.Column("tracking_number", sa.String(80), nullable=True),
           sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
           sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
    _child("support_case", "contact", "contact_id",
           sa.Column("case_number", sa.String(40), nullable=False),
           sa.Column("subject", sa.Text(), nullable=True),
           sa.Column("status", sa.String(20), nullable=False),
           sa.Column("priority", sa.String(20), nullable=True),
           sa.Column("channel", sa.String(20), nullable=True),
           sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True))
    _child("marketing_consent", "contact", "contact_id",
           sa.Column("channel", sa.String(20), nullable=False),
           sa.Column("opted_in", sa.Boolean(), nullable=False),
           sa.Column("consented_on", sa.Date(), nullable=True))

    op.create_table(
        "migration_crosswalk",
        sa.Column("entity", sa.String(40), nullable=False),
        sa.Column("source", sa.String(120), nullable=False),
        sa.Column("source_key", sa.String(300), nullable=False),
        sa.Column("crm_id", ID, nullable=False),
        sa.Column("first_run_id", sa.String(64), nullable=False),
        sa.Column("last_run_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("entity", "source", "source_key"),
    )
    op.create_index("ix_migration_crosswalk_crm_id", "migration_crosswalk", ["crm_id"])
    op.create_table(
        "migration_superseded",
        sa.Column("entity", sa.String(40), nullable=False),
        sa.Column("crm_id", ID, nullable=False),
        sa.Column("superseded_by", ID, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("removed_run_id", sa.String(64), nullable=True),
        sa.Column("removed_values", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("entity", "crm_id", "run_id"),
    )
    op.create_index("ix_migration_superseded_superseded_by", "migration_superseded", ["superseded_by"])
    op.create_table(
        "migration_run",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_table(
        "migration_ledger",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(120), nullable=False),
        sa.Column("entity", sa.String(40), nullable=False),
        sa.Column("source_key", sa.String(300), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("crm_id", ID, nullable=True),
        sa.Column("reason_code", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "source", "entity", "source_key"),
    )
    op.create_index("ix_migration_ledger_crm_id", "migration_ledger", ["entity", "crm_id"])


def downgrade() -> None:
    for table in ("migration_ledger", "migration_run", "migration_superseded", "migration_crosswalk",
                  "marketing_consent", "support_case", "shipment", "invoice", "order_line", "sales_order",
                  "address", "contact", "crm_user", "account"):
        op.drop_table(table)  # (a table's indexes go with it)
