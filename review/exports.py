"""Exports of the applications from the database (SPEC 9): JSON per the contract, CSV for Excel, and the
附件5 summary workbook. Rows are read in bulk (a handful of queries whatever the season's size).

The `paper` and `ack` sections of each application belong to other areas (the paper log, issue 5; the
acknowledgements, issue 6). They plug in with `register_section("paper", hook)`: a hook gets the session
and the application rows being exported and returns {application id: section}; applications it does
not mention get the placeholder of SECTION_DEFAULTS.
"""

from __future__ import annotations

import copy
import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, or_
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from parsers.types import Format, Kind
from review.checks import FORM_TYPE_LABEL, code_label
from review.model import ITEM_LABEL, ITEMS, DocView, MessageView
from review.status import MERGED, STATUS_LABEL, annotate, revoked_ids, waivers
from store.models import Application, Decision, DocumentRow, Message

SCHEMA_PATH = Path(__file__).with_name("export.schema.json")
FORM_TYPES = ("scenario", "model", "platform", "terminal")
_CHUNK = 900  # bound parameters per IN (): SQLite allows 999 in old builds

# -- reading -----------------------------------------------------------------------------------------------

_APP_COLUMNS = tuple(
    col(c)
    for c in (
        Application.id,
        Application.receipt_no,
        Application.form_type,
        Application.status,
        Application.org_name,
        Application.credit_code,
        Application.project_name,
        Application.district,
        Application.sender,
        Application.problems,
        Application.fields,
        Application.record,
        Application.first_received_at,
        Application.last_received_at,
        Application.merged_into,
    )
)
_DOC_COLUMNS = tuple(
    col(c)
    for c in (
        DocumentRow.id,
        DocumentRow.application_pk,
        DocumentRow.message_pk,
        DocumentRow.filename,
        DocumentRow.member_path,
        DocumentRow.kind,
        DocumentRow.format,
        DocumentRow.sha256,
        DocumentRow.size,
        DocumentRow.received_at,
    )
)
_MSG_COLUMNS = tuple(col(c) for c in (Message.id, Message.message_id, Message.from_addr, Message.subject))


@dataclass
class Snapshot:
    """Everything an export needs, read in bulk: applications (Core rows, receipt order), their documents
    (arrival order), the messages those came in, decisions, and the paper / ack sections."""

    apps: list[Any]
    docs: dict[int, list[Any]] = field(default_factory=dict)
    messages: dict[int, Any] = field(default_factory=dict)
    decisions: dict[int, list[Decision]] = field(default_factory=dict)
    sections: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    merged_receipts: dict[int, str] = field(default_factory=dict)


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield list(ids[i : i + _CHUNK])


def load(
    session: Session,
    *,
    receipts: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    form_types: Sequence[str] | None = None,
    include_merged: bool = False,
    documents: bool = True,
) -> Snapshot:
    """Read applications (merged ones only when asked) with all an export shows about them."""
    # Core rows, not ORM objects: building thousands of sqlmodel objects costs more than the query.
    q = core_select(*_APP_COLUMNS).order_by(col(Application.receipt_no))
    if statuses:
        q = q.where(col(Application.status).in_(list(statuses)))
    if form_types:
        q = q.where(col(Application.form_type).in_(list(form_types)))
    if not include_merged:
        q = q.where(col(Application.status) != MERGED)
    conn = session.connection()
    if receipts is None:
        apps = list(conn.execute(q).all())
    else:
        wanted_receipts = sorted(set(receipts))
        apps = [
            a
            for i in range(0, len(wanted_receipts), _CHUNK)
            for a in conn.execute(q.where(col(Application.receipt_no).in_(wanted_receipts[i : i + _CHUNK]))).all()
        ]
        apps.sort(key=lambda a: a.receipt_no)
    snap = Snapshot(apps=apps)
    ids = [a.id for a in apps]
    if not ids:
        return snap
    # Everything (the usual export) reads whole tables once; a selection reads by id.
    everything = receipts is None and not statuses and not form_types and include_merged is False
    if documents:
        dq = core_select(*_DOC_COLUMNS).order_by(col(DocumentRow.received_at).nulls_last(), col(DocumentRow.id))
        rows: list[Any] = []
        if everything:
            rows = list(conn.execute(dq.where(col(DocumentRow.application_pk).is_not(None))).all())
        else:
            for chunk in _chunks(ids):
                rows += conn.execute(dq.where(col(DocumentRow.application_pk).in_(chunk))).all()
            rows.sort(key=lambda r: (r.received_at is None, r.received_at or datetime.max, r.id))
        wanted = set(ids)
        for r in rows:
            if r.application_pk in wanted:
                snap.docs.setdefault(r.application_pk, []).append(r)
        mids = sorted({r.message_pk for r in rows})
        mq = core_select(*_MSG_COLUMNS)
        if everything:
            found = list(conn.execute(mq).all())
        else:
            found = [m for chunk in _chunks(mids) for m in conn.execute(mq.where(col(Message.id).in_(chunk))).all()]
        snap.messages = {m.id: m for m in found}
    dq2 = select(Decision).order_by(col(Decision.created_at), col(Decision.id))
    decisions = (
        list(session.exec(dq2))
        if everything
        else [d for chunk in _chunks(ids) for d in session.exec(dq2.where(col(Decision.application_pk).in_(chunk)))]
    )
    for d in decisions:
        snap.decisions.setdefault(d.application_pk, []).append(d)
    merged_targets = sorted({a.merged_into for a in apps if a.merged_into})
    for chunk in _chunks(merged_targets):
        q2 = core_select(col(Application.id), col(Application.receipt_no)).where(col(Application.id).in_(chunk))
        snap.merged_receipts.update({r.id: r.receipt_no for r in conn.execute(q2)})
    live = [a for a in apps if a.status != MERGED]
    for name in SECTION_DEFAULTS:
        hook = _SECTION_HOOKS.get(name)
        snap.sections[name] = dict(hook(session, live)) if hook and live else {}
    return snap


