"""What matching companies needs: account.website and account.tax_id.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

Nullable, without defaults: existing rows get NULL, added in place.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("account") as batch:
        batch.add_column(sa.Column("website", sa.String(200), nullable=True))
        batch.add_column(sa.Column("tax_id", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account") as batch:
        batch.drop_column("tax_id")
        batch.drop_column("website")
