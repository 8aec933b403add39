"""Full-text search over documents and summaries (FTS5 trigram: works for Chinese), LoRA per run.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("lora", sa.String(260), nullable=True))
    op.execute("CREATE VIRTUAL TABLE search_index USING fts5(document_id UNINDEXED, kind UNINDEXED, content, "
               "tokenize='trigram')")
    op.execute("INSERT INTO search_index (document_id, kind, content) SELECT id, 'document', text FROM documents")


def downgrade() -> None:
    raise NotImplementedError("history is never downgraded; restore the pre-migration backup instead")
