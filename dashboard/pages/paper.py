"""Paper desk (room 213): find the electronic application by a few characters, log copies in one
keystroke; import a spreadsheet log; entries that match no application."""

from __future__ import annotations

import functools
import tempfile
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from dashboard import recon
from dashboard.limited import LimitExceeded, run_limited
from dashboard.web import PAPER_ITEM_LABEL, DashState, db, render, require_staff, set_flash, state
from store.models import Application
from store.paper_models import PaperEntry
from store.users_models import DashboardUser

router = APIRouter()

MAX_UPLOAD = 10 * 1024 * 1024
# What reading an uploaded log may cost (a season's log is read in well under a second, in tens of MB).
IMPORT_SECONDS = 60
IMPORT_MEMORY = 1024 * 1024 * 1024
SUGGESTIONS = 8


# -- suggestions -----------------------------------------------------------------------------------------------


def _fold(text: str | None) -> str:
    """Compare as typed: full-width folded, case folded, no spaces or brackets."""
    t = unicodedata.normalize("NFKC", text or "").casefold()
    return "".join(c for c in t if not c.isspace() and c not in "()（）《》“”\"'")


def _choices(st: DashState, s: Session) -> list[tuple[str, str, str, str, str, str]]:
    """(receipt, org, project, form_type, district, folded text) of every live application, cached until
    an application changes."""
    conn = s.connection()
    fp = tuple(conn.execute(select(func.count(), func.max(Application.updated_at), func.max(Application.id))).one())
    with st.lock:
        cached = st.cache.get("paper_choices")
        if cached is not None and cached[0] == fp:
            return list(cached[1])
    rows = conn.execute(
        sa_select(
            col(Application.receipt_no),
            col(Application.org_name),
            col(Application.project_name),
            col(Application.form_type),
            col(Application.district),
        ).where(col(Application.status) != "merged")
    ).all()
    out = [(r[0], r[1] or "", r[2] or "", r[3], r[4] or "", _fold(f"{r[1] or ''} {r[2] or ''} {r[0]}")) for r in rows]
    with st.lock:
        st.cache["paper_choices"] = (fp, out)
    return out


def suggest(
    st: DashState, s: Session, q: str, limit: int = SUGGESTIONS
) -> list[tuple[tuple[str, str, str, str, str], float]]:
    """Applications whose org / project / receipt contain what was typed, then fuzzy matches (typos,
    a name typed in another order): rapidfuzz partial_ratio over the folded names."""
    from rapidfuzz import fuzz, process

    needle = _fold(q)
    if not needle:
        return []
    choices = _choices(st, s)
    exact = [(c[:5], 100.0) for c in choices if needle in c[5]]
    exact.sort(key=lambda t: (len(t[0][1]) + len(t[0][2]), t[0][0]))
    if len(exact) >= limit or len(needle) < 2:
        return exact[:limit]
    seen = {c[0][0] for c in exact}
    fuzzy = process.extract(
        needle, [c[5] for c in choices], scorer=fuzz.partial_ratio, limit=limit * 2, score_cutoff=60
    )
    more = [(choices[i][:5], float(score)) for _text, score, i in fuzzy if choices[i][0] not in seen]
    return (exact + more)[:limit]


@router.get("/paper/suggest")
def suggestions(request: Request, s: Annotated[Session, Depends(db)], q: str = "") -> Response:
    found = suggest(state(request), s, q[:100])
    return render(request, "paper_suggest.html", found=found, q=q[:100])


# -- the desk --------------------------------------------------------------------------------------------------


@router.get("/paper")
def desk(request: Request, s: Annotated[Session, Depends(db)]) -> Response:
    recent = list(
        s.exec(
            select(PaperEntry).where(col(PaperEntry.deleted).is_(False)).order_by(col(PaperEntry.id).desc()).limit(15)
        )
    )
    total = s.exec(select(func.count()).select_from(PaperEntry).where(col(PaperEntry.deleted).is_(False))).one()
    return render(
        request,
        "paper.html",
        recent=recent,
        total=total,
        items=PAPER_ITEM_LABEL,
        districts=state(request).config.paper.districts,
        required=state(request).config.paper.required_copies,
        import_result=None,
    )


@router.get("/paper/unmatched")
def unmatched(request: Request, s: Annotated[Session, Depends(db)]) -> Response:
    """Paper entries of 申报书 that match no application (or several): loaded after the desk itself."""
    rep = recon.report(state(request), s)
    rows = [er for er in rep.entries if er.entry.item == "form" and er.link.status in ("orphan", "ambiguous")]
    return render(request, "paper_unmatched.html", rows=rows)


def _now_local(st: DashState) -> str:
    return datetime.now(st.config.call.tz).strftime("%Y-%m-%d %H:%M")


