"""Log in (argon2, rate-limited per user name and per address) and log out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from dashboard.security import SessionData, authenticate, client_ip, login_blocked, record_attempt
from dashboard.web import db, render, require_session, set_flash, state
from store.types import utcnow
from store.users_models import DashboardUser

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a path of this site: never //other.host or a scheme (open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    if getattr(request.state, "user", None) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", next=_safe_next(next), error=None, username="")


@router.post("/login", dependencies=[Depends(require_session)])
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    s: Annotated[Session, Depends(db)],
    next: Annotated[str, Form()] = "/",
) -> Response:
    st = state(request)
    cfg = st.config
    ip = client_ip(
        request.client and (request.client.host, request.client.port), request.headers, cfg.dashboard.trust_proxy
    )
    if login_blocked(s, cfg, username, ip):
        minutes = int(cfg.dashboard.login_window.total_seconds() // 60)
        return render(
            request,
            "login.html",
            status_code=429,
            next=_safe_next(next),
            username=username,
            error=f"登录失败次数过多，请 {minutes} 分钟后再试，或请管理员重设密码。",
        )
    user = authenticate(s, username, password)
    record_attempt(s, username, ip, ok=user is not None)
    if user is None:
        s.commit()
        return render(
            request,
            "login.html",
            status_code=401,
            next=_safe_next(next),
            username=username,
            error="用户名或密码不正确。",
        )
    user.last_login_at = utcnow()
    s.add(user)
    s.commit()
    # A new session (and CSRF token) at login: a token planted before login is worth nothing after it.
    fresh = SessionData.anonymous()
    request.state.session_out = SessionData(user.id, user.session_epoch, fresh.csrf)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", dependencies=[Depends(require_session)])
def logout(request: Request, s: Annotated[Session, Depends(db)]) -> Response:
    user = getattr(request.state, "user", None)
    if user is not None:
        # The cookie is signed, not stored: a new epoch is what makes a copy of it (left on a shared computer,
        # read off a proxy) worthless. It ends this user's sessions in other browsers as well.
        row = s.get(DashboardUser, user.id)
        if row is not None:
            row.session_epoch += 1
            row.updated_at = utcnow()
            s.add(row)
            s.commit()
    request.state.session_out = SessionData.anonymous()
    set_flash(request, "已退出登录。")
    return RedirectResponse("/login", status_code=303)
