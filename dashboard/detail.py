"""Everything the application page shows, gathered in a handful of queries."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from email.policy import default as default_policy
from typing import Any

from sqlmodel import Session, col, select

from review import exports
from review.model import ITEMS
from store.acks_models import AckOutbox
from store.models import Application, AuditEvent, Decision, DocumentRow, Message

# Problems that concern one field, beyond those whose detail names the key "（key）".
FIELD_OF_CODE = {
    "invalid_credit_code": ("credit_code",),
    "too_many_joint_applicants": ("joint_applicants",),
    "summary_too_long": ("product_summary",),
}
_KEY_IN_DETAIL = re.compile(r"（([a-z][a-z0-9_]*)）")
PREVIEWABLE = ("pdf_text", "pdf_scan", "image")
COMPARED = (
    ("单位名称", ("org_name", "applicant")),
    ("统一社会信用代码", ("credit_code",)),
    ("项目名称", ("project_name",)),
)


@dataclass
class FieldRow:
    key: str
    label: str
    value: str
    required: bool
    problems: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AckView:
    row: AckOutbox
    headers: list[tuple[str, str]]
    body: str
    source: str


def field_keys(problem: dict[str, Any]) -> list[str]:
    keys = list(FIELD_OF_CODE.get(str(problem.get("code")), ()))
    keys += _KEY_IN_DETAIL.findall(str(problem.get("detail") or ""))
    return keys


def _value(v: Any) -> str:
    if v in (None, "", [], {}):
        return ""
    return exports.text(v) if not isinstance(v, str) else v.strip()


def field_groups(
    form_type: str, fields: dict[str, Any], problems: list[dict[str, Any]]
) -> tuple[list[tuple[str, list[FieldRow]]], list[dict[str, Any]]]:
    """The form's fields under the template's headings, each with the problems about it; and the
    problems that concern no single field."""
    from intake.commands.applications import template_groups
    from review.checks._common import field_label

    try:
        groups = template_groups(form_type)
    except (KeyError, ValueError):
        groups = []
    rows: dict[str, FieldRow] = {}
    out: list[tuple[str, list[FieldRow]]] = []
    for heading, specs in groups:
        items = []
        for spec in specs:
            if spec.key in rows:
                continue
            r = FieldRow(spec.key, field_label(spec), _value(fields.get(spec.key)), bool(spec.required))
            rows[spec.key] = r
            items.append(r)
        out.append((heading, items))
    extra = [FieldRow(k, k, _value(v), False) for k, v in fields.items() if k not in rows]
    if extra:
        out.append(("其他字段", extra))
        rows.update({r.key: r for r in extra})
    general: list[dict[str, Any]] = []
    for p in problems:
        placed = False
        for k in field_keys(p):
            if k in rows:
                rows[k].problems.append(p)
                placed = True
                break
        if not placed:
            general.append(p)
    return out, general


def comparison(s: Session, record: dict[str, Any]) -> list[tuple[str, str, str, bool]] | None:
    """Word of record vs PDF (scan) of record on org, credit code and project: (label, word, pdf, same)."""
    from review.names import credit_key, org_key, project_key

    word_ids, pdf_ids = record.get("word") or [], record.get("pdf") or []
    if not word_ids or not pdf_ids:
        return None
    docs = {
        d.id: d.fields or {}
        for d in s.exec(select(DocumentRow).where(col(DocumentRow.id).in_([word_ids[0], pdf_ids[0]])))
    }
    w, p = docs.get(word_ids[0], {}), docs.get(pdf_ids[0], {})
    keyfn = {"单位名称": org_key, "统一社会信用代码": credit_key, "项目名称": project_key}
    rows = []
    for label, keys in COMPARED:
        wv = next((_value(w.get(k)) for k in keys if _value(w.get(k))), "")
        pv = next((_value(p.get(k)) for k in keys if _value(p.get(k))), "")
        fn = keyfn[label]
        same = bool(wv and pv and (wv == pv or (fn(wv) is not None and fn(wv) == fn(pv))))
        rows.append((label, wv, pv, same))
    return rows


def acks_for(s: Session, message_ids: list[int]) -> list[AckView]:
    if not message_ids:
        return []
    out = []
    for row in s.exec(select(AckOutbox).where(col(AckOutbox.message_pk).in_(message_ids)).order_by(col(AckOutbox.id))):
        headers: list[tuple[str, str]] = []
        body = source = ""
        if row.raw:
            source = row.raw.decode("utf-8", errors="replace")
            msg = email.message_from_bytes(row.raw, policy=default_policy)
            for name in ("From", "To", "Subject", "Date", "Message-ID", "In-Reply-To", "Auto-Submitted"):
                if msg.get(name) is not None:
                    headers.append((name, str(msg.get(name))))
            part = msg.get_body(("plain",)) if hasattr(msg, "get_body") else None
            try:
                body = part.get_content() if part is not None else ""
            except (LookupError, ValueError):
                body = ""
        out.append(AckView(row, headers, body, source))
    return out


def audit_for(s: Session, targets: list[str]) -> list[AuditEvent]:
    return list(
        s.exec(
            select(AuditEvent)
            .where(col(AuditEvent.target).in_(targets))
            .order_by(col(AuditEvent.at), col(AuditEvent.id))
        )
    )


_APP = tuple(col(c) for c in (
    Application.id, Application.receipt_no, Application.form_type, Application.status, Application.org_name,
    Application.credit_code, Application.project_name, Application.district, Application.sender,
    Application.problems, Application.fields, Application.record, Application.first_received_at,
    Application.last_received_at, Application.merged_into,
))  # fmt: skip
_DOC = tuple(col(c) for c in (
    DocumentRow.id, DocumentRow.application_pk, DocumentRow.message_pk, DocumentRow.filename,
    DocumentRow.member_path, DocumentRow.kind, DocumentRow.format, DocumentRow.sha256, DocumentRow.size,
    DocumentRow.received_at,
))  # fmt: skip
_MSG = tuple(col(c) for c in (Message.id, Message.message_id, Message.from_addr, Message.subject))


def snapshot(s: Session, receipt: str) -> exports.Snapshot | None:
    """What review.exports.application_json needs for one application, read directly: exports.load would
    also run the export's paper section (a whole reconciliation) for this one page."""
    from sqlalchemy import select as sa_select

    conn = s.connection()
    app = conn.execute(sa_select(*_APP).where(col(Application.receipt_no) == receipt.strip())).first()
    if app is None:
        return None
    snap = exports.Snapshot(apps=[app])
    docs = list(
        conn.execute(
            sa_select(*_DOC)
            .where(col(DocumentRow.application_pk) == app.id)
            .order_by(col(DocumentRow.received_at).nulls_last(), col(DocumentRow.id))
        ).all()
    )
    snap.docs = {app.id: docs}
    mids = sorted({d.message_pk for d in docs})
    if mids:
        snap.messages = {m.id: m for m in conn.execute(sa_select(*_MSG).where(col(Message.id).in_(mids)))}
    snap.decisions = {
        app.id: list(
            s.exec(
                select(Decision)
                .where(Decision.application_pk == app.id)
                .order_by(col(Decision.created_at), col(Decision.id))
            )
        )
    }
    if app.merged_into:
        target = s.get(Application, app.merged_into)
        if target is not None:
            snap.merged_receipts = {app.merged_into: target.receipt_no}
    return snap


