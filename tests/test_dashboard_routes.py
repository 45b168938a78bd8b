"""Route tests of the staff dashboard (FastAPI TestClient) on a season ingested through the real pipeline,
SQLite and PostgreSQL: login and roles, CSRF, rate limits, every page and action, an XSS corpus rendered
inert, downloads (RFC 6266, types, traversal and foreign hashes refused), filters, exports, audit."""

from __future__ import annotations

import csv
import html.parser
import io
import re
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from parsers.types import Kind
from tests import mailgen
from tests.seasongen import Applicant, AppPlan, build_applications, compose, season_time
from tests.support import write_config

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PASSWORDS = {"alice": "alice-staff-pw", "bob": "bob-viewer-pw", "carol": "carol-admin-pw"}
ROLES = {"alice": "staff", "bob": "viewer", "carol": "admin"}
# The call's deadline is a year later here: nothing is late and a missing paper copy is only a warning,
# so waiving the one error of an application makes it complete.
DEADLINE = "2027-07-07T17:00:00+08:00"
XSS_ORG = '<script>alert("org")</script>智汇科技有限公司'
XSS_PROJECT = '<img src=x onerror=alert("project")>智能巡检终端'
XSS_SUBJECT = '申报材料<script>alert("subject")</script>" onmouseover="alert(1)'
XSS_FILE = '<svg onload=alert("file")>说明.txt'
XSS_TEXT = '正文<script>alert("body")</script><a href="javascript:alert(1)">链接</a>'
XSS_HTML = (
    '<p>您好</p><script>alert("html")</script><img src=x onerror=alert("img")>'
    '<a href="javascript:alert(3)">点我</a><svg onload=alert("svg")><iframe src="https://evil.test/"></iframe>'
)


@dataclass
class Season:
    """What the tests refer to by name once the season is ingested."""

    mails: dict[str, bytes]
    pdf_a: bytes
    pdf_a_name: str
    org_a: str
    org_b: str
    project_a: str
    contact_b: str
    code_b: str
    receipts: dict[str, str] = field(default_factory=dict)


def make_mails() -> Season:
    """Five emails: two ordinary applications, one with hostile names, a lone proof file nobody can place,
    a mail with a hostile subject, body and file name, and one that cannot be parsed at all."""
    a = AppPlan(Kind.form_scenario, seed=71, files={"word", "pdf", "commitment", "evidence"})
    # No proof material (missing_evidence); its 承诺书 is the last page of the form's PDF.
    b = AppPlan(Kind.form_model, seed=72, files={"word", "pdf"})
    c = AppPlan(
        Kind.form_terminal,
        seed=73,
        applicant=Applicant(XSS_ORG, Applicant.make(73).credit_code, "江汉区", "evil@example.com", "张三"),
        files={"word", "pdf", "commitment", "evidence"},
        values={"org_name": XSS_ORG, "applicant": XSS_ORG, "project_name": XSS_PROJECT},
    )
    built = build_applications([a, b, c])
    ba, bb, bc = built
    at = season_time(-3, 10)
    mails = {
        "a": compose(ba.applicant.sender, f"{ba.applicant.org}申报材料", ba.attachments(), sent=at),
        "b": compose(bb.applicant.sender, "模型和智能体申报", bb.attachments(), sent=at + timedelta(hours=1)),
        "c": compose(bc.applicant.sender, XSS_SUBJECT, bc.attachments(), sent=at + timedelta(hours=2), body=XSS_TEXT),
        "lone": compose("someone@163.com", "补充材料", [("补充说明.docx", _note_docx())], sent=at + timedelta(hours=3)),
        "hostile": _hostile(at + timedelta(hours=4)),
        # Nested 1,500 levels deep: archived, then quarantined by the parser ("nested too deeply").
        "broken": next(raw for n, raw, _ in mailgen.hopeless() if n == "recursion_bomb"),
    }
    return Season(
        mails=mails,
        pdf_a=ba.files["pdf"][1],
        pdf_a_name=ba.files["pdf"][0],
        org_a=ba.applicant.org,
        org_b=bb.applicant.org,
        project_a=ba.project,
        contact_b=str(bb.form.expected_fields.get("contact_name")),
        code_b=bb.applicant.credit_code,
    )


def _note_docx() -> bytes:
    """A file that names no unit and no project: grouping cannot place it."""
    import docx

    d = docx.Document()
    d.add_paragraph("补充说明")
    d.add_paragraph("此前提交的材料中，第三页照片不清晰，现补充高清版本，请查收。")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def _hostile(sent: Any) -> bytes:
    from email.message import EmailMessage
    from email.utils import format_datetime

    m = EmailMessage()
    m["From"] = '"<b>Mallory</b>" <mallory@example.com>'
    m["To"] = "whaicj@126.com"
    m["Subject"] = XSS_SUBJECT
    m["Date"] = format_datetime(sent)
    m["Message-ID"] = "<hostile-1@example.com>"
    m.set_content(XSS_TEXT)
    m.add_alternative(XSS_HTML, subtype="html")
    m.add_attachment(b"<script>alert('inside')</script>", maintype="text", subtype="html", filename=XSS_FILE)
    return bytes(m)


