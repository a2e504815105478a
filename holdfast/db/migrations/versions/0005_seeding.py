"""seeding: web seeds submitted for uploads

Revision ID: 0005_seeding
Revises: 0001_core
Create Date: 2026-12-02 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import holdfast.db.base

revision = "0005_seeding"
down_revision = "0001_core"
branch_labels = ("seeding",)
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "submitted_webseeds",
        sa.Column("id", ID, nullable=False),
        sa.Column("upload_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("pieces_checked", ID, nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", holdfast.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("checked_at", holdfast.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_submitted_webseeds_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["uploads.id"],
            name=op.f("fk_submitted_webseeds_upload_id_uploads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submitted_webseeds")),
        sa.UniqueConstraint("upload_id", "url", name=op.f("uq_submitted_webseeds_upload_id")),
    )
    with op.batch_alter_table("submitted_webseeds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_submitted_webseeds_account_id"), ["account_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("submitted_webseeds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_submitted_webseeds_account_id"))
    op.drop_table("submitted_webseeds")
