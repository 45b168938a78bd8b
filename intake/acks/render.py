"""What an acknowledgement says: the facts read from the store, Jinja2 templates, and the MIME message."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from sqlmodel import Session, col, select

from intake.config import Config
from parsers.schema import FieldSpec, load_schema
from parsers.types import Kind
from store.models import Application, AttachmentRow, DocumentRow, Message

BUILTIN_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
TEMPLATE_FILES = {"receipt": "receipt.txt.j2", "question": "question.txt.j2", "limit_notice": "limit_notice.txt.j2"}


class RenderError(Exception):
    """A template could not be loaded or rendered (the message names the template and the line)."""


# SPEC 2 kinds as an applicant reads them.
FORM_LABEL = {
    "scenario": "附件1 典型应用场景",
    "model": "附件2 行业模型和智能体",
    "platform": "附件3 公共服务平台",
    "terminal": "附件4 智能终端产品",
}
KIND_LABEL = {
    "summary": "汇总表（附件5）",
    "recommendation": "推荐意见",
    "commitment": "承诺书",
    "license": "营业执照（法人证书）复印件",
    "evidence": "证明材料",
    "other": "其他",
}
_FORMAT_SUFFIX = {"docx": "Word 版", "doc": "Word 版", "pdf_text": "PDF 版", "pdf_scan": "PDF 扫描件", "image": "图片"}
# The direction an application was filed in: the form, and the choice ticked in it.
_DIRECTION = {
    "scenario": ("典型应用场景", "scenario_type"),
    "model": ("行业模型和智能体", "product_type"),
    "platform": ("公共服务平台", "service_domains"),
    "terminal": ("智能终端产品", None),
}
STATUS_LABEL = {
    "complete": "材料齐全（自动检查未发现问题）",
    "incomplete": "材料不全或有误，请按下列提示补正",
    "late": "逾期（在截止时间之后收到）",
}

# SPEC 4 codes in words for the applicant: what is wrong and what to do. `{detail}` is the check's own
# (Chinese) detail with the staff-only parts removed, `{label}` the field's label in the form.
PROBLEM_TEXT = {
    "late": "材料在截止时间（{deadline}）之后收到。按通知要求，逾期材料不予受理；如有异议请联系工作人员。",
    "late_revision": "截止时间后又收到了新版本材料，按规定以截止前收到的版本为准。",
    "missing_word": "缺少申报书 Word 版（.docx 或 .doc 文件）。",
    "missing_pdf": "缺少申报书 PDF 盖章扫描件（签字盖章后扫描的 PDF）。",
    "missing_commitment": "缺少承诺书（签字盖章，可单独发送，也可附在 PDF 扫描件中）。",
    "missing_license": "缺少营业执照副本复印件（事业单位请提供事业单位法人证书）。",
    "missing_evidence": "未发现证明材料（专利、软著、获奖、检测报告、运行证明等），如有请补充。",
    "missing_field": "申报书中“{label}”一栏未填写。",
    "invalid_credit_code": "统一社会信用代码“{credit_code}”未通过校验，请核对是否填写有误。",
    "invalid_phone": "电话号码可能有误，请核对：{detail}。",
    "too_many_joint_applicants": "联合申报单位超过 3 家（通知要求同一项目最多 3 家单位联合申报）。",
    "summary_too_long": "产品简介超过 300 字，请精简。",
    "word_pdf_mismatch": "Word 版与 PDF 版内容不一致，请确认两者为同一版本：{detail}。",
    "no_seal": "PDF 扫描件上未识别到公章，请确认已盖章后扫描。",
    "duplicate_direction": "同一项目同时申报了多个方向，通知要求原则上不得重复申报，请确认保留的方向：{detail}。",
    "cloud_attachment": "邮件中含云附件（超大附件）链接，链接会过期，工作人员可能无法下载，请将文件直接作为附件发送。",
    "unreadable_attachment": "文件无法打开或读取：{detail}。请检查文件是否损坏或加密后重新发送。",
    "not_in_summary": "所在区（单位）的汇总表中暂未列出本项目，请与所在区主管部门联系。",
    "paper_copies_short": "纸质申报书份数不足（需一式二份）。",
    "paper_missing": "截止时间前未登记收到您的纸质材料（{paper_copies}）。",
}
# Not shown to applicants: check_failed is for staff; paper_missing before the deadline (a warning) is what
# the paper reminder of every receipt says anyway.
HIDDEN_CODES = frozenset({"check_failed"})
HIDDEN_WARNINGS = frozenset({"paper_missing"})
GENERIC_ERROR = "材料存在问题，工作人员将与您联系：{detail}。"


@dataclass
class FileLine:
    name: str
    kind: str
    note: str = ""
    # 0 for a file attached to the email (numbered), 1 for a file inside an attached archive.
    depth: int = 0
    number: int = 0


@dataclass
class AppInfo:
    receipt_no: str
    form: str
    org_name: str
    project_name: str
    direction: str
    status: str
    status_code: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def local_time(dt: datetime | None, config: Config) -> str:
    if dt is None:
        return "（时间未知）"
    return dt.astimezone(config.call.tz).strftime("%Y-%m-%d %H:%M")


def deadline_text(config: Config) -> str:
    d = config.call.deadline.astimezone(config.call.tz)
    return f"{d.year}年{d.month}月{d.day}日{d.hour:02d}:{d.minute:02d}"


def kind_label(kind: str, fmt: str, has_commitment_page: bool = False) -> str:
    """How a document was recognised, in the applicant's words: 申报书（附件1 典型应用场景）Word 版, 承诺书, …"""
    try:
        form_type = Kind(kind).form_type
    except ValueError:
        form_type = None
    if form_type:
        text = f"申报书（{FORM_LABEL.get(form_type, form_type)}）"
        suffix = _FORMAT_SUFFIX.get(fmt)
        if suffix:
            text += suffix
        if has_commitment_page:
            text += "，含承诺书页"
        return text
    if fmt == "archive":
        return "压缩包"
    return KIND_LABEL.get(kind, "其他")


