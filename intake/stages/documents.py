"""Stage that reads every attachment of a submission with the document parsers (issue 3)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from sqlalchemy import delete, insert
from sqlmodel import col, select

from intake.pipeline import MessageContext, stage
from parsers.types import Attachment, MessageClass, ParsedDocument
from review.identity import document_identity
from store.models import AttachmentRow, DocumentRow, insert_values

log = logging.getLogger(__name__)

# Inline images this small without a sender-given purpose are logos and signature icons, not proof.
_DECORATION_BYTES = 30 * 1024


def wanted(a: Attachment) -> bool:
    """Attachments worth reading: everything but small inline decoration images."""
    return not (
        (a.disposition or "").lower() == "inline" and a.content_type.startswith("image/") and a.size < _DECORATION_BYTES
    )


def _flatten(doc: ParsedDocument, parent: int | None, out: list[tuple[ParsedDocument, int | None]]) -> None:
    out.append((doc, parent))
    for m in doc.members:
        _flatten(m, -1, out)  # -1: "the archive above", resolved once its row has an id


@stage("parse_documents", slow=True)
def parse_documents_stage(ctx: MessageContext) -> None:
    """Classify and parse each attachment (archives: each member) in a sandboxed worker; store the records."""
    parsed = ctx.data.get("parsed")
    msg = ctx.message
    s = ctx.session
    if msg.processed_at is not None or msg.attempts > 1:
        s.exec(
            delete(DocumentRow).where(col(DocumentRow.message_pk) == msg.id, col(DocumentRow.parent_pk).is_not(None))
        )
        s.exec(delete(DocumentRow).where(col(DocumentRow.message_pk) == msg.id))
    ctx.data["documents"] = []
    if parsed is None or parsed.msg_class != MessageClass.submission:
        return
    rows = {r.seq: r for r in s.exec(select(AttachmentRow).where(AttachmentRow.message_pk == msg.id))}
    pool = ctx.services.parser_pool()
    # Parse everything first, write after: no write transaction stays open while OCR runs.
    results = [(i, pool.parse(att.data, att.filename)) for i, att in enumerate(parsed.attachments) if wanted(att)]
    seq = 0
    for i, doc in results:
        flat: list[tuple[ParsedDocument, int | None]] = []
        _flatten(doc, None, flat)
        top_id: int | None = None
        for d, parent in flat:
            code, name, project = document_identity(d.kind, d.fields, d.text)
            values = insert_values(
                DocumentRow,
                message_pk=msg.id,
                attachment_pk=rows[i].id if i in rows else None,
                parent_pk=top_id if parent == -1 else None,
                seq=seq,
                filename=d.filename,
                member_path=d.member_path,
                sha256=d.sha256,
                size=d.size,
                kind=d.kind.value,
                format=d.format.value,
                fields=_jsonable(d.fields),
                text=d.text,
                warnings=d.warnings,
                problems=[p.as_dict() for p in d.problems],
                kind_reasons=d.kind_reasons,
                seal=d.seal,
                has_commitment_page=d.has_commitment_page,
                pages=d.pages,
                ocr_used=d.ocr_used,
                elapsed=d.elapsed,
                received_at=msg.received_at,
                created_at=ctx.services.clock(),
                org_code=code,
                org_name_key=name,
                project_key=project,
            )
            new_id = s.exec(insert(DocumentRow).returning(col(DocumentRow.id)), params=[values]).scalar_one()
            if top_id is None:
                top_id = new_id
            seq += 1
            ctx.data["documents"].append((new_id, d))
        log.info(
            "message %s: %s -> %s/%s%s",
            msg.id,
            doc.filename,
            doc.kind.value,
            doc.format.value,
            f" ({doc.problems[0].detail})" if doc.problems else "",
        )


def _jsonable(value: Any) -> Any:
    """Fields as JSON: dataclasses and tuples become dicts and lists."""
    if hasattr(value, "__dataclass_fields__"):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
