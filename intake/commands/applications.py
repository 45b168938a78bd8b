"""`intake applications`, `intake show`, `intake export`, `intake decide`: applications for staff (issue 4)."""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlmodel import Session, col, select

from intake.cli import REJECTED, USAGE, ConfigOpt, DbOpt, Fail, Fmt, SafeConsole, _context, app, err, out
from intake.config import Config

FORM_TYPES = ("scenario", "model", "platform", "terminal")
STATUSES = ("complete", "incomplete", "late")


class ExportFmt(StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


def _form_types(values: list[str] | None) -> list[str] | None:
    """scenario / model / platform / terminal, also written as form_scenario or S / M / P / T."""
    if not values:
        return None
    letters = {"s": "scenario", "m": "model", "p": "platform", "t": "terminal"}
    outv = []
    for v in values:
        t = v.strip().lower().removeprefix("form_")
        t = letters.get(t, t)
        if t not in FORM_TYPES:
            raise Fail(f"--form-type must be one of {', '.join(FORM_TYPES)} (got {v!r})", USAGE)
        outv.append(t)
    return outv


def _statuses(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    bad = [v for v in values if v not in STATUSES]
    if bad:
        raise Fail(f"--status must be one of {', '.join(STATUSES)} (got {', '.join(bad)})", USAGE)
    return list(values)


def _codes(values: list[str] | None) -> list[str] | None:
    from review.checks import PROBLEM_CODES

    if not values:
        return None
    bad = [v for v in values if v not in PROBLEM_CODES]
    if bad:
        raise Fail(f"unknown problem code {', '.join(bad)}; known: {', '.join(PROBLEM_CODES)}", USAGE)
    return list(values)


def _dump_json(data: Any) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _write_stdout(data: bytes) -> None:
    # Bytes, not text: the output is UTF-8 whatever the terminal's locale says.
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _write_file(path: Path, write: Any) -> None:
    """Write via a temporary file in the same folder, then rename: a reader never sees half a file."""
    path = path.expanduser()
    if path.parent and not path.parent.exists():
        raise Fail(f"{path}: folder does not exist", USAGE)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent or Path(".")))
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- intake applications -------------------------------------------------------------------------------


@app.command("applications")
def applications(
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    status: Annotated[
        list[str] | None, typer.Option("--status", "-s", help="complete, incomplete, late (repeatable).")
    ] = None,
    form_type: Annotated[
        list[str] | None,
        typer.Option("--form-type", "--kind", "-k", help="scenario, model, platform, terminal (repeatable)."),
    ] = None,
    problem: Annotated[
        list[str] | None, typer.Option("--problem", "-p", help="Only applications with this problem code.")
    ] = None,
    district: Annotated[str | None, typer.Option("--district", "-d", help="所在区, e.g. 江汉 or 江汉区.")] = None,
    search: Annotated[
        str | None,
        typer.Option(
            "--search", "-q", help="Text in receipt, org, project, credit code, contacts, sender or document text."
        ),
    ] = None,
    format: Annotated[Fmt, typer.Option("--format", "-f")] = Fmt.table,
) -> None:
    """The applications, filtered; --format json prints them as `intake export --format json` does."""
    from review import exports

    statuses, types, codes = _statuses(status), _form_types(form_type), _codes(problem)
    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        cfg = services.config
        snap = exports.load(s, statuses=statuses, form_types=types, documents=False)
        apps = snap.apps
        if codes:
            apps = [a for a in apps if {str(p.get("code")) for p in a.problems} & set(codes)]
        if district:
            d = district.strip()
            apps = [a for a in apps if a.district and (d in a.district or a.district in d)]
        if search:
            needle = search.strip()
            in_text = exports.search_ids(s, needle, [a.id for a in apps])
            apps = [a for a in apps if exports.matches_text(a, needle) or a.id in in_text]
        if format == Fmt.json:
            full = exports.load(s, receipts=[a.receipt_no for a in apps]) if apps else snap
            _write_stdout(_dump_json([exports.application_json(full, a, cfg.call.tz) for a in full.apps]))
            return
        _print_list(snap, apps, cfg)


