"""Values indexed for cohort queries, and what doctors changed before signing, measured per signature. Both are
derived from the stored versions: the store fills them for existing history right after this migration
(``derived.backfill``: ``derived_state`` says which code derived them) and again whenever that code changes.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "value_index",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("section", sa.String(32), nullable=False),
        sa.Column("term", sa.String(80), nullable=False),
        sa.Column("parameter", sa.String(32), nullable=False),
        sa.Column("comparator", sa.String(1), nullable=False),
        sa.Column("value_number", sa.Float, nullable=False),
        sa.Column("unit", sa.String(30), nullable=False),
    )
    op.create_index("ix_value_index_document_id", "value_index", ["document_id"])
    op.create_index("ix_value_index_parameter", "value_index", ["parameter", "unit", "value_number"])
    op.create_table(
        "derived_state",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "signing_measures",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("summary_versions.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("signed_at", sa.DateTime, nullable=False),
        sa.Column("signer", sa.String(128), nullable=False),
        sa.Column("model_file", sa.String(260), nullable=False),
        sa.Column("prompt_version", sa.String(64), nullable=False),
        sa.Column("measures", sa.JSON, nullable=False),
    )
    op.create_index("ix_signing_measures_document_id", "signing_measures", ["document_id"])
    op.create_index("ix_signing_measures_signed_at", "signing_measures", ["signed_at"])


def downgrade() -> None:
    raise NotImplementedError("history is never downgraded; restore the pre-migration backup instead")
