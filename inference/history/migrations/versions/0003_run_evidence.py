"""What each run knows about its summary beyond the text (record parts per statement, the guard's removals), so
that a reopened record is reviewed as it was the first time.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("evidence", sa.JSON(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("history is never downgraded; restore the pre-migration backup instead")
