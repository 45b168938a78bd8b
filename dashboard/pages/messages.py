"""Messages: every email with its class; quarantine with the reason and a replay button; one email's
headers, bodies (escaped text; HTML only as source), attachments, documents and acknowledgement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, or_
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from dashboard import detail
from dashboard.queries import like_pattern
from dashboard.web import CLASS_LABEL, db, render, require_staff, set_flash, state
from store.acks_models import AckOutbox
from store.models import Application, AttachmentRow, AuditEvent, DocumentRow, Message, QuarantineEvent
from store.users_models import DashboardUser

router = APIRouter()


@router.get("/messages")
def messages(
    request: Request,
    s: Annotated[Session, Depends(db)],
    klass: str = "",
    st_filter: Annotated[str, Query(alias="state")] = "",
    q: str = "",
    page: int = 1,
) -> Response:
    size = state(request).config.dashboard.page_size
    conds = []
    if klass in CLASS_LABEL:
        conds.append(col(Message.msg_class) == klass)
    elif klass == "unparsed":
        conds.append(col(Message.msg_class).is_(None))
    if st_filter in ("new", "processed", "quarantined"):
        conds.append(col(Message.state) == st_filter)
    q = " ".join(q.split())[:100]
    if q:
        p = like_pattern(q)
        ilike = s.get_bind().dialect.name == "postgresql"

        def has(c: object) -> object:
            return c.ilike(p, escape="\\") if ilike else c.like(p, escape="\\")  # type: ignore[attr-defined]

        conds.append(or_(has(Message.subject), has(Message.from_addr), has(Message.from_name)))  # type: ignore[arg-type]
    total = s.exec(select(func.count()).select_from(Message).where(*conds)).one()
    pages = max(1, -(-total // size))
    page = max(1, min(page, pages))
    rows = list(
        s.exec(
            select(Message)
            .where(*conds)
            .order_by(col(Message.received_at).desc().nulls_last(), col(Message.id).desc())
            .limit(size)
            .offset((page - 1) * size)
        )
    )
    ids = [m.id for m in rows]
    counts = (
        dict(
            s.exec(
                select(AttachmentRow.message_pk, func.count())
                .where(col(AttachmentRow.message_pk).in_(ids))
                .group_by(col(AttachmentRow.message_pk))
            ).all()
        )
        if ids
        else {}
    )
    acks = (
        dict(s.exec(select(AckOutbox.message_pk, AckOutbox.status).where(col(AckOutbox.message_pk).in_(ids))).all())
        if ids
        else {}
    )
    return render(
        request,
        "messages.html",
        rows=rows,
        counts=counts,
        acks=acks,
        total=total,
        page=page,
        pages=pages,
        klass=klass,
        state_filter=st_filter,
        q=q,
    )


@router.get("/messages/{message_id}")
def message(request: Request, message_id: int, s: Annotated[Session, Depends(db)]) -> Response:
    m = s.get(Message, message_id)
    if m is None:
        raise HTTPException(404, "没有这封邮件")
    attachments = list(
        s.exec(select(AttachmentRow).where(AttachmentRow.message_pk == m.id).order_by(col(AttachmentRow.seq)))
    )
    docs = list(s.exec(select(DocumentRow).where(DocumentRow.message_pk == m.id).order_by(col(DocumentRow.seq))))
    app_ids = {d.application_pk for d in docs if d.application_pk}
    apps = {a.id: a for a in s.exec(select(Application).where(col(Application.id).in_(app_ids)))} if app_ids else {}
    events = list(
        s.exec(select(QuarantineEvent).where(QuarantineEvent.message_pk == m.id).order_by(col(QuarantineEvent.id)))
    )
    return render(
        request,
        "message.html",
        m=m,
        attachments=attachments,
        docs=docs,
        apps=apps,
        events=events,
        acks=detail.acks_for(s, [m.id or 0]),
        audit=detail.audit_for(s, [f"message:{m.id}"]),
    )


@router.post("/messages/{message_id}/replay")
async def replay(
    request: Request,
    message_id: int,
    user: Annotated[DashboardUser, Depends(require_staff)],
    s: Annotated[Session, Depends(db)],
) -> Response:
    """Run the message through the pipeline again (intake.pipeline.replay), after a fix; audited."""
    from intake.pipeline import replay as replay_one
    from intake.pipeline import resolve_stages

    m = s.get(Message, message_id)
    if m is None:
        raise HTTPException(404, "没有这封邮件")
    services = state(request).services
    before = m.state
    reason = m.quarantine_reason
    stages = resolve_stages(services.config.pipeline.stages)
    try:
        result = await run_in_threadpool(replay_one, services, message_id, stages)
    except LookupError:
        raise HTTPException(404, "没有这封邮件") from None
    s.add(
        AuditEvent(
            user=user.name,
            action="message.replay",
            target=f"message:{message_id}",
            detail={"state_before": before, "quarantine_reason": reason, "result": result},
        )
    )
    s.commit()
    s.expire_all()
    after = s.get(Message, message_id)
    if result == "processed":
        set_flash(request, f"邮件 #{message_id} 已重新处理")
    elif result == "busy":
        set_flash(request, f"邮件 #{message_id} 正在被处理，请稍后刷新", "error")
    else:
        why = after.quarantine_reason if after else ""
        set_flash(request, f"邮件 #{message_id} 重新处理后仍被隔离：{why}", "error")
    return RedirectResponse(f"/messages/{message_id}", status_code=303)