@router.post("/paper/add")
def add(
    request: Request,
    user: Annotated[DashboardUser, Depends(require_staff)],
    s: Annotated[Session, Depends(db)],
    q: Annotated[str, Form(max_length=200)] = "",
    receipt: Annotated[str, Form(max_length=40)] = "",
    project: Annotated[str, Form(max_length=300)] = "",
    item: Annotated[str, Form()] = "form",
    copies: Annotated[str, Form(max_length=10)] = "2",
    district: Annotated[str, Form(max_length=40)] = "",
    received_at: Annotated[str, Form(max_length=40)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """One hand-in: the application picked from the suggestions (or the names as typed), copies, item."""
    from review import reconcile
    from review.paper import add_entry, validate

    st = state(request)
    cfg = st.config
    app = None
    if receipt and receipt != "none":
        app = s.exec(select(Application).where(Application.receipt_no == receipt)).first()
        if app is None:
            set_flash(request, f"没有受理编号为 {receipt} 的申报，请重新选择", "error")
            return RedirectResponse("/paper", status_code=303)
    raw: dict[str, Any] = {
        "接收时间": received_at.strip() or _now_local(st),
        "申报单位": (app.org_name if app else None) or q.strip(),
        "项目名称": (app.project_name if app else None) or project.strip() or None,
        "方向": reconcile.FORM_TYPE_LABEL.get(app.form_type, "") if app else "",
        "材料类型": PAPER_ITEM_LABEL.get(item, item),
        "份数": copies.strip(),
        "所在区": district.strip() or (app.district if app else None),
        "接收人": user.name,
        "备注": note.strip() or None,
    }
    if app is not None and app.credit_code:
        raw["统一社会信用代码"] = app.credit_code
    values, errors = validate(raw, tz=cfg.call.tz, deadline=cfg.call.deadline, districts=cfg.paper.districts)
    if errors:
        why = "；".join(f"{k}：{v}" for k, v in errors.items())
        set_flash(request, f"未登记：{why}", "error")
        return RedirectResponse("/paper", status_code=303)
    entry = add_entry(s, values, user.name, source="dashboard")
    if app is not None and values["item"] == "form":
        # Staff picked the application at the desk: that is a confirmed match, kept across re-runs.
        reconcile.set_override(
            s, f"paper:{entry.id}", "match", user.name, receipt_no=app.receipt_no, reason="纸质材料登记时选定"
        )
    s.commit()
    recon.schedule_refresh(st)
    what = (
        f"{values['org_name']}《{values['project_name'] or ''}》" if values.get("project_name") else values["org_name"]
    )
    late = "（已过截止时间）" if values["received_at"] >= cfg.call.deadline + cfg.call.grace_period else ""
    set_flash(
        request,
        f"已登记 #{entry.id}：{what} {PAPER_ITEM_LABEL.get(values['item'], values['item'])} {values['copies']} 份{late}"
        + ("" if app is not None or values["item"] != "form" else "；未选定电子申报，请在三方核对中确认"),
    )
    return RedirectResponse("/paper", status_code=303)


# The spreadsheet, the CSRF field and the multipart framing (the app's own limit is far smaller).
@router.post("/paper/import", max_body_size=MAX_UPLOAD + 64 * 1024)
async def import_log(
    request: Request,
    user: Annotated[DashboardUser, Depends(require_staff)],
    s: Annotated[Session, Depends(db)],
    file: Annotated[UploadFile, File()],
) -> Response:
    """Import an xlsx/csv log, all or nothing (review.paper.import_log): every bad row is listed."""
    from starlette.concurrency import run_in_threadpool

    from review.paper import ImportResult, read_log
    from review.paper import import_log as do_import

    st = state(request)
    cfg = st.config
    data = await file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise HTTPException(413, "文件超过 10 MB")
    name = Path((file.filename or "upload.xlsx").replace("\\", "/")).name or "upload.xlsx"
    if not name.lower().endswith((".xlsx", ".csv")):
        set_flash(request, "只能导入 .xlsx 或 .csv 文件", "error")
        return RedirectResponse("/paper", status_code=303)

    def work() -> Any:
        with tempfile.TemporaryDirectory(prefix="paper-import-") as tmp:
            # The file keeps its name: re-importing a growing log skips the rows imported before.
            path = Path(tmp) / name
            path.write_bytes(data)
            opts = {"tz": cfg.call.tz, "deadline": cfg.call.deadline, "districts": cfg.paper.districts}
            # An uploaded spreadsheet is read in a limited child, as previews are: a hostile one must not
            # take the web process's memory or time (openpyxl builds every cell a file declares).
            try:
                read = run_limited(
                    functools.partial(read_log, **opts), (path,), seconds=IMPORT_SECONDS, memory=IMPORT_MEMORY
                )
            except LimitExceeded as e:
                read = ImportResult(file=str(path), file_error=f"could not be read: {e}")
            res = do_import(s, path, user.name, read=read, **opts)
            if res.written:
                s.commit()
            else:
                s.rollback()
            return res

    res = await run_in_threadpool(work)
    if res.written:
        recon.schedule_refresh(st)
        set_flash(
            request, f"{name}：导入 {len(res.created)} 条，{res.already} 条此前已导入，{res.blank_rows} 个空行已跳过"
        )
        return RedirectResponse("/paper", status_code=303)
    recent = list(
        s.exec(
            select(PaperEntry).where(col(PaperEntry.deleted).is_(False)).order_by(col(PaperEntry.id).desc()).limit(15)
        )
    )
    total = s.exec(select(func.count()).select_from(PaperEntry).where(col(PaperEntry.deleted).is_(False))).one()
    return render(
        request,
        "paper.html",
        status_code=422,
        recent=recent,
        total=total,
        items=PAPER_ITEM_LABEL,
        districts=cfg.paper.districts,
        required=cfg.paper.required_copies,
        import_result=res,
        import_name=name,
    )
