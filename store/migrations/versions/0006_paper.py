"""paper-submission log (entries, revisions) and reconciliation overrides

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-28 16:46:07.410975
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import store.types

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "paper_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("org_name", sa.Text(), nullable=False),
        sa.Column("project_name", sa.Text(), nullable=True),
        sa.Column("form_type", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("item", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("copies", sa.Integer(), nullable=False),
        sa.Column("district", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("received_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("credit_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("org_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("project_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source_ref", sa.Text(), nullable=True),
        sa.Column("import_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("import_key"),
    )
    with op.batch_alter_table("paper_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paper_entry_credit_code"), ["credit_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_paper_entry_item"), ["item"], unique=False)
        batch_op.create_index(batch_op.f("ix_paper_entry_org_key"), ["org_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_paper_entry_received_at"), ["received_at"], unique=False)

    op.create_table(
        "paper_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_pk", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("values", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False),
        sa.Column("user", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["entry_pk"], ["paper_entry.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entry_pk", "version"),
    )
    with op.batch_alter_table("paper_revision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paper_revision_entry_pk"), ["entry_pk"], unique=False)

    op.create_table(
        "reconcile_override",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("receipt_no", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("user", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reconcile_override", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reconcile_override_subject"), ["subject"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reconcile_override", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconcile_override_subject"))
    op.drop_table("reconcile_override")
    with op.batch_alter_table("paper_revision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paper_revision_entry_pk"))
    op.drop_table("paper_revision")
    with op.batch_alter_table("paper_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paper_entry_received_at"))
        batch_op.drop_index(batch_op.f("ix_paper_entry_org_key"))
        batch_op.drop_index(batch_op.f("ix_paper_entry_item"))
        batch_op.drop_index(batch_op.f("ix_paper_entry_credit_code"))
    op.drop_table("paper_entry")
