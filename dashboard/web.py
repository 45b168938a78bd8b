"""What every page shares: the app state, the database session, who is asking, role and CSRF checks,
template rendering with Chinese labels and local times."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from dashboard.security import Sessions, csrf_ok, role_at_least
from intake.pipeline import Services
from store.users_models import DashboardUser

HERE = Path(__file__).parent

CLASS_LABEL = {
    "submission": "申报邮件",
    "auto_reply": "自动回复",
    "bounce": "退信",
    "list": "邮件列表",
    "other": "其他",
}
STATE_LABEL = {"new": "待处理", "processed": "已处理", "quarantined": "已隔离"}
ROLE_LABEL = {"viewer": "只读", "staff": "工作人员", "admin": "管理员"}
PAPER_LABEL = {
    "matched": "已收齐",
    "missing": "未登记",
    "ambiguous": "待确认",
    "copies_short": "份数不足",
    "late": "逾期送达",
    "unknown": "未知",
}
SUMMARY_LABEL = {
    "listed": "已列入",
    "ambiguous": "待确认",
    "not_listed": "未列入",
    "no_summary": "该区未报汇总表",
    "unknown": "所在区不明",
}
ACK_LABEL = {
    "pending": "待发送",
    "sending": "发送中",
    "sent": "已发送",
    "failed": "发送失败",
    "suppressed": "不发送",
    "unknown": "结果不明",
    "dry_run": "演练（未发送）",
}
PAPER_ITEM_LABEL = {"form": "申报书", "recommendation": "推荐意见", "summary": "汇总表"}


@dataclass
class DashState:
    """One per app: services, the daemon (None under `intake serve`), cookie signer, templates, caches."""

    services: Services
    daemon: Any
    sessions: Sessions
    templates: jinja2.Environment
    cache: dict[Any, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def config(self) -> Any:
        return self.services.config


def state(request: Request) -> DashState:
    st: DashState = request.app.state.dash
    return st


def db(request: Request) -> Iterator[Session]:
    """A session per request; pages read, actions commit explicitly."""
    with Session(state(request).services.engine, expire_on_commit=False) as s:
        yield s


def user_of(request: Request) -> DashboardUser:
    user: DashboardUser | None = getattr(request.state, "user", None)
    if user is None:
        # The guard middleware sends anonymous requests to the login page; this is a second lock.
        raise HTTPException(401, "请先登录")
    return user


def _same_origin(request: Request) -> bool:
    """A cross-site form post carries another Origin (or Referer): refused before looking further."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def check_csrf(request: Request) -> None:
    """Every state-changing request carries the session's CSRF token (form field or X-CSRF-Token)."""
    token = request.headers.get("x-csrf-token")
    if not token:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            token = value if isinstance(value, str) else None
    session = getattr(request.state, "session", None)
    if session is None or not csrf_ok(session.csrf, token) or not _same_origin(request):
        raise HTTPException(403, "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试")


async def require_staff(request: Request) -> DashboardUser:
    """A change: staff or admin, with a valid CSRF token."""
    user = user_of(request)
    if not role_at_least(user.role, "staff"):
        raise HTTPException(403, "只读账号不能修改数据")
    await check_csrf(request)
    return user


async def require_admin(request: Request) -> DashboardUser:
    user = user_of(request)
    if not role_at_least(user.role, "admin"):
        raise HTTPException(403, "需要管理员权限")
    await check_csrf(request)
    return user


async def require_session(request: Request) -> None:
    """A change anyone logged in (or about to log in) may make: only the CSRF token is checked."""
    await check_csrf(request)


def set_flash(request: Request, text: str, kind: str = "ok") -> None:
    """A one-time message shown on the next page (kept in the signed session cookie)."""
    request.state.flash_out = (kind, text[:300])


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    st = state(request)
    user = getattr(request.state, "user", None)
    session = getattr(request.state, "session", None)
    flash = getattr(request.state, "flash_in", None)
    ctx = {
        "request": request,
        "user": user,
        "can_change": user is not None and role_at_least(user.role, "staff"),
        "csrf": session.csrf if session else "",
        "call_name": st.config.call.name,
        "flash": flash,
        "path": request.url.path,
        **context,
    }
    html = st.templates.get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status_code)


# -- template environment ------------------------------------------------------------------------------------


def make_templates(tz: Any) -> jinja2.Environment:
    from review.checks import FORM_TYPE_LABEL, PROBLEM_CODES, code_label
    from review.model import ITEM_LABEL
    from review.status import STATUS_LABEL

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        # Everything is escaped, whatever the file name: applicants write the subjects, file names,
        # form fields and bodies shown here.
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def local(dt: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        if dt is None:
            return "—"
        loc = dt.astimezone(tz)
        text = loc.strftime(fmt)
        if fmt.endswith("%S") and loc.microsecond:
            text += f".{loc.microsecond // 1000:03d}"
        return text

    def size(n: int | None) -> str:
        if n is None:
            return "—"
        if n < 1024:
            return f"{n} B"
        if n < 1024 * 1024:
            return f"{n / 1024:.0f} KB"
        return f"{n / 1024 / 1024:.1f} MB"

    env.filters.update(local=local, size=size)
    env.globals.update(
        STATUS_LABEL=STATUS_LABEL,
        FORM_TYPE_LABEL=FORM_TYPE_LABEL,
        ITEM_LABEL=ITEM_LABEL,
        CLASS_LABEL=CLASS_LABEL,
        STATE_LABEL=STATE_LABEL,
        ROLE_LABEL=ROLE_LABEL,
        PAPER_LABEL=PAPER_LABEL,
        SUMMARY_LABEL=SUMMARY_LABEL,
        ACK_LABEL=ACK_LABEL,
        PAPER_ITEM_LABEL=PAPER_ITEM_LABEL,
        PROBLEM_CODES=PROBLEM_CODES,
        code_label=code_label,
    )
    return env