# -- sections other areas fill in --------------------------------------------------------------------------

SectionHook = Callable[[Session, Sequence[Any]], Mapping[int, dict[str, Any]]]
SECTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "paper": {"status": "unknown", "entries": []},
    "ack": {"status": "unknown", "sent_at": None},
}
_SECTION_HOOKS: dict[str, SectionHook] = {}


def register_section(name: str, hook: SectionHook | None) -> None:
    """Let another area fill the `paper` or `ack` section of exported applications (None: placeholder)."""
    if name not in SECTION_DEFAULTS:
        raise ValueError(f"unknown export section {name!r}; one of {sorted(SECTION_DEFAULTS)}")
    if hook is None:
        _SECTION_HOOKS.pop(name, None)
    else:
        _SECTION_HOOKS[name] = hook


# -- one application as JSON ----------------------------------------------------------------------------------

_ITEMS_BY_KIND: dict[tuple[str, str], str | None] = {}


def item_of(kind: str, fmt: str) -> str | None:
    """Which part of an application a document is (review.model.DocView.item, the one definition)."""
    key = (kind, fmt)
    if key not in _ITEMS_BY_KIND:
        try:
            probe = DocView(0, _PROBE_MESSAGE, Kind(kind), Format(fmt), "", "", {}, "", None)
            _ITEMS_BY_KIND[key] = probe.item
        except ValueError:
            _ITEMS_BY_KIND[key] = None
    return _ITEMS_BY_KIND[key]


_PROBE_MESSAGE = MessageView(0, "", None, (), "", None, None, None)


def iso(dt: datetime | None, tz: tzinfo) -> str | None:
    return dt.astimezone(tz).isoformat() if dt is not None else None


def has_late(problems: Iterable[Mapping[str, Any]]) -> bool:
    return any(p.get("code") == "late" for p in problems)


