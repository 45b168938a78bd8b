"""sqlmodel tables: mailbox checkpoints, messages, attachments, quarantine, documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from store.types import JSONType, UTCDateTime, utcnow


def _dt(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _json(default_factory: Any = list) -> Any:
    return Field(default_factory=default_factory, sa_type=JSONType, nullable=False)


class MailboxCheckpoint(SQLModel, table=True):
    """Where polling of one account+folder stands: UIDVALIDITY and the highest UID fully done."""

    __tablename__ = "mailbox_checkpoint"
    __table_args__ = (UniqueConstraint("account", "folder"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str
    folder: str
    # 0 until the first successful SELECT.
    uidvalidity: int = Field(default=0, sa_type=BigInteger)
    # Every UID <= last_uid is recorded (and its server action done); UIDs above it may be partly done.
    last_uid: int = Field(default=0, sa_type=BigInteger)
    last_poll_at: datetime | None = _dt()
    last_success_at: datetime | None = _dt()
    last_error: str | None = Field(default=None, sa_type=Text)
    last_error_at: datetime | None = _dt()
    # Lease so that only one poller works a folder at a time when several daemons share a database.
    lease_owner: str | None = None
    lease_until: datetime | None = _dt()


class MailboxUid(SQLModel, table=True):
    """One UID of one folder incarnation (UIDVALIDITY) that has been archived and recorded."""

    __tablename__ = "mailbox_uid"
    __table_args__ = (UniqueConstraint("account", "folder", "uidvalidity", "uid"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str
    folder: str
    uidvalidity: int = Field(sa_type=BigInteger)
    uid: int = Field(sa_type=BigInteger)
    message_pk: int = Field(sa_column=Column(Integer, ForeignKey("message.id"), nullable=False, index=True))
    # The configured server action (flag / move) has been applied; "leave" counts as done at once.
    action_done: bool = False
    recorded_at: datetime | None = _dt()


class Message(SQLModel, table=True):
    """One raw message, archived byte for byte under its sha256, and what was read from it."""

    __tablename__ = "message"
    __table_args__ = (Index("ix_message_state_lease", "state", "lease_until"),)

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(unique=True, index=True, max_length=64)
    size: int
    # "imap" or "file"; source_ref says which mailbox/UID or which file it came from (first seen).
    source: str
    source_ref: str = Field(sa_type=Text)
    received_at: datetime | None = _dt(index=True)
    received_source: str | None = None  # internaldate | received | date
    # new -> processed | quarantined; processing runs the pipeline stages in order.
    state: str = Field(default="new", index=True)
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = _dt()
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    processed_at: datetime | None = _dt()
    quarantine_reason: str | None = Field(default=None, sa_type=Text)

    # Read from the message by the parse stage.
    message_id: str | None = Field(default=None, index=True, sa_type=Text)
    from_addr: str | None = Field(default=None, index=True)
    from_name: str | None = None
    reply_to: list[str] = _json()
    return_path: str | None = None
    to: list[str] = _json()
    cc: list[str] = _json()
    subject: str | None = Field(default=None, sa_type=Text)
    sent_at: datetime | None = _dt()
    in_reply_to: str | None = Field(default=None, sa_type=Text)
    references: list[str] = _json()
    msg_class: str | None = Field(default=None, index=True)
    class_reasons: list[str] = _json()
    cloud_links: list[dict[str, Any]] = _json()
    headers: dict[str, list[str]] = _json(dict)
    defects: list[str] = _json()
    text_body: str | None = Field(default=None, sa_type=Text)
    html_body: str | None = Field(default=None, sa_type=Text)


class AttachmentRow(SQLModel, table=True):
    """One file carried by a message; its bytes live in the blob store under `sha256`."""

    __tablename__ = "attachment"

    id: int | None = Field(default=None, primary_key=True)
    message_pk: int = Field(sa_column=Column(Integer, ForeignKey("message.id"), nullable=False, index=True))
    seq: int
    filename: str = Field(sa_type=Text)
    content_type: str
    size: int
    sha256: str = Field(index=True, max_length=64)
    disposition: str | None = None
    container: str = ""


class QuarantineEvent(SQLModel, table=True):
    """Why a message could not be processed; kept as history across replays."""

    __tablename__ = "quarantine_event"

    id: int | None = Field(default=None, primary_key=True)
    message_pk: int = Field(sa_column=Column(Integer, ForeignKey("message.id"), nullable=False, index=True))
    stage: str
    reason: str = Field(sa_type=Text)
    detail: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    resolved_at: datetime | None = _dt()


class DocumentRow(SQLModel, table=True):
    """One attachment, or one member of an attached archive, as the parsers read it."""

    __tablename__ = "document"

    id: int | None = Field(default=None, primary_key=True)
    message_pk: int = Field(sa_column=Column(Integer, ForeignKey("message.id"), nullable=False, index=True))
    attachment_pk: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("attachment.id"), nullable=True, index=True)
    )
    # The archive a member came from (members of members are flattened under the top archive).
    parent_pk: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("document.id"), nullable=True))
    seq: int
    filename: str = Field(sa_type=Text)
    member_path: str = Field(default="", sa_type=Text)
    sha256: str = Field(index=True, max_length=64)
    size: int
    kind: str = Field(index=True)
    format: str
    fields: dict[str, Any] = _json(dict)
    text: str = Field(default="", sa_type=Text)
    warnings: list[str] = _json()
    problems: list[dict[str, str]] = _json()
    kind_reasons: list[str] = _json()
    seal: bool | None = None
    has_commitment_page: bool = False
    pages: int | None = None
    ocr_used: bool = False
    elapsed: float = 0.0
    # Copied from the message: lateness and versions are decided per document.
    received_at: datetime | None = _dt(index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    # Who the document says it is from, normalised (review.names): grouping finds an organisation's
    # documents through these indexed columns.
    org_code: str | None = Field(default=None, index=True)
    org_name_key: str | None = Field(default=None, index=True)
    project_key: str | None = None
    # The application the document belongs to (None: unassigned, shown to staff), and why.
    application_pk: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("application.id"), nullable=True, index=True)
    )
    assigned_by: str | None = None
    assign_note: str | None = Field(default=None, sa_type=Text)


class Application(SQLModel, table=True):
    """One project, in one direction, by one lead applicant (SPEC 6); its facts are recomputed, never edited."""

    __tablename__ = "application"

    id: int | None = Field(default=None, primary_key=True)
    call_code: str
    form_type: str = Field(index=True)  # scenario | model | platform | terminal
    receipt_no: str = Field(unique=True, index=True)
    org_key: str = Field(index=True)
    org_name: str | None = Field(default=None, sa_type=Text)
    credit_code: str | None = Field(default=None, index=True)
    project_name: str | None = Field(default=None, sa_type=Text)
    district: str | None = Field(default=None, index=True)
    sender: str | None = None
    status: str = Field(default="incomplete", index=True)  # complete | incomplete | late | merged
    late: bool = False
    problems: list[dict[str, Any]] = _json()
    fields: dict[str, Any] = _json(dict)
    # Document ids of record per item (word, pdf, commitment, license, evidence -> [ids]).
    record: dict[str, Any] = _json(dict)
    # Stable identities ("<message id>:<sha256>") of the form documents that make up this application:
    # how a regroup recognises the application after a replay changed document ids.
    doc_keys: list[str] = _json()
    first_received_at: datetime | None = _dt(index=True)
    last_received_at: datetime | None = _dt()
    # When a regroup joins two applications, the younger one points at the one that lives on.
    merged_into: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("application.id"), nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class ReceiptCounter(SQLModel, table=True):
    """Last receipt number handed out per call and form type: numbers are never reused."""

    __tablename__ = "receipt_counter"

    call_code: str = Field(primary_key=True)
    form_type: str = Field(primary_key=True)
    last: int = 0


class Decision(SQLModel, table=True):
    """A staff decision on an application (waive a problem, accept a late application), with who and why."""

    __tablename__ = "decision"

    id: int | None = Field(default=None, primary_key=True)
    application_pk: int = Field(sa_column=Column(Integer, ForeignKey("application.id"), nullable=False, index=True))
    action: str  # waive | accept_late | revoke
    problem_code: str | None = None
    reason: str = Field(sa_type=Text)
    user: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    # A revoke points at the decision it cancels.
    revokes: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("decision.id"), nullable=True))


class AssignmentOverride(SQLModel, table=True):
    """Staff put a document (by content hash) into an application; regrouping keeps to it."""

    __tablename__ = "assignment_override"

    id: int | None = Field(default=None, primary_key=True)
    document_sha256: str = Field(index=True, max_length=64)
    receipt_no: str
    user: str
    reason: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class AuditEvent(SQLModel, table=True):
    """Every change made by a person (CLI or dashboard): who, when, what, on what, why."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)
    user: str = Field(index=True)
    action: str
    target: str = Field(index=True)  # "application:AI2026-S-0007", "document:123", "user:alice", ...
    detail: dict[str, Any] = _json(dict)


def insert_values(model: type[SQLModel], **values: Any) -> dict[str, Any]:
    """Column values for a Core INSERT of `model`, with the model's defaults filled in.

    Building sqlmodel objects costs about a millisecond each (pydantic); hot paths that insert many
    rows use Core inserts with these dicts instead.
    """
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name in values:
            out[name] = values[name]
        elif field.default_factory is not None:
            out[name] = field.default_factory()  # type: ignore[call-arg]
        elif name != "id":
            out[name] = field.default
    unknown = set(values) - set(out)
    if unknown:
        raise TypeError(f"{model.__name__} has no column(s) {', '.join(sorted(unknown))}")
    return out


# The message table for Core statements on hot paths (an UPDATE per processed message), where the ORM's
# bulk-update machinery costs more than the statement itself.
MESSAGES: Table = SQLModel.metadata.tables["message"]

# Tables of other areas live in their own modules (acknowledgement outbox, paper log, dashboard users);
# importing them here puts every table on SQLModel.metadata for alembic and for anyone importing models.
from store import acks_models, paper_models, users_models  # noqa: E402, F401
