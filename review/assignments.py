"""Staff put a document into an application: an audited override that every regroup keeps to."""

from __future__ import annotations

from sqlmodel import Session, col, select

from intake.config import Config
from review.service import RegroupResult, regroup
from store.models import Application, AssignmentOverride, AuditEvent, DocumentRow
from store.types import utcnow


class AssignmentError(Exception):
    """The assignment cannot be made (unknown document or receipt, empty reason or user)."""


def assign_document(
    session: Session, config: Config, document_id: int, receipt_no: str, *, user: str, reason: str
) -> RegroupResult:
    """Record that document `document_id` belongs to `receipt_no` and regroup what it touches.

    The override is keyed by the document's content hash, so it survives replays (new row ids) and
    applies to the same file sent again.
    """
    if not user.strip() or not reason.strip():
        raise AssignmentError("a user and a reason are required")
    doc = session.get(DocumentRow, document_id)
    if doc is None:
        raise AssignmentError(f"no document with id {document_id}")
    app = session.exec(select(Application).where(Application.receipt_no == receipt_no)).first()
    if app is None:
        raise AssignmentError(f"no application {receipt_no}")
    if app.status == "merged":
        raise AssignmentError(f"{receipt_no} was merged into another application; assign to that one")
    before = doc.application_pk
    session.add(AssignmentOverride(document_sha256=doc.sha256, receipt_no=receipt_no, user=user, reason=reason))
    session.add(
        AuditEvent(
            at=utcnow(),
            user=user,
            action="assign_document",
            target=f"document:{document_id}",
            detail={"receipt_no": receipt_no, "reason": reason, "filename": doc.filename, "from_application": before},
        )
    )
    session.flush()
    # Regroup the document's email and the target's emails: both sides of the move are rechecked.
    messages = {doc.message_pk} | set(
        session.exec(select(DocumentRow.message_pk).where(col(DocumentRow.application_pk) == app.id))
    )
    return regroup(session, config, message_ids=messages)
