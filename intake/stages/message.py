"""Stages that read the message itself: headers, bodies, class, attachments."""

from __future__ import annotations

from dataclasses import asdict

from sqlmodel import col, delete

from intake.pipeline import MessageContext, Quarantine, stage
from parsers.mail import MessageParseError, parse_message
from store.models import AttachmentRow


@stage("parse_message")
def parse_message_stage(ctx: MessageContext) -> None:
    """Decode headers, bodies and attachments; classify the message (submission, bounce, ...)."""
    msg = ctx.message
    internaldate = msg.received_at if msg.received_source == "internaldate" else None
    try:
        parsed = parse_message(ctx.raw, internaldate=internaldate)
    except MessageParseError as e:
        raise Quarantine(f"message cannot be parsed: {e}") from None
    ctx.data["parsed"] = parsed
    msg.message_id = parsed.message_id
    msg.from_addr = parsed.from_addr
    msg.from_name = parsed.from_name
    msg.reply_to = parsed.reply_to
    msg.return_path = parsed.return_path
    msg.to = parsed.to
    msg.cc = parsed.cc
    msg.subject = parsed.subject
    msg.sent_at = parsed.sent_at
    msg.in_reply_to = parsed.in_reply_to
    msg.references = parsed.references
    msg.msg_class = parsed.msg_class.value
    msg.class_reasons = parsed.class_reasons
    msg.cloud_links = [asdict(c) for c in parsed.cloud_links]
    msg.headers = parsed.headers
    msg.defects = parsed.defects
    msg.text_body = parsed.text
    msg.html_body = parsed.html
    if internaldate is None:
        # Files: the newest Received header, else Date (SPEC 5); which one is recorded.
        msg.received_at = parsed.received_at
        msg.received_source = parsed.received_source
    ctx.session.add(msg)


@stage("store_attachments")
def store_attachments_stage(ctx: MessageContext) -> None:
    """Keep each attachment's bytes in the blob store and list it; a replay replaces the list."""
    parsed = ctx.data.get("parsed")
    if parsed is None:
        raise Quarantine("store_attachments needs parse_message before it in pipeline.stages")
    s = ctx.session
    s.exec(delete(AttachmentRow).where(col(AttachmentRow.message_pk) == ctx.message.id))
    if parsed.attachments:
        ctx.services.blobs.put_many([a.data for a in parsed.attachments], [a.sha256 for a in parsed.attachments])
    rows = []
    for seq, a in enumerate(parsed.attachments):
        row = AttachmentRow(
            message_pk=ctx.message.id or 0,
            seq=seq,
            filename=a.filename,
            content_type=a.content_type,
            size=a.size,
            sha256=a.sha256,
            disposition=a.disposition,
            container=a.container,
        )
        s.add(row)
        rows.append(row)
    s.flush()
    ctx.data["attachment_rows"] = rows
