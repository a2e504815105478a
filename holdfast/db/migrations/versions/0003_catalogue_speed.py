"""catalogue speed: indexes for the listing and ranking orders

Revision ID: 0003_catalogue_speed
Revises: 0001_core
Create Date: 2026-11-25 16:20:00

Datasets and uploads are listed by status and date, and uploads ranked by seeders;
these indexes let the database walk them in order instead of sorting every row.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_catalogue_speed"
down_revision = "0001_core"
branch_labels = ("catalogue_speed",)
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_datasets_status_updated", "datasets", ["status", "updated_at", "id"], unique=False
    )
    op.create_index(
        "ix_datasets_status_created", "datasets", ["status", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_uploads_status_created", "uploads", ["status", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_uploads_dataset_created", "uploads", ["dataset_id", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_uploads_status_seeders",
        "uploads",
        [
            "status",
            sa.text("(seeders IS NULL)"),
            "seeders",
            sa.text("created_at DESC"),
            sa.text("id DESC"),
        ],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_uploads_status_seeders", table_name="uploads")
    op.drop_index("ix_uploads_dataset_created", table_name="uploads")
    op.drop_index("ix_uploads_status_created", table_name="uploads")
    op.drop_index("ix_datasets_status_created", table_name="datasets")
    op.drop_index("ix_datasets_status_updated", table_name="datasets")
