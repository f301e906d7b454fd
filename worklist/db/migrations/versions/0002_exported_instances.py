"""exported instances: what each export destination acknowledged.

Revision ID: 0002_exported_instances
Revises: 0001_initial
Create Date: 2026-12-02 08:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import worklist.db.types

revision = "0002_exported_instances"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "exported_instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("sent_at", worklist.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["studies.id"],
            name=op.f("fk_exported_instances_study_id_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exported_instances")),
        sa.UniqueConstraint(
            "destination", "sop_instance_uid", name=op.f("uq_exported_instances_destination")
        ),
    )
    with op.batch_alter_table("exported_instances", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_exported_instances_study_id"), ["study_id"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("exported_instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exported_instances_study_id"))
    op.drop_table("exported_instances")
