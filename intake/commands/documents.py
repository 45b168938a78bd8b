"""CLI: documents (unassigned ones especially) and assigning a document to an application by hand."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlmodel import Session, col, select

from intake.cli import REJECTED, ConfigOpt, DbOpt, Fail, _context, app, err, out
from review.model import ITEM_LABEL
from store.models import Application, DocumentRow, Message


@app.command()
def documents(
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    unassigned: Annotated[bool, typer.Option("--unassigned", help="Only documents no application claimed.")] = False,
    receipt: Annotated[str | None, typer.Option("--receipt", help="Only this application's documents.")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table or json")] = "table",
) -> None:
    """Documents read from attachments, with kind, format and the application they belong to."""
    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        q = (
            select(DocumentRow, Message.from_addr, Message.subject, Application.receipt_no)
            .join(Message, col(Message.id) == DocumentRow.message_pk)
            .outerjoin(Application, col(Application.id) == DocumentRow.application_pk)
        )
        if unassigned:
            q = q.where(
                col(DocumentRow.application_pk).is_(None), col(DocumentRow.kind).not_in(["summary", "recommendation"])
            )
        if receipt:
            q = q.where(Application.receipt_no == receipt)
        rows = s.exec(q.order_by(col(DocumentRow.id))).all()
        items: list[dict[str, Any]] = [
            {
                "id": d.id,
                "filename": d.filename,
                "member_path": d.member_path,
                "kind": d.kind,
                "format": d.format,
                "sha256": d.sha256,
                "message_id": d.message_pk,
                "from": frm,
                "subject": subj,
                "receipt_no": rcpt,
                "assigned_by": d.assigned_by,
                "note": d.assign_note,
                "problems": [p.get("detail") for p in d.problems],
            }
            for d, frm, subj, rcpt in rows
        ]
    if format == "json":
        sys.stdout.write(json.dumps(items, ensure_ascii=False, indent=2) + "\n")
        return
    t = Table("id", "文件", "类型", "格式", "发件人", "申报", "说明")
    for it in items:
        t.add_row(
            str(it["id"]),
            (it["member_path"] or it["filename"])[:50],
            it["kind"],
            it["format"],
            it["from"] or "",
            it["receipt_no"] or "（未归属）",
            it["note"] or (it["assigned_by"] or ""),
        )
    out.print(t)
    err.print(f"{len(items)} document(s); items are {', '.join(ITEM_LABEL.values())}", markup=False)


@app.command()
def assign(
    document_id: Annotated[int, typer.Argument(help="Document id (see `intake documents --unassigned`).")],
    receipt_no: Annotated[str, typer.Argument(help="The application it belongs to.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")],
    user: Annotated[str | None, typer.Option("--user", help="Who decides (default: $INTAKE_USER).")] = None,
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
) -> None:
    """Put a document into an application by hand; every later regroup keeps to it (audited)."""
    from review.assignments import AssignmentError, assign_document

    who = user or os.environ.get("INTAKE_USER", "")
    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        try:
            res = assign_document(s, services.config, document_id, receipt_no, user=who, reason=reason)
        except AssignmentError as e:
            raise Fail(str(e), REJECTED) from None
        s.commit()
    err.print(f"document {document_id} → {receipt_no}; {res.applications} application(s) rechecked", markup=False)
