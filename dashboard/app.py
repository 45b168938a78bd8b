"""The dashboard's FastAPI app: session guard, security headers, error pages, static files, the pages."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from dashboard.security import COOKIE, SessionData, Sessions, is_https, session_secret
from dashboard.web import HERE, DashState, make_templates, render
from intake.pipeline import Services
from store.users_models import DashboardUser

log = logging.getLogger(__name__)

# Reachable without logging in: the login form and the stylesheet and scripts it needs.
PUBLIC = ("/login", "/static/")
# Pages: scripts and styles only from this origin (htmx and app.js are files, nothing inline), no
# plugins, no framing, forms only to ourselves. Inline SVG charts are markup, not scripts.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Largest request body, files and multipart overhead included: every form here is a few fields of at most a
# few thousand characters. Anyone may post to /login, and a body is read (files spooled to disk) before any
# check runs, so without a bound one request could fill the disk. The paper-log import has its own limit.
MAX_BODY = 256 * 1024


def create_app(services: Services, daemon: Any = None) -> FastAPI:
    from dashboard.pages import ROUTERS

    cfg = services.config
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, title="intake", max_body_size=MAX_BODY)
    app.state.dash = DashState(
        services=services,
        daemon=daemon,
        sessions=Sessions(session_secret(cfg), cfg.dashboard.session_max_age),
        templates=make_templates(cfg.call.tz),
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _check_every_change_is_guarded(ROUTERS)
    for router in ROUTERS:
        app.include_router(router)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        try:
            return await _guard(request, call_next)
        except (OperationalError, DBAPIError) as e:
            # The database is restarting or locked: a page saying so, one log line, no traceback.
            log.warning("dashboard: database unavailable for %s: %s", request.url.path, str(e).splitlines()[0])
            return _unavailable(request)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return _error_page(request, 422, "请求参数不正确")

    return app


def _check_every_change_is_guarded(routers: list[Any]) -> None:
    """A route that changes something without the CSRF/role dependency is a bug: refuse to start."""
    from dashboard.web import require_admin, require_session, require_staff

    guards = {require_staff, require_admin, require_session}
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute) or not (route.methods or set()) - {"GET", "HEAD"}:
                continue
            deps = {d.call for d in route.dependant.dependencies}
            if not deps & guards:
                raise RuntimeError(f"{route.path} changes state without a CSRF/role guard")


def _load_user(st: DashState, data: SessionData) -> DashboardUser | None:
    with Session(st.services.engine, expire_on_commit=False) as s:
        user = s.get(DashboardUser, data.user_id)
    if user is None or user.disabled or user.session_epoch != data.epoch:
        return None
    return user


async def _guard(request: Request, call_next: Any) -> Response:
    st: DashState = request.app.state.dash
    cfg = st.config.dashboard
    raw = request.cookies.get(COOKIE)
    data = st.sessions.loads(raw)
    changed = data is None
    if data is None:
        data = SessionData.anonymous()
    user = None
    if data.user_id is not None:
        user = await run_in_threadpool(_load_user, st, data)
        if user is None:
            # Expired epoch (password changed, account disabled) or deleted account: back to anonymous.
            data, changed = SessionData.anonymous(), True
    path = request.url.path
    flash_in = None
    if (
        data.flash
        and request.method == "GET"
        and not path.startswith("/static/")
        and not request.headers.get("hx-request")
    ):
        # Shown once, on the next full page.
        flash_in, data.flash, changed = data.flash, None, True
    request.state.session = data
    request.state.user = user
    request.state.flash_in = flash_in
    if user is None and not path.startswith(PUBLIC):
        target = path + (f"?{request.url.query}" if request.url.query else "")
        url = "/login" + (f"?next={quote(target, safe='')}" if request.method == "GET" and path != "/" else "")
        response: Response = RedirectResponse(url, status_code=303)
        if request.headers.get("hx-request"):
            response.headers["HX-Redirect"] = url
    else:
        response = await call_next(request)
    out: SessionData | None = getattr(request.state, "session_out", None)
    flash_out = getattr(request.state, "flash_out", None)
    if out is not None:
        data, changed = out, True
    if flash_out is not None:
        data.flash, changed = flash_out, True
    if changed:
        secure = cfg.secure_cookies == "always" or (
            cfg.secure_cookies == "auto" and is_https(request.url.scheme, request.headers, cfg.trust_proxy)
        )
        response.set_cookie(
            COOKIE,
            st.sessions.dumps(data),
            max_age=int(cfg.session_max_age.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=secure,
            path="/",
        )
    _security_headers(response, path)
    return response


def _security_headers(response: Response, path: str) -> None:
    h = response.headers
    h.setdefault("Content-Security-Policy", PAGE_CSP)
    h["X-Content-Type-Options"] = "nosniff"
    h["X-Frame-Options"] = "DENY"
    h["Referrer-Policy"] = "same-origin"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    h["Cross-Origin-Resource-Policy"] = "same-origin"
    if not path.startswith("/static/"):
        # Applications, files and mail are personal data: not kept in shared caches or the back-forward cache.
        h["Cache-Control"] = "no-store"


def _unavailable(request: Request) -> Response:
    from fastapi.responses import HTMLResponse

    text = "数据库暂时不可用，请稍后刷新重试。"
    if request.headers.get("hx-request"):
        return HTMLResponse(f'<p class="error">{text}</p>', status_code=503, headers={"Retry-After": "5"})
    page = f"<!doctype html><meta charset=utf-8><title>暂时不可用</title><p>{text}</p>"
    return HTMLResponse(page, status_code=503, headers={"Retry-After": "5"})


def _error_page(request: Request, status: int, detail: str) -> Response:
    titles = {401: "请先登录", 403: "无权操作", 404: "未找到", 413: "文件太大", 422: "请求不正确", 429: "尝试过多"}
    if request.headers.get("hx-request"):
        from fastapi.responses import HTMLResponse
        from markupsafe import escape

        return HTMLResponse(f'<p class="error">{escape(detail)}</p>', status_code=status)
    return render(request, "error.html", status_code=status, title=titles.get(status, "出错了"), detail=detail)
