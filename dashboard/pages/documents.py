"""Documents: one document's page, download, page previews, message attachments, and the unassigned
documents staff put into applications (AssignmentOverride + regroup)."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from dashboard import queries
from dashboard.files import DocRef, FileUnavailable, attachment_bytes, content_disposition, content_type, document_bytes
from dashboard.web import db, render, require_staff, set_flash, state
from store.models import Application, AssignmentOverride, AttachmentRow, AuditEvent, DocumentRow, Message
from store.users_models import DashboardUser

router = APIRouter()

# Previews are images for <img> on our own pages: nothing in them may run or load anything.
PREVIEW_CSP = "default-src 'none'; sandbox"


def _doc(s: Session, doc_id: int) -> DocumentRow:
    d = s.get(DocumentRow, doc_id)
    if d is None:
        raise HTTPException(404, "没有这个文件")
    return d


def _ref(d: DocumentRow) -> DocRef:
    assert d.id is not None
    return DocRef(d.id, d.message_pk, d.attachment_pk, d.parent_pk, d.sha256, d.filename, d.member_path, d.format)


def _file_response(data: bytes, filename: str, fmt: str) -> Response:
    return Response(
        data,
        media_type=content_type(filename, fmt),
        headers={
            "Content-Disposition": content_disposition(filename, attachment=True),
            # A download is never a page: nothing in it may run even if a browser opened it in place.
            "Content-Security-Policy": PREVIEW_CSP,
        },
    )


@router.get("/documents/{doc_id}")
def document(request: Request, doc_id: int, s: Annotated[Session, Depends(db)]) -> Response:
    d = _doc(s, doc_id)
    msg = s.get(Message, d.message_pk)
    app = s.get(Application, d.application_pk) if d.application_pk else None
    members = (
        list(
            s.exec(
                select(DocumentRow)
                .where(DocumentRow.message_pk == d.message_pk, DocumentRow.parent_pk == d.id)
                .order_by(col(DocumentRow.seq))
            )
        )
        if d.format == "archive"
        else []
    )
    candidates = _candidates(s, d) if d.application_pk is None else []
    return render(
        request,
        "document.html",
        d=d,
        msg=msg,
        app=app,
        members=members,
        candidates=candidates,
        pages=list(range(min(d.pages or 1, 12))) if d.format in ("pdf_text", "pdf_scan", "image") else [],
        text=(d.text or "")[:20000],
    )


@router.get("/documents/{doc_id}/download")
async def download(request: Request, doc_id: int, s: Annotated[Session, Depends(db)]) -> Response:
    d = _doc(s, doc_id)
    services = state(request).services
    try:
        data = await run_in_threadpool(document_bytes, services, _ref(d))
    except FileUnavailable as e:
        raise HTTPException(404, f"文件无法读取：{e}") from None
    if hashlib.sha256(data).hexdigest() != d.sha256:
        raise HTTPException(404, "文件内容与记录不符")
    return _file_response(data, d.filename, d.format)


@router.get("/documents/{doc_id}/preview/{page}.png")
async def preview(request: Request, doc_id: int, page: int, s: Annotated[Session, Depends(db)]) -> Response:
    from dashboard.files import render_preview

    d = _doc(s, doc_id)
    if d.format not in ("pdf_text", "pdf_scan", "image"):
        raise HTTPException(404, "该格式不能预览，请下载后查看")
    services = state(request).services
    try:
        data = await run_in_threadpool(document_bytes, services, _ref(d))
        png, _pages = await run_in_threadpool(render_preview, data, d.format, page)
    except FileUnavailable as e:
        raise HTTPException(404, str(e)) from None
    return Response(
        png,
        media_type="image/png",
        headers={
            "Content-Disposition": content_disposition(f"preview-{d.id}-{page + 1}.png", attachment=False),
            "Content-Security-Policy": PREVIEW_CSP,
        },
    )


@router.get("/messages/{message_id}/attachments/{sha}")
async def attachment(request: Request, message_id: int, sha: str, s: Annotated[Session, Depends(db)]) -> Response:
    """An attachment of one message, by its sha256: only a sha this message carries (no other blob)."""
    att = s.exec(
        select(AttachmentRow).where(AttachmentRow.message_pk == message_id, AttachmentRow.sha256 == sha)
    ).first()
    if att is None:
        raise HTTPException(404, "这封邮件没有这个附件")
    services = state(request).services
    try:
        data = await run_in_threadpool(attachment_bytes, services, message_id, att.sha256)
    except FileUnavailable as e:
        raise HTTPException(404, f"文件无法读取：{e}") from None
    fmt = s.exec(select(DocumentRow.format).where(DocumentRow.attachment_pk == att.id)).first() or "other"
    return _file_response(data, att.filename, fmt)


# -- unassigned documents --------------------------------------------------------------------------------------


def _candidates(s: Session, d: DocumentRow, limit: int = 8) -> list[Application]:
    """Applications this document probably belongs to: those its email brought, then its sender's."""
    mids = {d.message_pk}
    msg = s.get(Message, d.message_pk)
    if msg is not None and msg.from_addr:
        same_sender = select(Message.id).where(func.lower(Message.from_addr) == msg.from_addr.lower()).limit(200)
        mids |= {m for m in s.exec(same_sender) if m is not None}
    app_ids = set(
        s.exec(
            select(DocumentRow.application_pk).where(
                col(DocumentRow.message_pk).in_(mids), col(DocumentRow.application_pk).is_not(None)
            )
        )
    )
    if not app_ids:
        return []
    return list(
        s.exec(
            select(Application)
            .where(col(Application.id).in_(app_ids), Application.status != "merged")
            .order_by(col(Application.receipt_no))
            .limit(limit)
        )
    )