def load(s: Session, cfg: Any, receipt: str) -> dict[str, Any] | None:
    """The page's data, or None when there is no such application."""
    snap = snapshot(s, receipt)
    if snap is None:
        return None
    a = snap.apps[0]
    item = exports.application_json(snap, a, cfg.call.tz)
    docs = snap.docs.get(a.id, [])
    by_id = {d.id: d for d in docs}
    versions = []
    for it in ITEMS:
        vs = [d for d in item["documents"] if d["item"] == it]
        versions.append((it, [(d, by_id.get(d["id"])) for d in vs]))
    others = [(d, by_id.get(d["id"])) for d in item["documents"] if d["item"] is None]
    problems = item["problems"]
    groups, general = field_groups(a.form_type, a.fields or {}, problems)
    message_ids = sorted({d.message_pk for d in docs})
    messages = {m.id: m for m in s.exec(select(Message).where(col(Message.id).in_(message_ids)))} if message_ids else {}
    waived = {p["code"] for p in problems if p.get("waived")}
    open_codes = list(dict.fromkeys(p["code"] for p in problems if p["code"] not in waived))
    return {
        "app": a,
        "item": item,
        "versions": versions,
        "others": others,
        "groups": groups,
        "general": general,
        "comparison": comparison(s, a.record or {}),
        "acks": acks_for(s, message_ids),
        "messages": messages,
        "audit": audit_for(s, [f"application:{a.receipt_no}"]),
        "open_codes": open_codes,
        "previewable": PREVIEWABLE,
    }
