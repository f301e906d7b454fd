"""studies.order_at: the deadline that orders a study within its class (issue 12).

A study that escalation by waiting raised is ordered as due from the moment it was raised
(``triage.policy.ordering_deadline``); ``due_at`` keeps its meaning (arrival plus the target of
the class before waiting). The worklist index now ends in ``order_at``. Existing rows take
``order_at = due_at``; the worker's next sweep corrects those already raised by waiting.

Revision ID: 0003_study_order_at
Revises: 0002_exported_instances
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import worklist.db.types

revision = "0003_study_order_at"
down_revision = "0002_exported_instances"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("order_at", worklist.db.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(sa.text("UPDATE studies SET order_at = due_at"))
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_index("ix_studies_worklist")
        batch_op.create_index(
            "ix_studies_worklist", ["read_status", "priority", "order_at"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_index("ix_studies_worklist")
        batch_op.create_index(
            "ix_studies_worklist", ["read_status", "priority", "due_at"], unique=False
        )
        batch_op.drop_column("order_at")