def ingest(config_path: Path, season: Season, folder: Path) -> None:
    """The emails as files through the real pipeline (parse, store, parse documents, applications)."""
    from intake.config import load_config
    from intake.ingest import ingest_paths
    from intake.pipeline import process_pending, resolve_stages
    from intake.services import build_services

    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in season.mails.items():
        (folder / f"{name}.eml").write_bytes(raw)
    cfg = load_config(config_path)
    services = build_services(cfg)
    try:
        ingest_paths(services, [folder])
        process_pending(services, resolve_stages(cfg.pipeline.stages))
    finally:
        services.close()
        services.engine.dispose()


# -- fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def season() -> Season:
    return make_mails()


@dataclass
class Env:
    """One ingested season on one database, with its dashboard app."""

    config: Path
    services: Any
    app: Any
    season: Season
    receipts: dict[str, str]
    ids: dict[str, int]

    def client(self, user: str | None = None, **kwargs: Any) -> Client:
        c = Client(TestClient(self.app, **kwargs))
        if user is not None:
            c.login(user, PASSWORDS[user])
        return c

    def session(self) -> Any:
        from sqlmodel import Session

        return Session(self.services.engine)


class Client:
    """A TestClient that knows its session's CSRF token."""

    def __init__(self, tc: TestClient) -> None:
        self.tc = tc
        self.csrf = ""

    def refresh_csrf(self, path: str = "/login") -> str:
        r = self.tc.get(path)
        m = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
        assert m, r.text[:500]
        self.csrf = m.group(1)
        return self.csrf

    def login(self, user: str, password: str, *, expect: int = 303) -> Any:
        self.refresh_csrf("/login")
        r = self.tc.post(
            "/login", data={"username": user, "password": password, "csrf_token": self.csrf}, follow_redirects=False
        )
        assert r.status_code == expect, r.text[:500]
        if expect == 303:
            self.refresh_csrf("/paper")
        return r

    def get(self, path: str, **kw: Any) -> Any:
        return self.tc.get(path, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: str | None = "", **kw: Any) -> Any:
        body = dict(data or {})
        if csrf is not None:
            body["csrf_token"] = csrf or self.csrf
        kw.setdefault("follow_redirects", False)
        return self.tc.post(path, data=body, **kw)


def _database(request: pytest.FixtureRequest, tmp: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp / 'intake.db'}"
        return
    server = request.getfixturevalue("postgres")
    if not server.running:
        server.start()
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        if server.running:
            server.drop_database(name)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, season: Season, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from sqlmodel import Session, select

    from dashboard.app import create_app
    from dashboard.users import add_user
    from intake.config import load_config
    from intake.services import build_services
    from store.models import Application, AttachmentRow, DocumentRow, Message

    tmp = tmp_path_factory.mktemp(f"dash-{request.param}")
    gen = _database(request, tmp)
    url = next(gen)
    config = write_config(
        tmp,
        db_url=url,
        sections={
            "call": {"deadline": DEADLINE},
            "ack": {"enabled": True, "dry_run": True},
            "pipeline": {
                "stages": ["parse_message", "store_attachments", "parse_documents", "applications", "enqueue_ack"]
            },
            "dashboard": {"enabled": True, "secret_env": "INTAKE_TEST_NO_SUCH_SECRET", "page_size": 5},
        },
    )
    ingest(config, season, tmp / "mail")
    services = build_services(load_config(config))
    with Session(services.engine) as s:
        for name, role in ROLES.items():
            add_user(s, name, role, PASSWORDS[name], by="test")
        s.commit()
        receipts = {}
        for a in s.exec(select(Application)):
            key = {"scenario": "a", "model": "b", "terminal": "c"}[a.form_type]
            receipts[key] = a.receipt_no
        msgs = {m.subject or "": m for m in s.exec(select(Message))}
        ids = {
            "msg_a": next(m.id for subj, m in msgs.items() if subj.startswith(season.org_a)),
            "msg_hostile": next(m.id for m in msgs.values() if m.from_addr == "mallory@example.com"),
            "msg_broken": next(m.id for m in msgs.values() if m.state == "quarantined"),
            "msg_lone": next(m.id for m in msgs.values() if m.from_addr == "someone@163.com"),
        }
        docs = list(s.exec(select(DocumentRow)))
        ids["pdf_a"] = next(d.id for d in docs if d.message_pk == ids["msg_a"] and d.format.startswith("pdf"))
        ids["word_a"] = next(
            d.id for d in docs if d.message_pk == ids["msg_a"] and d.format == "docx" and d.kind.startswith("form")
        )
        ids["lone"] = next(d.id for d in docs if d.message_pk == ids["msg_lone"])
        atts = list(s.exec(select(AttachmentRow)))
        ids["att_hostile"] = next(a.id for a in atts if a.message_pk == ids["msg_hostile"])
    assert set(receipts) == {"a", "b", "c"}, receipts
    e = Env(config, services, create_app(services), season, receipts, {k: int(v) for k, v in ids.items() if v})
    try:
        yield e
    finally:
        services.close()
        services.engine.dispose()
        for _ in gen:
            pass