def application_json(snap: Snapshot, app: Any, tz: tzinfo) -> dict[str, Any]:
    """One application of `intake export --format json` (SPEC 9), with extras after the contract keys."""
    decisions = snap.decisions.get(app.id, [])
    record = app.record or {}
    of_record = {int(i) for ids in record.values() for i in (ids or [])}
    docs_out: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for d in snap.docs.get(app.id, []):
        item = item_of(d.kind, d.format)
        if item:
            counts[item] = counts.get(item, 0) + 1
        msg = snap.messages.get(d.message_pk)
        docs_out.append(
            {
                "filename": d.filename,
                "kind": d.kind,
                "format": d.format,
                "sha256": d.sha256,
                "message_id": msg.message_id if msg is not None else None,
                "received_at": iso(d.received_at, tz),
                "id": d.id,
                "member_path": d.member_path or "",
                "size": d.size,
                "item": item,
                "version": counts[item] if item else None,
                "of_record": d.id in of_record,
            }
        )
    gone = revoked_ids(decisions)
    in_force = waivers(decisions)
    out: dict[str, Any] = {
        "receipt_no": app.receipt_no,
        "form_type": app.form_type,
        "status": app.status,
        "org_name": app.org_name,
        "credit_code": app.credit_code,
        "project_name": app.project_name,
        "received_at": iso(app.first_received_at, tz),
        # The fact (a required item came after the cutoff); whether staff accepted it is late_accepted.
        "late": has_late(app.problems),
        "fields": app.fields or {},
        "documents": docs_out,
        "problems": annotate(app.problems, decisions, tz),
        "paper": copy.deepcopy(snap.sections.get("paper", {}).get(app.id, SECTION_DEFAULTS["paper"])),
        "ack": copy.deepcopy(snap.sections.get("ack", {}).get(app.id, SECTION_DEFAULTS["ack"])),
        "late_accepted": has_late(app.problems) and "late" in in_force,
        "district": app.district,
        "sender": app.sender,
        "last_received_at": iso(app.last_received_at, tz),
        "versions": {item: counts.get(item, 0) for item in ITEMS},
        "decisions": [
            {
                "id": d.id,
                "action": d.action,
                "problem_code": d.problem_code,
                "reason": d.reason,
                "user": d.user,
                "at": iso(d.created_at, tz),
                "revokes": d.revokes,
                "revoked": d.id in gone,
            }
            for d in decisions
        ],
    }
    if app.status == MERGED:
        out["merged_into"] = snap.merged_receipts.get(app.merged_into)
    return out


def export_json(session: Session, cfg: Any, **filters: Any) -> list[dict[str, Any]]:
    """`intake export --format json`: every application (not merged ones), receipt order."""
    snap = load(session, **filters)
    tz = cfg.call.tz
    return [application_json(snap, a, tz) for a in snap.apps]


# -- tables for people (CSV, xlsx) ----------------------------------------------------------------------------

# Where the 附件5 description (100 字左右) comes from, per direction, in order of preference.
DESCRIPTION_KEYS = {
    "scenario": ("background", "implementation"),
    "model": ("overview", "innovation"),
    "platform": ("overview", "platform_intro"),
    "terminal": ("product_summary", "overview"),
}
DIRECTION_KEYS = {
    "scenario": ("scenario_type",),
    "model": ("product_type",),
    "platform": ("service_domains", "platform_domain"),
}
_SENTENCE_END = re.compile(r"[。；！？;!?]")


