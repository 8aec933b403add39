"""Whether a run's draft was written by the demo model: every export of it, desktop or CLI, carries the
not-for-clinical-use mark, and a reopened demo draft still blocks signing.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("demo", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    raise NotImplementedError("history is never downgraded; restore the pre-migration backup instead")
