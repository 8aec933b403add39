"""Where each line of a record read from pages stands in the original (file, page, box, the OCR's confidence):
a record reopened from the history is reviewed with the same O1 warnings and shows the same pages.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("provenance", sa.JSON(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("history is never downgraded; restore the pre-migration backup instead")