def _print_list(snap: Any, apps: list[Any], cfg: Config) -> None:
    from review.checks import FORM_TYPE_LABEL
    from review.status import STATUS_LABEL, waivers

    t = Table(expand=False)
    for name, kw in (
        ("受理编号", {"no_wrap": True}),
        ("方向", {}),
        ("状态", {}),
        ("所在区", {}),
        ("申报单位", {"overflow": "fold", "min_width": 8}),
        ("项目名称", {"overflow": "fold", "min_width": 8}),
        ("首次收到", {}),
        ("问题", {"overflow": "fold", "min_width": 8}),
    ):
        t.add_column(name, **kw)
    for a in apps:
        waived = waivers(snap.decisions.get(a.id, []))
        open_codes = [str(p.get("code")) for p in a.problems if p.get("code") not in waived]
        problems = ", ".join(dict.fromkeys(open_codes))
        if waived:
            problems += f"{' ' if problems else ''}(已豁免 {len(waived)})"
        t.add_row(
            a.receipt_no,
            FORM_TYPE_LABEL.get(a.form_type, a.form_type),
            STATUS_LABEL.get(a.status, a.status),
            a.district or "",
            escape(a.org_name or ""),
            escape(a.project_name or ""),
            a.first_received_at.astimezone(cfg.call.tz).strftime("%m-%d %H:%M:%S") if a.first_received_at else "",
            problems,
        )
    # Piped into a file or a pager: no terminal width to fit, so do not squeeze the Chinese columns.
    (out if out.is_terminal else SafeConsole(width=240)).print(t)
    err.print(f"{len(apps)} application(s)", markup=False)


# -- intake show ---------------------------------------------------------------------------------------------


_HEADING = re.compile(r"^#\s*---\s*(.+?)\s*-{3,}\s*$")
_KEY = re.compile(r'^key\s*=\s*"([^"]+)"')


def template_groups(form_type: str) -> list[tuple[str, list[Any]]]:
    """The form's fields under the template's headings (封面, 一、单位基本情况, ...), as its schema file
    lays them out; by where they are printed when the file has no headings."""
    from parsers.schema import load_schema
    from parsers.types import Kind

    schema = load_schema(Kind(f"form_{form_type}"))
    heading_of: dict[str, str] = {}
    try:
        heading = "封面"
        for line in Path(schema.source).read_text(encoding="utf-8").splitlines():
            if m := _HEADING.match(line.strip()):
                heading = "封面" if m.group(1).lower().startswith("cover") else m.group(1)
            elif m := _KEY.match(line.strip()):
                heading_of[m.group(1)] = heading
    except OSError:
        heading_of = {}
    groups: dict[str, list[Any]] = {}
    for f in schema.fields:
        name = heading_of.get(f.key) or {"cover": "封面", "table": "基本情况", "section": "正文"}[f.where[0]]
        groups.setdefault(name, []).append(f)
    return list(groups.items())


def _value(v: Any) -> str:
    from review.exports import text

    return text(v) if not isinstance(v, str) else v.strip()


@app.command()
def show(
    receipt: Annotated[str, typer.Argument(help="Receipt number, e.g. AI2026-S-0007.")],
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    format: Annotated[Fmt, typer.Option("--format", "-f")] = Fmt.table,
) -> None:
    """Everything about one application: fields, documents and versions, problems, decisions, paper, ack."""
    from review import exports
    from store.models import AuditEvent

    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        cfg = services.config
        snap = exports.load(s, receipts=[receipt.strip()], include_merged=True)
        if not snap.apps:
            raise Fail(f"no application with receipt number {receipt!r}", REJECTED)
        a = snap.apps[0]
        item = exports.application_json(snap, a, cfg.call.tz)
        events = list(
            s.exec(
                select(AuditEvent)
                .where(AuditEvent.target == f"application:{a.receipt_no}")
                .order_by(col(AuditEvent.at), col(AuditEvent.id))
            )
        )
        item["audit"] = [
            {"at": e.at.astimezone(cfg.call.tz).isoformat(), "user": e.user, "action": e.action, "detail": e.detail}
            for e in events
        ]
    if format == Fmt.json:
        _write_stdout(_dump_json(item))
        return
    _print_application(item, cfg)


