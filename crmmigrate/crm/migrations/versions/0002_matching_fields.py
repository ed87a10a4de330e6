"""What matching needs: contact.middle_name, birth_date, mobile; address.region (commit 1b92f65).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08

All nullable and without defaults: existing rows get NULL, and SQLite adds each column in
place (batch mode copies no table for this).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact") as batch:
        batch.add_column(sa.Column("middle_name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("birth_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("mobile", sa.String(32), nullable=True))
    with op.batch_alter_table("address") as batch:
        batch.add_column(sa.Column("region", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("address") as batch:
        batch.drop_column("region")
    with op.batch_alter_table("contact") as batch:
        batch.drop_column("mobile")
        batch.drop_column("birth_date")
        batch.drop_column("middle_name")
