"""Tables of the paper-submission log and reconciliation (issue 5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from store.types import JSONType, UTCDateTime, utcnow


class PaperEntry(SQLModel, table=True):
    """One hand-in at room 213 as logged by staff: the current values; every change is a PaperRevision."""

    __tablename__ = "paper_entry"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    org_name: str = Field(sa_type=Text)
    project_name: str | None = Field(default=None, sa_type=Text)
    # scenario | model | platform | terminal, or None when the log does not say (方向 left blank).
    form_type: str | None = None
    # form (申报书) | recommendation (推荐意见) | summary (汇总表)
    item: str = Field(index=True)
    copies: int = 1
    district: str | None = None
    received_by: str | None = None
    note: str | None = Field(default=None, sa_type=Text)
    # Only when the log has a 统一社会信用代码 column (an extra column the SPEC headings do not require).
    credit_code: str | None = Field(default=None, index=True)
    # Normalised keys (review.names), recomputed on every edit: matching reads these, not the raw names.
    org_key: str | None = Field(default=None, index=True)
    project_key: str | None = None
    # cli | import | dashboard; source_ref says which file and row, for an import.
    source: str
    source_ref: str | None = Field(default=None, sa_type=Text)
    # Fingerprint of an imported row (values + occurrence in its file): importing a file again skips it.
    import_key: str | None = Field(default=None, unique=True)
    # Removed entries stay (with their history) and are left out of reconciliation.
    deleted: bool = False
    version: int = 1
    created_by: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class PaperRevision(SQLModel, table=True):
    """One version of a paper entry: the values after a create, edit or delete, with who, when and why."""

    __tablename__ = "paper_revision"
    __table_args__ = (UniqueConstraint("entry_pk", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    entry_pk: int = Field(sa_column=Column(Integer, ForeignKey("paper_entry.id"), nullable=False, index=True))
    version: int
    action: str  # create | edit | delete | restore
    values: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType, nullable=False)
    user: str
    reason: str | None = Field(default=None, sa_type=Text)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class ReconcileOverride(SQLModel, table=True):
    """A staff decision on a match, append-only: the newest row per subject is the one in force.

    subject: "paper:<entry id>" or "summary:<document sha256[:16]>:<row index>" (stable across replays);
    action: match (to receipt_no) | unmatch (to no application) | clear (back to automatic matching).
    """

    __tablename__ = "reconcile_override"

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(index=True)
    action: str
    receipt_no: str | None = None
    user: str
    reason: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
