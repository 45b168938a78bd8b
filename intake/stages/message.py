"""Stages that read the message itself: headers, bodies, class, attachments."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import insert, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, delete

from intake.pipeline import MessageContext, Quarantine, stage
from parsers.mail import MessageParseError
from store.models import MESSAGES, AttachmentRow, DocumentRow


@stage("parse_message")
def parse_message_stage(ctx: MessageContext) -> None:
    """Decode headers, bodies and attachments; classify the message (submission, bounce, ...)."""
    msg = ctx.message
    internaldate = msg.received_at if msg.received_source == "internaldate" else None
    try:
        # In a parser process: the busiest step of a poll gets a core of its own, and a hostile message that
        # would hang or exhaust the parser is stopped by the pool's time and memory limits.
        parsed = ctx.services.message_parser().parse_message(ctx.raw, internaldate=internaldate)
    except MessageParseError as e:
        raise Quarantine(f"message cannot be parsed: {e}") from None
    ctx.data["parsed"] = parsed
    values = {
        "message_id": parsed.message_id,
        "from_addr": parsed.from_addr,
        "from_name": parsed.from_name,
        "reply_to": parsed.reply_to,
        "return_path": parsed.return_path,
        "to": parsed.to,
        "cc": parsed.cc,
        "subject": parsed.subject,
        "sent_at": parsed.sent_at,
        "in_reply_to": parsed.in_reply_to,
        "references": parsed.references,
        "msg_class": parsed.msg_class.value,
        "class_reasons": parsed.class_reasons,
        "cloud_links": [asdict(c) for c in parsed.cloud_links],
        "headers": parsed.headers,
        "defects": parsed.defects,
        "text_body": parsed.text,
        "html_body": parsed.html,
    }
    if internaldate is None:
        # Files: the newest Received header, else Date (SPEC 5); which one is recorded.
        values["received_at"] = parsed.received_at
        values["received_source"] = parsed.received_source
    # One UPDATE on the table (Core: the ORM's bulk-update path costs more than the statement on this hot
    # path); the in-session object is told the new values without dirty tracking.
    ctx.session.connection().execute(update(MESSAGES).where(MESSAGES.c.id == msg.id).values(**values))
    for key, value in values.items():
        set_committed_value(msg, key, value)


@stage("store_attachments")
def store_attachments_stage(ctx: MessageContext) -> None:
    """Keep each attachment's bytes in the blob store and list it; a replay replaces the list."""
    parsed = ctx.data.get("parsed")
    if parsed is None:
        raise Quarantine("store_attachments needs parse_message before it in pipeline.stages")
    s = ctx.session
    msg = ctx.message
    if msg.processed_at is not None or msg.attempts > 1:
        # A replay, or a retry after an interrupted run: replace what that run listed. Documents are read
        # from attachments, so they go first (archive members point at their archive: children first).
        s.exec(
            delete(DocumentRow).where(col(DocumentRow.message_pk) == msg.id, col(DocumentRow.parent_pk).is_not(None))
        )
        s.exec(delete(DocumentRow).where(col(DocumentRow.message_pk) == msg.id))
        s.exec(delete(AttachmentRow).where(col(AttachmentRow.message_pk) == msg.id))
    if parsed.attachments:
        ctx.services.blobs.put_many([a.data for a in parsed.attachments], [a.sha256 for a in parsed.attachments])
        # One multi-row INSERT: the ORM's per-object bookkeeping costs more than the insert itself here.
        s.exec(
            insert(AttachmentRow),
            params=[
                {
                    "message_pk": msg.id,
                    "seq": seq,
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "size": a.size,
                    "sha256": a.sha256,
                    "disposition": a.disposition,
                    "container": a.container,
                }
                for seq, a in enumerate(parsed.attachments)
            ],
        )