def _print_application(item: dict[str, Any], cfg: Config) -> None:
    from review.checks import FORM_TYPE_LABEL, code_label
    from review.checks._common import field_label
    from review.model import ITEM_LABEL, ITEMS
    from review.status import STATUS_LABEL

    def p(text: str = "") -> None:
        out.print(text, markup=False, highlight=False, soft_wrap=True)

    def t(iso: str | None) -> str:
        if not iso:
            return "未知"
        dt = datetime.fromisoformat(iso)
        ms = f".{dt.microsecond // 1000:03d}" if dt.microsecond else ""
        return dt.strftime("%Y-%m-%d %H:%M:%S") + ms

    p(f"{item['receipt_no']}  {FORM_TYPE_LABEL.get(item['form_type'], item['form_type'])}  "
      f"状态：{STATUS_LABEL.get(item['status'], item['status'])}"
      + (f"（已合并到 {item.get('merged_into')}）" if item["status"] == "merged" else ""))  # fmt: skip
    p(f"申报单位：{item['org_name'] or '—'}    统一社会信用代码：{item['credit_code'] or '—'}")
    p(f"项目名称：{item['project_name'] or '—'}")
    p(f"所在区：{item.get('district') or '—'}    发件人：{item.get('sender') or '—'}")
    late = "是" + ("（已同意受理）" if item.get("late_accepted") else "") if item["late"] else "否"
    p(f"首次收到：{t(item['received_at'])}    最近收到：{t(item.get('last_received_at'))}    逾期：{late}")

    p()
    p("【申报书字段】")
    fields = item["fields"] or {}
    shown: set[str] = set()
    try:
        groups = template_groups(item["form_type"])
    except (KeyError, ValueError):
        groups = []
    for heading, specs in groups:
        p(f"  {heading}")
        for f in specs:
            shown.add(f.key)
            v = fields.get(f.key)
            text = _value(v) if v not in (None, "", [], {}) else ("（空，必填）" if f.required else "（空）")
            if len(text) > 200:
                text = text[:200] + "…"
            p(f"    {field_label(f)}（{f.key}）：{text}")
    extra = {k: v for k, v in fields.items() if k not in shown}
    for k, v in extra.items():
        p(f"    {k}：{_value(v)}")

    p()
    p("【材料与版本】（✓ 为采用的版本）")
    docs = item["documents"]
    for it in ITEMS:
        versions = [d for d in docs if d["item"] == it]
        if not versions:
            p(f"  {ITEM_LABEL[it]}：未收到")
            continue
        p(f"  {ITEM_LABEL[it]}：")
        for d in versions:
            mark = "✓" if d["of_record"] else " "
            where = f"{d['filename']}" + (f"（{d['member_path']}）" if d["member_path"] else "")
            p(f"    {mark} v{d['version']} {t(d['received_at'])}  {where}  [{d['format']}]")
    others = [d for d in docs if d["item"] is None]
    if others:
        p("  其他文件：")
        for d in others:
            p(f"      {t(d['received_at'])}  {d['filename']}  [{d['kind']}/{d['format']}]")

    p()
    p("【问题】" + ("无" if not item["problems"] else ""))
    for q in item["problems"]:
        sev = "错误" if q["severity"] == "error" else "提示"
        line = f"  [{sev}] {code_label(q['code'])}（{q['code']}）：{q['detail']}"
        if q.get("waived"):
            w = q["waived"]
            line += f"\n      已豁免：{w['by']} 于 {t(w['at'])}，理由：{w['reason']}"
        p(line)

    p()
    p("【人工决定】" + ("无" if not item["decisions"] else ""))
    for d in item["decisions"]:
        what = {"waive": f"豁免 {d['problem_code']}", "accept_late": "同意逾期受理",
                "revoke": f"撤销决定 #{d['revokes']}"}.get(d["action"], d["action"])  # fmt: skip
        gone = "（已撤销）" if d["revoked"] else ""
        p(f"  #{d['id']} {t(d['at'])} {d['user']}：{what}{gone}，理由：{d['reason']}")
    if item.get("audit"):
        p("【操作记录】")
        for e in item["audit"]:
            p(f"  {t(e['at'])} {e['user']} {e['action']} {json.dumps(e['detail'], ensure_ascii=False)}")

    p()
    paper, ack = item["paper"], item["ack"]
    p(f"【纸质材料】{paper.get('status')}（{len(paper.get('entries') or [])} 条登记）")
    p(f"【回执邮件】{ack.get('status')}" + (f"，发送于 {t(ack.get('sent_at'))}" if ack.get("sent_at") else ""))