def direction_of(form_type: str, fields: dict[str, Any]) -> str:
    base, key = _DIRECTION.get(form_type, (FORM_LABEL.get(form_type, form_type), None))
    value = fields.get(key) if key else None
    if isinstance(value, list):
        value = "、".join(str(v) for v in value if str(v).strip())
    value = str(value).strip() if value else ""
    return f"{base}（{value}）" if value else base


def _field_label(spec: FieldSpec) -> str:
    # 职务 / 电话 appear on several rows: name the row's person (负责人职务, 联系人电话).
    if spec.row:
        person = spec.row[0].removesuffix("姓名")
        if not spec.label.startswith(person):
            return person + spec.label
    return spec.label


def field_label(form_type: str, key: str) -> str | None:
    try:
        return _field_label(load_schema(Kind(f"form_{form_type}")).field(key))
    except (KeyError, ValueError):
        return None


# Staff-only parts of a check's detail: the field key in brackets, the OCR caution, instructions to staff.
_KEY_REF = re.compile(r"[（(]([a-z][a-z0-9_]*)[)）]")
_OCR_NOTE = re.compile(r"（取自扫描件[^）]*）")
_STAFF_TAIL = re.compile(r"[；;，,]?\s*(请在链接过期前下载并存档|可人工核实后豁免)[^；;。]*")


def applicant_detail(detail: str) -> str:
    text = _OCR_NOTE.sub("", detail or "")
    text = _KEY_REF.sub("", text)
    text = _STAFF_TAIL.sub("", text)
    return " ".join(text.split()).rstrip("。；;，, ")


def problem_sentence(problem: dict[str, Any], app: Application, config: Config) -> str | None:
    """One SPEC 4 problem as a sentence an applicant understands (None: not for applicants)."""
    code = str(problem.get("code") or "")
    if code in HIDDEN_CODES or (code in HIDDEN_WARNINGS and problem.get("severity") != "error"):
        return None
    detail = str(problem.get("detail") or "")
    values = {
        "detail": applicant_detail(detail),
        "deadline": deadline_text(config),
        "label": "",
        "credit_code": "",
        "paper_copies": config.ack.paper_copies,
    }
    if code == "missing_field":
        keys = [k for k in _KEY_REF.findall(detail) if field_label(app.form_type, k)]
        label = field_label(app.form_type, keys[0]) if keys else None
        if label is None:
            # The detail names the field in words ("必填项为空：联系人电话").
            label = values["detail"].split("：", 1)[-1] or "必填项"
        values["label"] = label
    if code == "invalid_credit_code":
        values["credit_code"] = app.credit_code or str((app.fields or {}).get("credit_code") or "")
    template = PROBLEM_TEXT.get(code)
    if template is None:
        template = GENERIC_ERROR if problem.get("severity") == "error" else "请核对：{detail}。"
    text = template.format(**values)
    return text.replace("：。", "。")


@dataclass
class AckFacts:
    """Everything a template may show, read from the store for one received message."""

    received_at: str
    subject: str
    sender_name: str
    files: list[FileLine]
    applications: list[AppInfo]
    unassigned: list[str]
    cloud_links: list[dict[str, str]]
    late: bool
    receipt_nos: list[str]