@router.get("/unassigned")
def unassigned(request: Request, s: Annotated[Session, Depends(db)], page: int = 1) -> Response:
    size = state(request).config.dashboard.page_size
    cond = queries.unassigned_condition()
    total = s.exec(select(func.count()).select_from(DocumentRow).where(cond)).one()
    pages = max(1, -(-total // size))
    page = max(1, min(page, pages))
    docs = list(
        s.exec(
            select(DocumentRow)
            .where(cond)
            .order_by(col(DocumentRow.received_at).desc(), col(DocumentRow.id).desc())
            .limit(size)
            .offset((page - 1) * size)
        )
    )
    mids = {d.message_pk for d in docs}
    messages = {m.id: m for m in s.exec(select(Message).where(col(Message.id).in_(mids)))} if mids else {}
    candidates = {d.id: _candidates(s, d) for d in docs}
    return render(
        request,
        "unassigned.html",
        docs=docs,
        messages=messages,
        candidates_map=candidates,
        total=total,
        page=page,
        pages=pages,
    )


@router.post("/unassigned/{doc_id}/assign")
def assign(
    request: Request,
    doc_id: int,
    user: Annotated[DashboardUser, Depends(require_staff)],
    s: Annotated[Session, Depends(db)],
    receipt_no: Annotated[str, Form(max_length=40)],
    reason: Annotated[str, Form(max_length=2000)] = "",
    back: Annotated[str, Form()] = "/unassigned",
) -> Response:
    """Put a document into an application: an AssignmentOverride (regrouping keeps to it), then regroup."""
    from review.service import regroup

    d = _doc(s, doc_id)
    back = back if back.startswith("/") and not back.startswith("//") else "/unassigned"
    receipt_no = receipt_no.strip()
    target = s.exec(select(Application).where(Application.receipt_no == receipt_no)).first()
    if target is None or target.status == "merged":
        set_flash(request, f"没有受理编号为 {receipt_no} 的申报（或已合并）", "error")
        return RedirectResponse(back, status_code=303)
    from review.exports import item_of

    if item_of(d.kind, d.format) in ("word", "pdf"):
        set_flash(request, "申报书本身（Word / PDF）按内容自动成组，不能手工归属；请核对其单位名称和项目名称", "error")
        return RedirectResponse(back, status_code=303)
    s.add(AssignmentOverride(document_sha256=d.sha256, receipt_no=receipt_no, user=user.name, reason=reason.strip()))
    s.add(
        AuditEvent(
            user=user.name,
            action="document.assign",
            target=f"application:{receipt_no}",
            detail={"document_id": d.id, "sha256": d.sha256, "filename": d.filename, "reason": reason.strip()},
        )
    )
    s.flush()
    # The document's email and the target's emails: the closure the regroup must look at.
    mids = {d.message_pk} | set(s.exec(select(DocumentRow.message_pk).where(DocumentRow.application_pk == target.id)))
    regroup(s, state(request).config, message_ids=mids)
    s.commit()
    s.refresh(d)
    if d.application_pk == target.id:
        set_flash(request, f"《{d.filename}》已归入 {receipt_no}")
    else:
        set_flash(request, f"已记录归属，但重新分组后《{d.filename}》未进入 {receipt_no}，请检查", "error")
    return RedirectResponse(back, status_code=303)
