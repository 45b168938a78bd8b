"""Applications: the filtered list, its export (xlsx / csv), one application, and staff decisions on it."""

from __future__ import annotations

import io
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from dashboard import detail, queries, recon
from dashboard.files import content_disposition
from dashboard.web import db, render, require_staff, set_flash, state
from store.users_models import DashboardUser

router = APIRouter()


def _filter(
    status: str = "",
    form_type: str = "",
    district: str = "",
    problem: str = "",
    paper: str = "",
    q: str = "",
    sort: str = "receipt",
    desc: bool = False,
    page: int = 1,
) -> queries.AppFilter:
    return queries.AppFilter(status, form_type, district, problem, paper, q, sort, desc, page).clean()


def _paper_ids(request: Request, s: Session, f: queries.AppFilter) -> set[int] | None:
    """Applications whose paper status is the one filtered on (from the cached reconciliation report)."""
    if not f.paper:
        return None
    rep = recon.report(state(request), s)
    return {a.app.id for a in rep.apps if a.paper_status == f.paper}


def _text_ids(request: Request, s: Session, f: queries.AppFilter) -> set[int] | None:
    """Applications the search text finds; kept for the next pages, sorts and the export of the same
    search until a document or an application changes."""
    if not f.q:
        return None
    st = state(request)
    fp = recon.fingerprint_documents(s)
    key = ("search", f.q)
    with st.lock:
        hit = st.cache.get(key)
        if hit is not None and hit[0] == fp:
            return set(hit[1])
    ids = queries.search_ids(s, f.q)
    with st.lock:
        # A handful of recent searches only: each holds a set of ids.
        for old in [k for k in st.cache if isinstance(k, tuple) and k[0] == "search"][:-20]:
            del st.cache[old]
        st.cache[key] = (fp, frozenset(ids))
    return ids


@router.get("/applications")
def applications(
    request: Request, f: Annotated[queries.AppFilter, Depends(_filter)], s: Annotated[Session, Depends(db)]
) -> Response:
    from review.checks import PROBLEM_CODES

    st = state(request)
    page = queries.list_applications(
        s, f, st.config.dashboard.page_size, _paper_ids(request, s, f), _text_ids(request, s, f)
    )
    return render(
        request,
        "applications.html",
        f=f,
        page=page,
        districts=queries.districts(s),
        statuses=queries.STATUSES,
        form_types=queries.FORM_TYPES,
        problem_codes=list(PROBLEM_CODES),
        paper_filters=queries.PAPER_FILTERS,
        sorts=[
            ("receipt", "受理编号"),
            ("received", "首次收到"),
            ("org", "申报单位"),
            ("project", "项目名称"),
            ("status", "状态"),
            ("district", "所在区"),
        ],
    )


@router.get("/applications/export.{fmt}")
def export(
    request: Request, fmt: str, f: Annotated[queries.AppFilter, Depends(_filter)], s: Annotated[Session, Depends(db)]
) -> Response:
    """The list as filtered, every page of it: the 附件5 workbook (xlsx) or the CSV (review.exports)."""
    from review import exports

    if fmt not in ("xlsx", "csv"):
        raise HTTPException(404, "只能导出 xlsx 或 csv")
    cfg = state(request).config
    filters: dict[str, Any] = {}
    if f.active:
        filters["receipts"] = queries.filtered_receipts(s, f, _paper_ids(request, s, f), _text_ids(request, s, f))
    stamp = f"申报汇总-{'筛选' if f.active else '全部'}"
    if fmt == "xlsx":
        buf = io.BytesIO()
        exports.export_xlsx(s, cfg, buf, **filters)
        data = buf.getvalue()
        ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        data = exports.export_csv(s, cfg, **filters)
        ctype = "text/csv; charset=utf-8"
    return Response(
        data,
        media_type=ctype,
        headers={"Content-Disposition": content_disposition(f"{stamp}.{fmt}", attachment=True)},
    )


@router.get("/applications/{receipt}")
def application(request: Request, receipt: str, s: Annotated[Session, Depends(db)]) -> Response:
    st = state(request)
    data = detail.load(s, st.config, receipt)
    if data is None:
        raise HTTPException(404, f"没有受理编号为 {receipt} 的申报")
    report = recon.report(st, s)
    paper = report.app(data["app"].id) if data["app"].status != "merged" else None
    return render(request, "application.html", d=data, paper=paper, tz=st.config.call.tz)


@router.post("/applications/{receipt}/decide")
def decide(
    request: Request,
    receipt: str,
    user: Annotated[DashboardUser, Depends(require_staff)],
    s: Annotated[Session, Depends(db)],
    action: Annotated[str, Form()],
    reason: Annotated[str, Form(max_length=2000)] = "",
    code: Annotated[str, Form()] = "",
) -> Response:
    """Waive a problem, accept a late application, or revoke a decision (review.decisions, audited)."""
    from review.checks import code_label
    from review.decisions import DecisionError
    from review.decisions import decide as take_decision
    from review.status import STATUS_LABEL

    back = f"/applications/{quote(receipt, safe='')}"
    try:
        d = take_decision(s, receipt, action, code or None, reason, user.name)
    except DecisionError as e:
        set_flash(request, f"未能保存：{e}", "error")
        return RedirectResponse(back + "#decide", status_code=303)
    from review.decisions import find_application

    app = find_application(s, receipt)
    what = {
        "waive": f"已豁免“{code_label(d.problem_code or '')}”",
        "accept_late": "已同意逾期受理",
        "revoke": f"已撤销决定 #{d.revokes}",
    }.get(d.action, d.action)
    set_flash(request, f"{what}；当前状态：{STATUS_LABEL.get(app.status, app.status)}")
    return RedirectResponse(back, status_code=303)