# -- intake export --------------------------------------------------------------------------------------------


@app.command()
def export(
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    format: Annotated[ExportFmt, typer.Option("--format", "-f")] = ExportFmt.json,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (required for xlsx; else stdout).")
    ] = None,
    status: Annotated[list[str] | None, typer.Option("--status", "-s", help="Only these statuses.")] = None,
    form_type: Annotated[
        list[str] | None, typer.Option("--form-type", "--kind", "-k", help="Only these directions.")
    ] = None,
) -> None:
    """Export the applications: JSON (SPEC 9), CSV (UTF-8 with BOM), xlsx (the 附件5 tables)."""
    from review import exports

    if format == ExportFmt.xlsx and output is None:
        raise Fail("--format xlsx needs --output FILE (a workbook is not written to a terminal)", USAGE)
    filters: dict[str, Any] = {"statuses": _statuses(status), "form_types": _form_types(form_type)}
    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        cfg = services.config
        if format == ExportFmt.xlsx:
            assert output is not None
            n = 0

            def write_xlsx(fh: Any) -> None:
                nonlocal n
                n = exports.export_xlsx(s, cfg, fh, **filters)

            _write_file(output, write_xlsx)
        else:
            if format == ExportFmt.json:
                items = exports.export_json(s, cfg, **filters)
                data, n = _dump_json(items), len(items)
            else:
                data = exports.export_csv(s, cfg, **filters)
                n = max(0, data.count(b"\n") - 1)
            if output is None:
                _write_stdout(data)
            else:
                _write_file(output, lambda fh: fh.write(data))
    if output is not None:
        err.print(f"{n} application(s) written to {output}", markup=False, highlight=False)


# -- intake decide -----------------------------------------------------------------------------------------


@app.command()
def decide(
    receipt: Annotated[str, typer.Argument(help="Receipt number, e.g. AI2026-S-0007.")],
    action: Annotated[str, typer.Argument(help="waive | accept-late | revoke")],
    target: Annotated[
        str | None, typer.Argument(help="waive: the problem code; revoke: the decision id; accept-late: nothing.")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (required; kept in the audit trail).")] = "",
    user: Annotated[
        str, typer.Option("--user", "-u", envvar="INTAKE_USER", help="Who decides (required; or INTAKE_USER).")
    ] = "",
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
) -> None:
    """Record a staff decision: waive a problem, accept a late application, or revoke a decision."""
    from review.checks import code_label
    from review.decisions import DecisionError, normalize_action
    from review.decisions import decide as take_decision
    from review.status import STATUS_LABEL

    try:
        act = normalize_action(action)
    except DecisionError as e:
        raise Fail(str(e), USAGE) from None
    if act in ("waive", "revoke") and not target:
        raise Fail(f"{action} needs {'a problem code' if act == 'waive' else 'the decision id'}", USAGE)
    if not reason.strip():
        raise Fail("--reason is required: every decision is audited with its reason", USAGE)
    if not user.strip():
        raise Fail("--user is required (or set INTAKE_USER): every decision is audited with its author", USAGE)
    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        try:
            d = take_decision(s, receipt, act, target, reason, user)
        except DecisionError as e:
            raise Fail(str(e), REJECTED) from None
        from store.models import Application

        row = s.exec(select(Application).where(Application.receipt_no == receipt.strip())).one()
        what = {
            "waive": f"waived {d.problem_code} ({code_label(d.problem_code or '')})",
            "accept_late": "accepted late",
            "revoke": f"revoked decision {d.revokes}",
        }[d.action]
        out.print(
            f"decision {d.id}: {row.receipt_no} {what} by {d.user}; status now {row.status} "
            f"({STATUS_LABEL.get(row.status, row.status)})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
