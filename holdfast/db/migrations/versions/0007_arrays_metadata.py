"""arrays: the holdfast.yaml metadata of uploads

Revision ID: 0007_arrays_metadata
Revises: 0001_core
Create Date: 2026-11-25 19:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

import holdfast.db.base

revision = "0007_arrays_metadata"
down_revision = "0001_core"
branch_labels = ("arrays",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "upload_metadata",
        sa.Column("upload_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("display", sa.JSON(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("yaml", sa.Text(), nullable=False),
        sa.Column("updated_at", holdfast.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_upload_metadata_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["uploads.id"],
            name=op.f("fk_upload_metadata_upload_id_uploads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload_id", name=op.f("pk_upload_metadata")),
    )
    with op.batch_alter_table("upload_metadata", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_upload_metadata_account_id"), ["account_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("upload_metadata", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upload_metadata_account_id"))
    op.drop_table("upload_metadata")
