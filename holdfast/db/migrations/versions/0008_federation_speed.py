"""federation: a dataset's own objects found by (dataset, kind), not among its uploads'

Revision ID: 0008_federation_speed
Revises: 0006_federation
"""

from alembic import op

revision = "0008_federation_speed"
down_revision = "0006_federation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = "federation_objects"
    op.drop_index("ix_federation_objects_dataset_ref", table_name=table)
    op.drop_index("ix_federation_objects_dataset_id", table_name=table)
    op.create_index("ix_federation_objects_dataset_ref_kind", table, ["dataset_ref", "kind"])
    op.create_index("ix_federation_objects_dataset_id_kind", table, ["dataset_id", "kind"])


def downgrade() -> None:
    table = "federation_objects"
    op.drop_index("ix_federation_objects_dataset_id_kind", table_name=table)
    op.drop_index("ix_federation_objects_dataset_ref_kind", table_name=table)
    op.create_index("ix_federation_objects_dataset_id", table, ["dataset_id"])
    op.create_index("ix_federation_objects_dataset_ref", table, ["dataset_ref"])