def text(value: Any) -> str:
    """A field value as one line of text: lists joined with 、, objects as key value pairs."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "、".join(text(v) for v in value if v not in (None, ""))
    if isinstance(value, dict):
        return "、".join(f"{k} {text(v)}" for k, v in value.items())
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def short_description(fields: Mapping[str, Any], form_type: str, limit: int = 100) -> str:
    """About 100 characters from the form's first narrative section, ending at a sentence end if one
    falls in the last 40 % (the template asks for 100 字左右)."""
    body = ""
    for key in DESCRIPTION_KEYS.get(form_type, ()):
        body = text(fields.get(key))
        if body:
            break
    if len(body) <= limit + 10:
        return body
    cut = max((m.end() for m in _SENTENCE_END.finditer(body, 0, limit + 10)), default=0)
    if cut >= limit * 0.6:
        return body[:cut]
    return body[:limit] + "…"


def direction(fields: Mapping[str, Any], form_type: str) -> str:
    for key in DIRECTION_KEYS.get(form_type, ()):
        value = text(fields.get(key))
        if value:
            return value
    return ""


# The 附件5 tables: sheet name, direction, columns exactly as in the template (call-notice.md).
SUMMARY_SHEETS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("典型应用场景", "scenario",
     ("序号", "所在区/单位", "申报单位名称", "场景名称", "场景方向", "场景描述 (100 字左右)", "联系人", "联系方式")),
    ("模型和智能体", "model",
     ("序号", "所在区/单位", "申报单位名称", "产品名称", "产品类型", "产品描述 (100 字左右)", "联系人", "联系方式")),
    ("公共服务平台", "platform",
     ("序号", "所在区/单位", "申报单位名称", "平台名称", "服务领域", "平台项目描述 (100 字左右)", "联系人",
      "联系方式")),
    ("智能终端产品", "terminal",
     ("序号", "所在区/单位", "申报单位名称", "产品名称", "产品描述 (100 字左右)", "联系人", "联系方式")),
)  # fmt: skip
_SUMMARY_WIDTHS = {
    "序号": 6, "所在区/单位": 14, "申报单位名称": 32, "联系人": 10, "联系方式": 16,
    "场景名称": 36, "产品名称": 36, "平台名称": 36, "场景方向": 16, "产品类型": 16, "服务领域": 24,
}  # fmt: skip
_DESCRIPTION_WIDTH = 60

ALL_SHEET = "全部申报"
ALL_COLUMNS: tuple[tuple[str, int], ...] = (
    ("受理编号", 16), ("申报方向", 14), ("状态", 10), ("所在区", 12), ("申报单位", 32), ("统一社会信用代码", 22),
    ("项目名称", 36), ("联系人", 10), ("联系电话", 16), ("发件人", 26), ("首次收到时间", 20), ("逾期", 12),
    ("材料", 28), ("待处理问题", 70), ("已豁免问题", 50),
)  # fmt: skip


def summary_row(seq: int, app: Any, form_type: str) -> list[Any]:
    f = app.fields or {}
    row: list[Any] = [seq, app.district or "", app.org_name or text(f.get("org_name")), app.project_name or ""]
    if form_type != "terminal":
        row.append(direction(f, form_type))
    row += [short_description(f, form_type), text(f.get("contact_name")), text(f.get("contact_phone"))]
    return row


def _local(dt: datetime | None, tz: tzinfo) -> datetime | None:
    # Spreadsheets have no time zones: the local wall-clock time, as staff read it.
    return dt.astimezone(tz).replace(tzinfo=None) if dt is not None else None


def all_row(snap: Snapshot, app: Any, tz: tzinfo) -> list[Any]:
    """One application in the 全部申报 sheet / the CSV: key columns, what is missing, what was waived."""
    f = app.fields or {}
    decisions = snap.decisions.get(app.id, [])
    in_force = waivers(decisions)
    open_, waived = [], []
    for p in app.problems:
        code = str(p.get("code"))
        line = f"{code_label(code)}：{p.get('detail', '')}"
        w = in_force.get(code)
        if w is None:
            open_.append(("【错误】" if p.get("severity") == "error" else "【提示】") + line)
        else:
            waived.append(f"{line}（{w.by} 豁免：{w.reason}）")
    counts: dict[str, int] = {}
    for d in snap.docs.get(app.id, []):
        item = item_of(d.kind, d.format)
        if item:
            counts[item] = counts.get(item, 0) + 1
    items = "、".join(f"{ITEM_LABEL[i]}{'×' + str(counts[i]) if counts[i] > 1 else ''}" for i in ITEMS if i in counts)
    late = has_late(app.problems)
    return [
        app.receipt_no,
        FORM_TYPE_LABEL.get(app.form_type, app.form_type),
        STATUS_LABEL.get(app.status, app.status),
        app.district or "",
        app.org_name or "",
        app.credit_code or "",
        app.project_name or "",
        text(f.get("contact_name")),
        text(f.get("contact_phone")),
        app.sender or "",
        _local(app.first_received_at, tz),
        ("是（已同意受理）" if "late" in in_force else "是") if late else "否",
        items,
        "\n".join(open_),
        "\n".join(waived),
    ]


# Applicants write the names, descriptions and contacts exported here. A spreadsheet program takes a cell
# beginning with one of these for a formula (=HYPERLINK(...) sending other rows to a web site, DDE commands).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# ... except a plain number or phone number ("+86 027-85317173", "-3"), which cannot call anything.
_NUMBERLIKE = re.compile(r"[+-]?[0-9][0-9 ()./:+-]*")


def csv_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as the text it is: a leading apostrophe before a would-be formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBERLIKE.fullmatch(value):
        return "'" + value
    return value


def export_csv(session: Session, cfg: Any, **filters: Any) -> bytes:
    """One row per application with Chinese headings, as UTF-8 with a BOM (Excel reads the Chinese
    right only with it)."""
    snap = load(session, **filters)
    tz = cfg.call.tz
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([h for h, _ in ALL_COLUMNS])
    for a in snap.apps:
        row = all_row(snap, a, tz)
        w.writerow([csv_safe(v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else v) for v in row])
    return buf.getvalue().encode("utf-8-sig")


def export_xlsx(session: Session, cfg: Any, target: str | Path | IO[bytes], **filters: Any) -> int:
    """The 附件5 summary workbook: one sheet per table with the template's columns, then 全部申报 with
    receipt, status and problems. Streams rows (openpyxl write-only). Returns the applications written."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    snap = load(session, **filters)
    tz = cfg.call.tz
    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    wrap = Alignment(wrap_text=True, vertical="top")

    def sheet(title: str, headings: Sequence[str], widths: Sequence[float], rows: Iterable[list[Any]],
              wrapped: Sequence[int] = ()) -> None:  # fmt: skip
        ws = wb.create_sheet(title)
        for i, width in enumerate(widths, 1):
            ws.column_dimensions[get_column_letter(i)].width = width
        ws.freeze_panes = "A2"
        header = []
        for h in headings:
            c = WriteOnlyCell(ws, value=h)
            c.font, c.fill = bold, fill
            header.append(c)
        ws.append(header)
        n = 0
        for row in rows:
            for i, value in enumerate(row):
                wrapped_text = i in wrapped and bool(value)
                # openpyxl stores a string beginning with "=" as a formula: typed as text, an applicant's
                # "=HYPERLINK(…)" stays what they wrote instead of running on a staff member's computer.
                formula_like = isinstance(value, str) and value.startswith("=")
                if wrapped_text or formula_like:
                    cell = WriteOnlyCell(ws, value=value)
                    if formula_like:
                        cell.data_type = "s"
                    if wrapped_text:
                        cell.alignment = wrap
                    row[i] = cell
            ws.append(row)
            n += 1
        ws.auto_filter.ref = f"A1:{get_column_letter(len(headings))}{n + 1}"

    by_type: dict[str, list[Any]] = {t: [] for t in FORM_TYPES}
    for a in snap.apps:
        by_type.setdefault(a.form_type, []).append(a)
    for title, form_type, headings in SUMMARY_SHEETS:
        widths = [_SUMMARY_WIDTHS.get(h, _DESCRIPTION_WIDTH) for h in headings]
        desc = next(i for i, h in enumerate(headings) if "描述" in h)
        sheet(
            title,
            headings,
            widths,
            (summary_row(i, a, form_type) for i, a in enumerate(by_type.get(form_type, []), 1)),
            wrapped=(desc,),
        )
    problems_col = [h for h, _ in ALL_COLUMNS].index("待处理问题")
    sheet(
        ALL_SHEET,
        [h for h, _ in ALL_COLUMNS],
        [w for _, w in ALL_COLUMNS],
        (all_row(snap, a, tz) for a in snap.apps),
        wrapped=(problems_col, problems_col + 1),
    )
    wb.save(target)
    return len(snap.apps)