def _count(env: Env, model: Any) -> int:
    from sqlalchemy import func
    from sqlmodel import select

    with env.session() as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


class Tags(html.parser.HTMLParser):
    """Every start tag with its attributes: what a browser would build from the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def live_markup(page: str) -> list[str]:
    """Script, handler and URL injections that would run in a browser (empty when the page is inert)."""
    p = Tags()
    p.feed(page)
    bad = []
    for tag, attrs in p.tags:
        if tag == "script" and attrs.get("src") not in ("/static/htmx.min.js", "/static/app.js"):
            bad.append(f"<script {attrs}>")
        if tag in ("iframe", "object", "embed", "svg") and tag != "svg":
            bad.append(f"<{tag}>")
        if tag == "svg" and any(k.startswith("on") for k in attrs):
            bad.append(f"<svg {attrs}>")
        for k, v in attrs.items():
            if k.startswith("on"):
                bad.append(f"<{tag} {k}={v!r}>")
            if k in ("href", "src", "action", "formaction") and v and v.strip().lower().startswith("javascript:"):
                bad.append(f"<{tag} {k}={v!r}>")
    return bad


# -- pages and actions -------------------------------------------------------------------------------------------

GET_PAGES = [
    "/",
    "/applications",
    "/applications?q=x&status=incomplete&sort=org&desc=1",
    "/messages",
    "/messages?state=quarantined",
    "/paper",
    "/paper/unmatched",
    "/paper/suggest?q=科技",
    "/reconcile",
    "/reconcile?view=all",
    "/unassigned",
    "/applications/export.xlsx",
    "/applications/export.csv",
]


def pages(env: Env) -> list[str]:
    i = env.ids
    return [
        *GET_PAGES,
        f"/applications/{env.receipts['a']}",
        f"/applications/{env.receipts['c']}",
        f"/documents/{i['pdf_a']}",
        f"/documents/{i['pdf_a']}/download",
        f"/documents/{i['pdf_a']}/preview/0.png",
        f"/messages/{i['msg_hostile']}",
        f"/messages/{i['msg_broken']}",
    ]


def actions(env: Env) -> list[tuple[str, dict[str, Any]]]:
    i, r = env.ids, env.receipts
    return [
        (f"/applications/{r['a']}/decide", {"action": "waive", "code": "missing_license", "reason": "x"}),
        ("/paper/add", {"q": env.season.org_a, "receipt": r["a"], "copies": "2", "item": "form"}),
        ("/reconcile/override", {"subject": "paper:1", "action": "unmatch", "reason": "x"}),
        (f"/unassigned/{i['lone']}/assign", {"receipt_no": r["a"], "reason": "x"}),
        (f"/messages/{i['msg_broken']}/replay", {}),
    ]


def test_anonymous_requests_go_to_the_login_page(env: Env) -> None:
    c = env.client()
    for path in pages(env):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login"), path
        assert b"<table" not in r.content, path
    r = c.get(f"/applications/{env.receipts['a']}", follow_redirects=False)
    assert r.headers["location"] == f"/login?next=%2Fapplications%2F{env.receipts['a']}"
    csrf = c.refresh_csrf()
    for path, data in actions(env):
        r = c.post(path, data, csrf=csrf)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
    r = c.tc.post(
        "/paper/import", files={"file": ("log.xlsx", b"x")}, data={"csrf_token": csrf}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    # Static files (the login page's stylesheet and scripts) are public, nothing else.
    assert c.get("/static/app.css").status_code == 200
    for path in ("/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/..%2F..%2Fetc%2Fpasswd"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code in (303, 404) and b"root:" not in r.content, path


def test_every_page_renders_for_a_viewer_with_safe_headers(env: Env) -> None:
    c = env.client("bob")
    for path in pages(env):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 200, (path, r.text[:800])
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["cache-control"] == "no-store", path
        assert "default-src" in r.headers["content-security-policy"], path
        if r.headers["content-type"].startswith("text/html"):
            assert "script-src 'self'" in r.headers["content-security-policy"]
            assert r.headers["x-frame-options"] == "DENY"
            assert live_markup(r.text) == [], path
    page = c.get("/").text
    assert "材料不齐" in page and "典型应用场景" in page and "截止" in page and "<svg" in page
    detail = c.get(f"/applications/{env.receipts['a']}").text
    assert env.season.org_a in detail and env.season.project_a in detail
    assert "缺少营业执照（法人证书）复印件" in detail and "Word 版与扫描件比对" in detail
    assert "保存决定" not in detail, "a viewer sees no decision form"
    # The dry-run acknowledgement, as it would have been sent, on the application's page.
    assert "演练（未发送）" in detail and "回执：" in detail


def test_viewer_changes_nothing(env: Env) -> None:
    from store.models import AuditEvent, Decision
    from store.paper_models import PaperEntry

    c = env.client("bob")
    before = (_count(env, AuditEvent), _count(env, Decision), _count(env, PaperEntry))
    for path, data in actions(env):
        r = c.post(path, data)
        assert r.status_code == 403, (path, r.text[:300])
        assert "只读" in r.text
    r = c.tc.post("/paper/import", files={"file": ("log.csv", b"a,b\n")}, data={"csrf_token": c.csrf})
    assert r.status_code == 403
    assert (_count(env, AuditEvent), _count(env, Decision), _count(env, PaperEntry)) == before


def test_changes_without_the_csrf_token_are_refused(env: Env) -> None:
    from store.models import AuditEvent

    c = env.client("alice")
    before = _count(env, AuditEvent)
    for path, data in actions(env):
        assert c.post(path, data, csrf=None).status_code == 403, path
        assert c.post(path, data, csrf="forged-token").status_code == 403, path
        # The right token from another site's form (Origin) is refused too.
        r = c.post(path, data, headers={"Origin": "https://evil.test"})
        assert r.status_code == 403, path
    other = env.client("alice")  # another session's token is not this session's
    assert c.post(actions(env)[0][0], actions(env)[0][1], csrf=other.csrf).status_code == 403
    anon = env.client()
    anon.refresh_csrf()
    r = anon.tc.post("/login", data={"username": "alice", "password": PASSWORDS["alice"]}, follow_redirects=False)
    assert r.status_code == 403
    assert _count(env, AuditEvent) == before


def test_login_cookie_is_hardened_and_logout_ends_the_session(env: Env) -> None:
    c = env.client()
    r = c.login("alice", PASSWORDS["alice"])
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Secure" not in cookie
    assert c.get("/").status_code == 200
    r = c.post("/logout")
    assert r.status_code == 303
    assert c.get("/", follow_redirects=False).status_code == 303
    # Served over https (or behind a trusted proxy saying so), the cookie is Secure.
    s = env.client(base_url="https://testserver")
    assert "Secure" in s.login("alice", PASSWORDS["alice"]).headers["set-cookie"]


def test_secure_cookie_behind_a_proxy_only_when_trusted(env: Env, tmp_path: Path) -> None:
    from dashboard.app import create_app
    from intake.config import load_config

    cfg = env.services.config
    for trust, expect in ((False, False), (True, True)):
        dash = cfg.dashboard.model_copy(update={"trust_proxy": trust})
        env.services.config = cfg.model_copy(update={"dashboard": dash})
        try:
            tc = TestClient(create_app(env.services))
            # The session cookie set with the login form (anonymous, carrying the CSRF token).
            r = tc.get("/login", headers={"X-Forwarded-Proto": "https"})
            assert ("Secure" in r.headers["set-cookie"]) is expect
        finally:
            env.services.config = cfg
    assert load_config(env.config).dashboard.trust_proxy is False


def test_login_is_rate_limited_per_user_and_per_address(env: Env) -> None:
    from sqlmodel import delete

    from store.users_models import LoginAttempt

    c = env.client()
    r = c.login("carol", "wrong", expect=401)
    assert "用户名或密码不正确" in r.text
    for _ in range(4):
        c.login("carol", "wrong", expect=401)
    # Five failures: now even the right password is refused for a while, and it says so.
    r = c.login("carol", PASSWORDS["carol"], expect=429)
    assert "失败次数过多" in r.text
    # Other users from this address are not locked out by carol's failures alone ...
    env.client("alice")
    # ... until the address has failed too often itself (unknown names count).
    for i in range(15):
        c.login(f"nobody{i}", "wrong", expect=401)
    c.login("alice", PASSWORDS["alice"], expect=429)
    with env.session() as s:
        s.exec(delete(LoginAttempt))  # type: ignore[call-overload]
        s.commit()
    env.client("carol")


def test_sessions_end_when_the_password_changes_or_the_account_is_disabled(env: Env) -> None:
    from dashboard.users import set_disabled, set_password

    c = env.client("carol")
    assert c.get("/").status_code == 200
    with env.session() as s:
        set_password(s, "carol", "carol-new-password", by="test")
        s.commit()
    assert c.get("/", follow_redirects=False).status_code == 303
    c.login("carol", "carol-new-password")
    with env.session() as s:
        set_disabled(s, "carol", True, by="test")
        s.commit()
    assert c.get("/", follow_redirects=False).status_code == 303
    c.login("carol", "carol-new-password", expect=401)
    with env.session() as s:
        set_disabled(s, "carol", False, by="test")
        set_password(s, "carol", PASSWORDS["carol"], by="test")
        s.commit()


def test_xss_corpus_is_rendered_inert(env: Env) -> None:
    c = env.client("alice")
    targets = [
        "/",
        "/applications",
        f"/applications?q={XSS_ORG[:20]}",
        f"/applications/{env.receipts['c']}",
        "/messages",
        f"/messages/{env.ids['msg_hostile']}",
        "/unassigned",
        "/reconcile?view=all",
        "/paper",
        "/paper/suggest?q=智汇科技",
        f"/paper/suggest?q={XSS_ORG}",
    ]
    for path in targets:
        r = c.get(path)
        assert r.status_code == 200, path
        assert live_markup(r.text) == [], path
        assert "<script>alert" not in r.text and "onerror=alert" not in r.text.replace("onerror=alert(&#34;", ""), path
    app_page = c.get(f"/applications/{env.receipts['c']}").text
    assert "&lt;script&gt;alert(&#34;org&#34;)&lt;/script&gt;智汇科技有限公司" in app_page
    assert "&lt;img src=x onerror=alert(&#34;project&#34;)&gt;智能巡检终端" in app_page
    msg = c.get(f"/messages/{env.ids['msg_hostile']}").text
    assert "申报材料&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt;&#34; onmouseover=&#34;alert(1)" in msg
    # The HTML body is shown as its source, escaped, never as a page (nor in an iframe).
    assert "&lt;iframe src=&#34;https://evil.test/&#34;&gt;" in msg and "<iframe" not in msg
    assert "&lt;svg onload=alert(&#34;file&#34;)&gt;说明.txt" in msg
    suggest = c.get("/paper/suggest", params={"q": "智汇"}).text
    assert "&lt;script&gt;" in suggest


def test_downloads_have_the_right_bytes_type_and_rfc6266_name(env: Env) -> None:
    from urllib.parse import quote

    c = env.client("bob")
    r = c.get(f"/documents/{env.ids['pdf_a']}/download")
    assert r.status_code == 200
    assert r.content == env.season.pdf_a
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["x-content-type-options"] == "nosniff"
    cd = r.headers["content-disposition"]
    assert cd.startswith('attachment; filename="') and f"filename*=UTF-8''{quote(env.season.pdf_a_name, safe='')}" in cd
    assert "sandbox" in r.headers["content-security-policy"]
    word = c.get(f"/documents/{env.ids['word_a']}/download")
    assert word.headers["content-type"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    # The hostile attachment (text/html claimed) goes out as an inert binary download.
    with env.session() as s:
        from store.models import AttachmentRow

        att = s.get(AttachmentRow, env.ids["att_hostile"])
        assert att is not None
    r = c.get(f"/messages/{env.ids['msg_hostile']}/attachments/{att.sha256}")
    assert r.status_code == 200 and r.content == b"<script>alert('inside')</script>"
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert "<svg" not in r.headers["content-disposition"].split("filename*")[0]
    # Previews are PNG pictures, sandboxed.
    p = c.get(f"/documents/{env.ids['pdf_a']}/preview/0.png")
    assert p.status_code == 200 and p.content.startswith(b"\x89PNG") and p.headers["content-type"] == "image/png"
    assert "sandbox" in p.headers["content-security-policy"]
    assert c.get(f"/documents/{env.ids['pdf_a']}/preview/99.png").status_code == 404
    assert c.get(f"/documents/{env.ids['word_a']}/preview/0.png").status_code == 404


def test_blob_missing_from_the_store_is_extracted_again_from_the_archived_message(env: Env) -> None:
    import os

    from store.models import AttachmentRow, DocumentRow

    with env.session() as s:
        d = s.get(DocumentRow, env.ids["pdf_a"])
        assert d is not None and d.attachment_pk is not None
        att = s.get(AttachmentRow, d.attachment_pk)
        assert att is not None
    path = env.services.blobs.path_for(att.sha256)
    os.chmod(path, 0o600)
    path.unlink()
    r = env.client("bob").get(f"/documents/{env.ids['pdf_a']}/download")
    assert r.status_code == 200 and r.content == env.season.pdf_a
    assert path.exists()


def test_traversal_and_foreign_hashes_are_refused(env: Env) -> None:
    from sqlmodel import select

    from store.models import AttachmentRow, Message

    c = env.client("alice")
    with env.session() as s:
        foreign = s.exec(select(AttachmentRow).where(AttachmentRow.message_pk == env.ids["msg_a"])).first()
        raw_sha = s.get(Message, env.ids["msg_a"]).sha256  # type: ignore[union-attr]
    assert foreign is not None
    hostile = env.ids["msg_hostile"]
    for path in [
        f"/messages/{hostile}/attachments/{foreign.sha256}",  # another message's attachment
        f"/messages/{hostile}/attachments/{raw_sha}",  # a raw message in the archive
        f"/messages/{hostile}/attachments/..%2F..%2F..%2Fetc%2Fpasswd",
        f"/messages/{hostile}/attachments/../../../../etc/passwd",
        "/documents/..%2F..%2Fetc%2Fpasswd/download",
        "/documents/999999/download",
        "/documents/-1/download",
        "/static/..%2F..%2F..%2Fetc%2Fpasswd",
    ]:
        r = c.get(path)
        assert r.status_code in (404, 422), (path, r.status_code)
        assert b"root:" not in r.content


def test_content_disposition_follows_rfc6266() -> None:
    from dashboard.files import content_disposition, content_type

    cd = content_disposition("附件1 申报书（盖章扫描件）.pdf", attachment=True)
    assert cd == (
        "attachment; filename=\"1_.pdf\"; filename*=UTF-8''%E9%99%84%E4%BB%B61%20%E7%94%B3%E6%8A%A5%E4%B9%A6"
        "%EF%BC%88%E7%9B%96%E7%AB%A0%E6%89%AB%E6%8F%8F%E4%BB%B6%EF%BC%89.pdf"
    )
    evil = content_disposition('../../a"b\r\nSet-Cookie: x=1.pdf', attachment=True)
    assert "\r" not in evil and "\n" not in evil and '"b' not in evil.split(";")[1]
    assert content_type("x.html", "other") == "application/octet-stream"
    assert content_type("x.svg", "image") == "application/octet-stream"
    assert content_type("x.png", "image") == "image/png"
    assert content_type("x.doc", "doc") == "application/msword"


def test_filters_search_sort_and_pages(env: Env) -> None:
    from dashboard import queries

    c = env.client("bob")
    r, s = env.receipts, env.season

    def listed(query: str) -> set[str]:
        page = c.get(f"/applications?{query}").text
        return {x for x in r.values() if f">{x}</a>" in page}

    assert listed("") == set(r.values())
    assert listed("form_type=model") == {r["b"]}
    assert listed("problem=missing_evidence") == {r["b"]}
    assert listed("problem=missing_license") == set(r.values())
    assert listed("status=complete") == set()
    assert listed(f"q={s.org_a[3:8]}") == {r["a"]}
    assert listed(f"q={s.code_b.lower()}") == {r["b"]}, "credit codes match whatever the case"
    assert listed(f"q={s.contact_b}") == {r["b"]}
    assert listed("q=计算机软件著作权登记证书") == {r["a"], r["c"]}, "text extracted from the proof documents"
    assert listed("q=100%25") == set(), "a typed % is not a wildcard"
    assert listed("paper=missing") == set(r.values())
    assert listed("paper=matched") == set()
    with env.session() as ses:
        district = queries.districts(ses)[0]
        f = queries.AppFilter(sort="org", desc=True).clean()
        page1 = queries.list_applications(ses, f, 2)
        page2 = queries.list_applications(ses, queries.AppFilter(sort="org", desc=True, page=2).clean(), 2)
    assert page1.total == 3 and page1.pages == 2 and len(page1.rows) == 2 and len(page2.rows) == 1
    orgs = [x.org_name for x in page1.rows + page2.rows]
    assert orgs == sorted(orgs, reverse=True)
    assert listed(f"district={district}")
    assert "第 1 / 1 页" not in c.get("/applications").text


def test_export_of_the_filtered_list(env: Env) -> None:
    from openpyxl import load_workbook

    from review.exports import ALL_SHEET

    c = env.client("bob")
    r = c.get("/applications/export.xlsx?form_type=model")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "filename*=UTF-8''" in r.headers["content-disposition"]
    wb = load_workbook(io.BytesIO(r.content))
    rows = list(wb[ALL_SHEET].iter_rows(values_only=True))
    assert [row[0] for row in rows[1:]] == [env.receipts["b"]]
    assert len(list(wb["模型和智能体"].iter_rows(values_only=True))) == 2
    csv_ = c.get("/applications/export.csv").content
    assert csv_.startswith(b"\xef\xbb\xbf")
    rows_csv = list(csv.reader(io.StringIO(csv_.decode("utf-8-sig"))))
    assert sorted(row[0] for row in rows_csv[1:]) == sorted(env.receipts.values())


def test_waiving_a_problem_changes_the_status_and_is_audited(env: Env) -> None:
    from sqlmodel import select

    from store.models import Application, AuditEvent, Decision

    c = env.client("alice")
    receipt = env.receipts["a"]
    page = c.get(f"/applications/{receipt}").text
    assert "材料不齐" in page and "保存决定" in page
    # No reason: refused with a message, nothing written.
    r = c.post(f"/applications/{receipt}/decide", {"action": "waive", "code": "missing_license", "reason": " "})
    assert r.status_code == 303
    assert "未能保存" in c.get(r.headers["location"]).text
    r = c.post(
        f"/applications/{receipt}/decide",
        {"action": "waive", "code": "missing_license", "reason": "营业执照随纸质材料补交，已核对原件"},
    )
    assert r.status_code == 303
    page = c.get(r.headers["location"]).text
    assert "已豁免“缺少营业执照（法人证书）复印件”；当前状态：材料齐全" in page
    assert "营业执照随纸质材料补交，已核对原件" in page and "decision.waive" in page
    with env.session() as s:
        app = s.exec(select(Application).where(Application.receipt_no == receipt)).one()
        assert app.status == "complete"
        d = s.exec(select(Decision).where(Decision.application_pk == app.id)).one()
        ev = s.exec(select(AuditEvent).where(AuditEvent.target == f"application:{receipt}")).all()
        assert d.user == "alice" and [e.action for e in ev] == ["decision.waive"]
    r = c.post(f"/applications/{receipt}/decide", {"action": "revoke", "code": str(d.id), "reason": "误操作"})
    assert "已撤销决定" in c.get(r.headers["location"]).text
    with env.session() as s:
        assert s.exec(select(Application).where(Application.receipt_no == receipt)).one().status == "incomplete"


def test_paper_desk_suggests_logs_and_imports(env: Env) -> None:
    from openpyxl import Workbook
    from sqlmodel import select

    from dashboard.recon import wait_refreshed
    from store.models import AuditEvent
    from store.paper_models import PaperEntry, ReconcileOverride

    c = env.client("alice")
    s_ = env.season
    sug = c.get("/paper/suggest", params={"q": s_.org_b[2:6]}).text
    assert env.receipts["b"] in sug and 'value="none"' in sug
    typo = c.get("/paper/suggest", params={"q": s_.org_b[:4] + "X" + s_.org_b[5:9]}).text
    assert env.receipts["b"] in typo, "a typo still finds the application"
    r = c.post("/paper/add", {"q": s_.org_b[2:6], "receipt": env.receipts["b"], "copies": "1", "item": "form"})
    assert r.status_code == 303
    assert "已登记" in c.get("/paper").text
    with env.session() as s:
        e = s.exec(select(PaperEntry).order_by(PaperEntry.id.desc())).first()  # type: ignore[union-attr]
        assert e is not None and e.org_name == s_.org_b and e.copies == 1 and e.received_by == "alice"
        assert e.source == "dashboard"
        o = s.exec(select(ReconcileOverride).where(ReconcileOverride.subject == f"paper:{e.id}")).one()
        assert o.receipt_no == env.receipts["b"]
        assert {a.action for a in s.exec(select(AuditEvent).where(AuditEvent.user == "alice"))} >= {
            "paper.add",
            "reconcile.match",
        }
    assert wait_refreshed(env.app.state.dash)
    detail = c.get(f"/applications/{env.receipts['b']}").text
    assert "份数不足" in detail and "#" + str(e.id) in detail
    # A typed name that matches nothing is logged and listed as unmatched.
    c.post("/paper/add", {"q": "武汉某某不存在的公司", "receipt": "none", "project": "不存在的项目", "copies": "2"})
    assert "武汉某某不存在的公司" in c.get("/paper/unmatched").text
    # Import: one bad row → nothing imported, the row reported; fixed → imported.
    before = _count(env, PaperEntry)

    def workbook(when: Any) -> bytes:
        wb = Workbook()
        ws = wb.active
        assert ws is not None
        ws.append(["接收时间", "申报单位", "项目名称", "方向", "材料类型", "份数", "所在区", "接收人", "备注"])
        ws.append(["2027-07-06 10:00", s_.org_a, s_.project_a, "典型应用场景", "申报书", 2, "", "王五", ""])
        ws.append([when, "某公司", "某项目", "", "申报书", "两份", "", "王五", ""])
        buf = io.BytesIO()
        wb.save(buf)
        return buf.getvalue()

    r = c.tc.post(
        "/paper/import", files={"file": ("登记表.xlsx", workbook("七月七日下午"))}, data={"csrf_token": c.csrf}
    )
    assert r.status_code == 422 and "未导入" in r.text and "row 3" in r.text
    assert _count(env, PaperEntry) == before
    r = c.tc.post(
        "/paper/import",
        files={"file": ("登记表.xlsx", workbook("2027-07-06 11:00"))},
        data={"csrf_token": c.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert _count(env, PaperEntry) == before + 2
    assert "导入 2 条" in c.get("/paper").text


def test_reconciliation_override_is_kept_and_audited(env: Env) -> None:
    from sqlmodel import select

    from dashboard.recon import wait_refreshed
    from store.models import AuditEvent
    from store.paper_models import PaperEntry

    c = env.client("alice")
    c.post("/paper/add", {"q": "完全对不上的单位", "receipt": "none", "project": "完全对不上的项目", "copies": "2"})
    with env.session() as s:
        e = s.exec(select(PaperEntry).where(PaperEntry.org_name == "完全对不上的单位")).one()
    page = c.get("/reconcile").text
    assert "完全对不上的单位" in page and f'value="paper:{e.id}"' in page
    r = c.post(
        "/reconcile/override",
        {"subject": f"paper:{e.id}", "action": "match", "receipt_no": env.receipts["c"], "reason": "电话核实"},
    )
    assert r.status_code == 303 and "已确认匹配" in c.get("/reconcile").text
    assert wait_refreshed(env.app.state.dash)
    assert f"#{e.id}" in c.get(f"/applications/{env.receipts['c']}").text
    with env.session() as s:
        ev = s.exec(
            select(AuditEvent).where(AuditEvent.target == f"paper:{e.id}", AuditEvent.action == "reconcile.match")
        ).one()
        assert ev.user == "alice" and ev.detail["receipt_no"] == env.receipts["c"]
    bad = c.post("/reconcile/override", {"subject": "paper:999999", "action": "match", "receipt_no": "NOPE"})
    assert "未能保存" in c.get(bad.headers["location"]).text


def test_assigning_an_unassigned_document_regroups_and_is_audited(env: Env) -> None:
    from sqlmodel import select

    from store.models import Application, AssignmentOverride, AuditEvent, DocumentRow

    c = env.client("alice")
    page = c.get("/unassigned").text
    assert "补充说明.docx" in page and "归入" in page
    # A form document cannot be moved by hand.
    r = c.post(f"/unassigned/{env.ids['word_a']}/assign", {"receipt_no": env.receipts["b"]})
    assert "不能手工归属" in c.get(r.headers["location"]).text
    r = c.post(f"/unassigned/{env.ids['lone']}/assign", {"receipt_no": env.receipts["a"], "reason": "同一证书"})
    assert r.status_code == 303
    assert "已归入" in c.get(r.headers["location"]).text
    with env.session() as s:
        d = s.get(DocumentRow, env.ids["lone"])
        app = s.exec(select(Application).where(Application.receipt_no == env.receipts["a"])).one()
        assert d is not None and d.application_pk == app.id
        assert (
            s.exec(select(AssignmentOverride).where(AssignmentOverride.document_sha256 == d.sha256)).one().user
            == "alice"
        )
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "document.assign")).one().target == (
            f"application:{env.receipts['a']}"
        )
    assert "补充说明.docx" not in c.get("/unassigned").text


def test_replaying_a_quarantined_message_is_audited(env: Env) -> None:
    from sqlmodel import select

    from store.models import AuditEvent

    c = env.client("alice")
    mid = env.ids["msg_broken"]
    page = c.get(f"/messages/{mid}").text
    assert "已隔离" in page and "重新处理" in page
    assert f"/messages/{mid}" in c.get("/messages?state=quarantined").text
    r = c.post(f"/messages/{mid}/replay")
    assert r.status_code == 303
    assert "仍被隔离" in c.get(r.headers["location"]).text
    with env.session() as s:
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "message.replay")).one()
        assert ev.user == "alice" and ev.detail["result"] == "quarantined"


def test_an_unguarded_change_route_stops_the_app(env: Env) -> None:
    from fastapi import APIRouter

    from dashboard import app as app_module
    from dashboard.pages import ROUTERS

    bad = APIRouter()

    @bad.post("/oops")
    def oops() -> None:  # pragma: no cover - never served
        return None

    ROUTERS.append(bad)
    try:
        with pytest.raises(RuntimeError, match="/oops changes state"):
            app_module.create_app(env.services)
    finally:
        ROUTERS.remove(bad)


def test_session_secret_is_generated_once_with_mode_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard.security import session_secret
    from intake.config import ConfigError, load_config

    cfg = load_config(write_config(tmp_path))
    monkeypatch.delenv("INTAKE_DASHBOARD_SECRET", raising=False)
    first = session_secret(cfg)
    path = tmp_path / "data" / "dashboard-secret"
    assert path.stat().st_mode & 0o777 == 0o600 and len(first) >= 32
    assert session_secret(cfg) == first
    monkeypatch.setenv("INTAKE_DASHBOARD_SECRET", "from-the-environment-0123456789")
    assert session_secret(cfg) == "from-the-environment-0123456789"
    monkeypatch.setenv("INTAKE_DASHBOARD_SECRET", "short")
    with pytest.raises(ConfigError, match="too short"):
        session_secret(cfg)


def test_intake_run_serves_the_dashboard_beside_the_poller_and_stops_cleanly(tmp_path: Path) -> None:
    import signal
    import subprocess
    import urllib.request

    from devservices.ports import free_port, wait_port
    from tests.support import intake_env, start_intake

    port = free_port()
    config = write_config(tmp_path, sections={"dashboard": {"enabled": True, "port": port}})
    proc = start_intake("run", config=config, env=intake_env(), log=tmp_path / "run.log")
    try:
        wait_port("127.0.0.1", port, timeout=60, alive=lambda: proc.poll() is None)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as r:
            body = r.read().decode()
            assert r.status == 200 and "工作人员登录" in body
            assert "HttpOnly" in r.headers["Set-Cookie"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert rc == 0, (tmp_path / "run.log").read_text(errors="replace")[-2000:]


def test_users_command_adds_lists_disables_and_changes_passwords(tmp_path: Path) -> None:
    import subprocess

    from sqlmodel import Session, select

    from dashboard.security import verify_password
    from intake.config import load_config
    from store.engine import make_engine
    from store.models import AuditEvent
    from store.users_models import DashboardUser
    from tests.support import INTAKE, REPO, intake_env, run_intake

    config = write_config(tmp_path)

    def users(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*INTAKE, "users", *args, "--config", str(config)],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=REPO,
            env=intake_env(),
            timeout=120,
        )

    assert users("add", "li.na", "--role", "staff", stdin="first-password\n").returncode == 0
    dup = users("add", "li.na", stdin="other-password\n")
    assert dup.returncode == 1 and "exists already" in dup.stderr
    short = users("add", "zhao", stdin="short\n")
    assert short.returncode == 2 and "at least 8" in short.stderr
    bad = users("add", "x", "--role", "root", stdin="long-enough-pw\n")
    assert bad.returncode == 1 and "unknown role" in bad.stderr
    assert users("passwd", "li.na", stdin="second-password\n").returncode == 0
    assert users("disable", "li.na").returncode == 0
    listed = run_intake("users", "list", config=config).stdout
    assert "li.na" in listed and "staff" in listed and "disabled" in listed
    engine = make_engine(load_config(config).db_url)
    with Session(engine) as s:
        u = s.exec(select(DashboardUser).where(DashboardUser.name == "li.na")).one()
        assert u.disabled and u.session_epoch == 2
        assert verify_password(u.password_hash, "second-password") and u.password_hash.startswith("$argon2id$")
        actions = [e.action for e in s.exec(select(AuditEvent).where(AuditEvent.target == "user:li.na"))]
        assert actions == ["user.add", "user.passwd", "user.disable"]
    engine.dispose()