def _living(session: Session, app: Application) -> Application:
    """Follow merges: an application joined into another one is acknowledged under the one that lives on."""
    seen = set()
    while app.merged_into is not None and app.merged_into not in seen:
        seen.add(app.merged_into)
        nxt = session.get(Application, app.merged_into)
        if nxt is None:
            break
        app = nxt
    return app


def gather(session: Session, config: Config, msg: Message) -> AckFacts:
    """The facts of one message's acknowledgement: its files, its applications and what they lack."""
    docs = list(
        session.exec(
            select(DocumentRow)
            .where(DocumentRow.message_pk == msg.id)
            .order_by(col(DocumentRow.seq), col(DocumentRow.id))
        )
    )
    files: list[FileLine] = []
    unassigned: list[str] = []
    app_ids: list[int] = []
    for d in docs:
        name = (d.member_path or d.filename) if d.parent_pk is not None else d.filename
        note = ""
        bad = [p for p in d.problems if p.get("code") == "unreadable_attachment"]
        if bad:
            note = "无法打开：" + applicant_detail(str(bad[0].get("detail") or "")).removeprefix(f"{d.filename}：")
        depth = 1 if d.parent_pk is not None else 0
        number = 0 if depth else sum(1 for f in files if not f.depth) + 1
        kind = kind_label(d.kind, d.format, d.has_commitment_page)
        files.append(FileLine(name=name, kind=kind, note=note, depth=depth, number=number))
        if d.application_pk is not None:
            if d.application_pk not in app_ids:
                app_ids.append(d.application_pk)
        elif d.kind in ("commitment", "license", "evidence") or d.kind.startswith("form_"):
            unassigned.append(name)
    if not docs:
        # Documents not read (yet): list the attachments themselves, unrecognised.
        for att in session.exec(
            select(AttachmentRow).where(AttachmentRow.message_pk == msg.id).order_by(col(AttachmentRow.seq))
        ):
            files.append(FileLine(name=att.filename, kind="（尚未识别）", number=len(files) + 1))
    apps: list[Application] = []
    for aid in app_ids:
        row = session.get(Application, aid)
        if row is None:
            continue
        row = _living(session, row)
        if all(a.id != row.id for a in apps):
            apps.append(row)
    apps.sort(key=lambda a: a.receipt_no)
    cutoff = config.call.deadline + config.call.grace_period
    late = any(a.status == "late" for a in apps) or (msg.received_at is not None and msg.received_at >= cutoff)
    infos: list[AppInfo] = []
    for a in apps:
        errors: list[str] = []
        warnings: list[str] = []
        for p in a.problems or []:
            if late and p.get("code") == "late":
                continue  # the late notice below says it once, for the whole email
            text = problem_sentence(p, a, config)
            if text is None:
                continue
            target = errors if p.get("severity") == "error" else warnings
            if text not in target:
                target.append(text)
        infos.append(
            AppInfo(
                receipt_no=a.receipt_no,
                form=FORM_LABEL.get(a.form_type, a.form_type),
                org_name=a.org_name or "",
                project_name=a.project_name or "",
                direction=direction_of(a.form_type, a.fields or {}),
                status=STATUS_LABEL.get(a.status, a.status),
                status_code=a.status,
                errors=errors,
                warnings=warnings,
            )
        )
    links = [
        {
            "name": str(c.get("filename") or "（未注明文件名）"),
            "url": str(c.get("url") or ""),
            "expires": str(c.get("expires_text") or ""),
        }
        for c in msg.cloud_links or []
    ]
    return AckFacts(
        received_at=local_time(msg.received_at, config),
        subject=clean_subject(msg.subject or "") or "（无主题）",
        sender_name=clean_subject(msg.from_name or ""),
        files=files,
        applications=infos,
        unassigned=unassigned,
        cloud_links=links,
        late=late,
        receipt_nos=[a.receipt_no for a in apps],
    )


def template_context(config: Config, facts: AckFacts | None, **extra: Any) -> dict[str, Any]:
    ack = config.ack
    ctx: dict[str, Any] = {
        "call_name": config.call.name,
        "notice_title": ack.notice_title,
        "deadline": deadline_text(config),
        "mailbox": config.smtp.from_,
        "contacts": list(ack.contacts),
        "paper_address": ack.paper_address,
        "paper_copies": ack.paper_copies,
        "rate_limit": ack.rate_limit,
        "rate_window_hours": round(ack.rate_window.total_seconds() / 3600),
    }
    if facts is not None:
        ctx.update(
            received_at=facts.received_at,
            subject=facts.subject,
            sender_name=facts.sender_name,
            files=facts.files,
            applications=facts.applications,
            unassigned=facts.unassigned,
            cloud_links=facts.cloud_links,
            late=facts.late,
            receipt_nos=facts.receipt_nos,
        )
    ctx.update(extra)
    return ctx


