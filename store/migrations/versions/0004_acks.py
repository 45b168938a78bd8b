"""acknowledgement outbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 16:44:13.315750
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ack_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("ack_message_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column(
            "receipt_nos", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("lease_until", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("data_started_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("smtp_reply", sa.Text(), nullable=True),
        sa.Column("copied_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "history", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False
        ),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_pk"], ["message.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ack_message_id"),
        sa.UniqueConstraint("message_pk"),
    )
    with op.batch_alter_table("ack_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ack_outbox_created_at"), ["created_at"], unique=False)
        batch_op.create_index("ix_ack_outbox_recipient_created", ["recipient", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_ack_outbox_sent_at"), ["sent_at"], unique=False)
        batch_op.create_index("ix_ack_outbox_status_next", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ack_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_ack_outbox_status_next")
        batch_op.drop_index(batch_op.f("ix_ack_outbox_sent_at"))
        batch_op.drop_index("ix_ack_outbox_recipient_created")
        batch_op.drop_index(batch_op.f("ix_ack_outbox_created_at"))

    op.drop_table("ack_outbox")
