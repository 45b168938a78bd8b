"""Tables of the acknowledgement outbox (issue 6)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, LargeBinary, Text
from sqlmodel import Field, SQLModel

from store.types import JSONType, UTCDateTime, utcnow

# Outbox states. pending -> sending -> sent is the normal life of an ack; a failed attempt goes back to
# pending with a later next_attempt_at until the retry limit, then failed. A row left in sending by a
# process that died after the SMTP DATA command began becomes unknown (staff decide) unless the Sent
# folder settles it. suppressed and dry_run rows are never sent.
ACK_STATES = ("pending", "sending", "sent", "failed", "suppressed", "unknown", "dry_run")


class AckOutbox(SQLModel, table=True):
    """One acknowledgement decision per received message: what was (or would be) sent, and what happened."""

    __tablename__ = "ack_outbox"
    __table_args__ = (
        Index("ix_ack_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_ack_outbox_recipient_created", "recipient", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # The message acknowledged. Unique: reprocessing or replaying a message can never add a second ack.
    message_pk: int = Field(sa_column=Column(Integer, ForeignKey("message.id"), nullable=False, unique=True))
    # receipt (a submission), question (a plain question: the short "see the notice" reply),
    # limit_notice (the last one before the per-sender limit), none (nothing to send: suppressed).
    kind: str = "receipt"
    status: str = "pending"
    # Why it is suppressed / unknown / failed, in words for staff.
    reason: str | None = Field(default=None, sa_type=Text)
    # Where it goes (Reply-To, else From), lower-cased: also the per-sender rate-limit key.
    recipient: str | None = None
    # Our own Message-ID of the ack (with angle brackets): how a copy in the Sent folder is recognised.
    ack_message_id: str | None = Field(default=None, unique=True)
    subject: str | None = Field(default=None, sa_type=Text)
    # The exact bytes handed to the SMTP server (or that would be, in dry-run mode).
    raw: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    receipt_nos: list[str] = Field(default_factory=list, sa_type=JSONType, nullable=False)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_error: str | None = Field(default=None, sa_type=Text)
    # A sender's claim on the row while it talks to the SMTP server.
    lease_owner: str | None = None
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    # Set (and committed) just before the DATA command: from here on the server may have the message,
    # so an interrupted attempt must not simply be repeated.
    data_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True, index=True)
    smtp_reply: str | None = Field(default=None, sa_type=Text)
    # When the copy was APPENDed to the IMAP Sent folder ([ack] sent_folder), if configured.
    copied_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    # Staff actions and automatic recoveries on this row, oldest first ({at, what, detail}).
    history: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