@cache
def _environment(templates_dir: str) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir:
        loaders.append(jinja2.FileSystemLoader(templates_dir, encoding="utf-8"))
    loaders.append(jinja2.FileSystemLoader(str(BUILTIN_TEMPLATES), encoding="utf-8"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        # Plain text: no HTML escaping; a misspelt variable is an error, not an empty string.
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def templates_dir(config: Config) -> str:
    d = config.ack.templates_dir
    if not d:
        return ""
    p = Path(d)
    if not p.is_absolute():
        p = Path(config.base_dir) / p
    return str(p)


def render_body(config: Config, kind: str, context: dict[str, Any]) -> str:
    """The body text of an acknowledgement of `kind` (receipt, question, limit_notice)."""
    name = TEMPLATE_FILES[kind]
    try:
        template = _environment(templates_dir(config)).get_template(name)
        text = template.render(**context)
    except jinja2.TemplateError as e:
        where = f"{getattr(e, 'filename', None) or name}"
        line = getattr(e, "lineno", None)
        raise RenderError(f"template {where}{f' line {line}' if line else ''}: {e}") from e
    # Collapse runs of blank lines left by optional sections.
    text = re.sub(r"\n{3,}", "\n\n", text.replace("\r\n", "\n"))
    return text.strip() + "\n"


# Header injection and display junk: every control character (CR, LF, TAB, NUL, …) and Unicode line
# separators become a space.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def clean_subject(text: str, limit: int = 150) -> str:
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_MSG_ID = re.compile(r"^<[!-;=?-~]+@[!-;=?-~]+>$")


def valid_msg_id(value: str | None) -> str | None:
    """A Message-ID fit to be echoed in In-Reply-To / References (printable ASCII, one @, angle brackets)."""
    if not value:
        return None
    value = value.strip()
    return value if _MSG_ID.match(value) else None


@dataclass(frozen=True)
class Envelope:
    """Who the acknowledgement goes to and what it answers."""

    recipient: str
    original_subject: str
    original_message_id: str | None
    original_references: tuple[str, ...] = ()


def compose(config: Config, env: Envelope, body: str, ack_message_id: str, now: datetime) -> tuple[str, bytes]:
    """(subject, the exact bytes to hand to the SMTP server): UTF-8 body, RFC 2047 headers, CRLF."""
    ack = config.ack
    subject = ack.subject_prefix + (clean_subject(env.original_subject) or "（无主题）")
    m = EmailMessage(policy=SMTP)
    # Date first: the sender refreshes it at sending time (see with_date).
    m["Date"] = format_datetime(now.astimezone(config.call.tz))
    local, _, domain = config.smtp.from_.partition("@")
    m["From"] = Address(display_name=clean_subject(ack.from_name or config.call.name), username=local, domain=domain)
    rlocal, _, rdomain = env.recipient.partition("@")
    m["To"] = Address(username=rlocal, domain=rdomain)
    m["Subject"] = subject
    m["Message-ID"] = ack_message_id
    original = valid_msg_id(env.original_message_id)
    if original:
        m["In-Reply-To"] = original
        refs = [r for r in (valid_msg_id(x) for x in env.original_references) if r and r != original]
        # RFC 5322 3.6.4: the parent's References plus the parent; the oldest and newest few suffice.
        if len(refs) > 8:
            refs = refs[:1] + refs[-7:]
        m["References"] = " ".join([*refs, original])
    # RFC 3834: an automatic reply; Exchange/Outlook: do not answer it with out-of-office replies.
    m["Auto-Submitted"] = "auto-replied"
    m["X-Auto-Response-Suppress"] = "All"
    m.set_content(body, charset="utf-8", cte="base64")
    return subject, m.as_bytes()


_DATE_LINE = re.compile(rb"\ADate: [^\r\n]*\r\n")


def with_date(raw: bytes, now: datetime, config: Config) -> bytes:
    """The same message with its Date header set to `now` (it is composed when queued, sent later)."""
    line = b"Date: " + format_datetime(now.astimezone(config.call.tz)).encode("ascii") + b"\r\n"
    new, n = _DATE_LINE.subn(line, raw, count=1)
    return new if n else raw