# -- filters for `intake applications` ----------------------------------------------------------------------


def search_ids(session: Session, needle: str, app_ids: Sequence[int]) -> set[int]:
    """Applications (among app_ids) one of whose documents' extracted text contains `needle`."""
    found: set[int] = set()
    # LIKE patterns: escape the wildcards a user types literally; lower() on both sides (SQLite's LIKE
    # folds ASCII only, PostgreSQL's not at all).
    escaped = needle.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    for chunk in _chunks(list(app_ids)):
        q = (
            core_select(col(DocumentRow.application_pk))
            .where(col(DocumentRow.application_pk).in_(chunk))
            .where(
                or_(
                    func.lower(DocumentRow.text).like(pattern, escape="\\"),
                    func.lower(DocumentRow.filename).like(pattern, escape="\\"),
                )
            )
            .distinct()
        )
        found |= {a for (a,) in session.connection().execute(q) if a is not None}
    return found


def matches_text(app: Any, needle: str) -> bool:
    """The needle in the receipt, org, project, credit code, contacts or sender (case-insensitive)."""
    f = app.fields or {}
    hay = [
        app.receipt_no, app.org_name, app.project_name, app.credit_code, app.sender, app.district,
        f.get("contact_name"), f.get("contact_phone"), f.get("leader_name"), f.get("leader_phone"),
        f.get("applicant"), text(f.get("joint_applicants")),
    ]  # fmt: skip
    n = needle.casefold()
    return any(n in str(h).casefold() for h in hay if h)
