"""Reconciliation: applications ↔ paper log ↔ district 汇总表, orphans on each side, staff confirm or
override matches (review.reconcile.set_override, audited; kept across re-runs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from dashboard import recon
from dashboard.web import db, render, require_staff, set_flash, state
from store.users_models import DashboardUser

router = APIRouter()

APP_FILTERS = {
    "problems": "有差异的申报",
    "paper_missing": "纸质未登记",
    "paper_ambiguous": "纸质待确认",
    "copies_short": "份数不足",
    "paper_late": "纸质逾期",
    "not_listed": "未列入汇总表",
    "all": "全部申报",
}


def _keep(a: object, view: str) -> bool:
    paper, summary = a.paper_status, a.summary_status  # type: ignore[attr-defined]
    return {
        "problems": paper != "matched" or summary in ("not_listed", "ambiguous"),
        "paper_missing": paper == "missing",
        "paper_ambiguous": paper == "ambiguous",
        "copies_short": paper == "copies_short",
        "paper_late": paper == "late",
        "not_listed": summary == "not_listed",
        "all": True,
    }.get(view, True)


@router.get("/reconcile")
def reconcile_view(
    request: Request, s: Annotated[Session, Depends(db)], view: str = "problems", page: int = 1
) -> Response:
    from collections import Counter

    st = state(request)
    rep = recon.report(st, s)
    view = view if view in APP_FILTERS else "problems"
    apps = [a for a in rep.apps if _keep(a, view)]
    apps.sort(key=lambda a: a.app.receipt_no)
    size = st.config.dashboard.page_size
    pages = max(1, -(-len(apps) // size))
    page = max(1, min(page, pages))
    entries = [er for er in rep.entries if er.entry.item == "form" and er.link.status in ("orphan", "ambiguous")]
    rows = [rr for rr in rep.rows if rr.link.status in ("orphan", "ambiguous")]
    return render(
        request,
        "reconcile.html",
        rep=rep,
        apps=apps[(page - 1) * size : page * size],
        total=len(apps),
        page=page,
        pages=pages,
        view=view,
        views=APP_FILTERS,
        entries=entries,
        rows=rows,
        paper_counts=Counter(a.paper_status for a in rep.apps),
        summary_counts=Counter(a.summary_status for a in rep.apps),
    )


@router.post("/reconcile/override")
def override(
    request: Request,
    user: Annotated[DashboardUser, Depends(require_staff)],
    s: Annotated[Session, Depends(db)],
    subject: Annotated[str, Form(max_length=80)],
    action: Annotated[str, Form()],
    receipt_no: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    back: Annotated[str, Form()] = "/reconcile",
) -> Response:
    from review.reconcile import set_override

    back = back if back.startswith("/") and not back.startswith("//") else "/reconcile"
    try:
        set_override(s, subject, action, user.name, receipt_no=receipt_no.strip() or None, reason=reason.strip())
    except (ValueError, LookupError) as e:
        s.rollback()
        set_flash(request, f"未能保存：{e}", "error")
        return RedirectResponse(back, status_code=303)
    s.commit()
    recon.schedule_refresh(state(request))
    label = {"match": f"已确认匹配到 {receipt_no.strip()}", "unmatch": "已确认无对应申报", "clear": "已恢复自动匹配"}
    set_flash(request, label.get(action, "已保存"))
    return RedirectResponse(back, status_code=303)
