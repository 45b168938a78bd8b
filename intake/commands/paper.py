"""`intake paper …` (the paper-submission log) and `intake reconcile` (email ↔ paper ↔ 汇总表), issue 5."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlmodel import Session

from intake.cli import REJECTED, USAGE, ConfigOpt, DbOpt, Fail, Fmt, SafeConsole, _context, app, err, out
from intake.config import Config


def _paper_section(session: Session, apps: Any) -> Any:
    # Reconciliation (numpy, rapidfuzz matrices) is loaded when an export asks for it, not by every command.
    from review.reconcile import export_section

    return export_section(session, apps)


def _install_hooks() -> None:
    # The CLI loads this module at start-up: `intake export` (and the daemon) get the `paper` section.
    from review.exports import register_section

    register_section("paper", _paper_section)


_install_hooks()

paper_app = typer.Typer(
    name="paper",
    help="The paper-submission log (room 213): import, template, add, edit, list, match.",
    no_args_is_help=True,
)
app.add_typer(paper_app, name="paper")

UserOpt = Annotated[
    str, typer.Option("--user", "-u", envvar="INTAKE_USER", help="Who does this (required; or INTAKE_USER).")
]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the history).")]


class ReportFmt(StrEnum):
    table = "table"
    json = "json"


def _need_user(user: str) -> str:
    if not user.strip():
        raise Fail("--user is required (or set INTAKE_USER): every change to the paper log is kept with its author")
    return user.strip()


def _json_out(data: Any) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write((json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    sys.stdout.buffer.flush()


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _complain(text: str) -> None:
    err.print(text, markup=False, highlight=False, soft_wrap=True)


def _print_table(t: Table) -> None:
    # Piped into a file or grep, a table gets no terminal width: 80 columns would cut the names short.
    if out.is_terminal:
        out.print(t)
    else:
        SafeConsole(width=240).print(t)


def _local(dt: datetime | None, cfg: Config) -> str:
    return dt.astimezone(cfg.call.tz).strftime("%Y-%m-%d %H:%M") if dt else ""


def _reapply(s: Session, cfg: Config) -> int:
    """Paper changed: bring the applications' problems and status up to date."""
    from review.reconcile import apply

    _report, changed = apply(s, cfg)
    return changed


# -- intake paper import / template ----------------------------------------------------------------------


@paper_app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(help=".xlsx or .csv with the headings 接收时间 申报单位 项目名称 … (SPEC 7).")
    ],
    user: UserOpt = "",
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="The file is the truth for entries imported earlier from a file of the same name: "
            "those no longer in it (or edited in it) are deleted, with history.",
        ),
    ] = False,
    check: Annotated[bool, typer.Option("--check", help="Only read and check the file; write nothing.")] = False,
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
) -> None:
    """Import a paper log, all or nothing: every bad row is reported and nothing is written until the
    file is clean. Rows imported before (same values) are skipped."""
    from review.paper import import_log

    if not check:
        user = _need_user(user)
    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        cfg = services.config
        res = import_log(
            s,
            file,
            user or "-",
            tz=cfg.call.tz,
            deadline=cfg.call.deadline,
            districts=cfg.paper.districts,
            replace=replace,
            dry_run=check,
        )
        if res.file_error:
            _complain(f"{file}: {res.file_error}")
            raise typer.Exit(REJECTED)
        for e in res.errors:
            _complain(f"{file}: {e}")
        if res.errors:
            rows = len({(e.sheet, e.row) for e in res.errors})
            _complain(f"{file}: {rows} row(s) rejected; nothing imported (fix them and import the file again)")
            raise typer.Exit(REJECTED)
        notes = [f"{len(res.entries)} rows read"]
        if res.blank_rows:
            notes.append(f"{res.blank_rows} blank rows ignored")
        for sk in res.skipped:
            _complain(f"{file}: skipped {sk}")
        if check:
            _say(f"{file}: OK, " + ", ".join(notes) + "; nothing written (--check)")
            return
        changed = _reapply(s, cfg)
        s.commit()
    extra = f", {len(res.removed)} removed (--replace)" if replace else ""
    _say(
        f"{file}: {len(res.created)} imported, {res.already} already imported{extra}; "
        + ", ".join(notes)
        + f"; {changed} application(s) updated"
    )


@paper_app.command()
def template(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the .xlsx.")] = Path(
        "纸质材料登记表.xlsx"
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    config: ConfigOpt = Path("config.toml"),
) -> None:
    """Write an empty paper log (.xlsx) with the headings and drop-down lists for 方向, 材料类型, 所在区."""
    from intake.cli import _config
    from review.paper import template_bytes

    cfg = _config(config, None)
    if output.exists() and not force:
        raise Fail(f"{output} exists (use --force to overwrite)")
    output.write_bytes(template_bytes(title=f"纸质材料接收登记表（{cfg.call.name}）", districts=cfg.paper.districts))
    _say(f"wrote {output}")


# -- intake paper add / edit / delete / restore / history / list -----------------------------------------


def _cli_values(
    cfg: Config,
    *,
    received_at: str | None,
    org: str | None,
    project: str | None,
    direction: str | None,
    item: str | None,
    copies: str | None,
    district: str | None,
    received_by: str | None,
    note: str | None,
    credit_code: str | None,
    only_given: bool,
) -> dict[str, Any]:
    """Values from options, read exactly as an import reads cells (review.paper.validate)."""
    from review.paper import validate

    raw = {
        "接收时间": received_at,
        "申报单位": org,
        "项目名称": project,
        "方向": direction,
        "材料类型": item,
        "份数": copies,
        "所在区": district,
        "接收人": received_by,
        "备注": note,
        "统一社会信用代码": credit_code,
    }
    field_of = {
        "接收时间": "received_at",
        "申报单位": "org_name",
        "项目名称": "project_name",
        "方向": "form_type",
        "材料类型": "item",
        "份数": "copies",
        "所在区": "district",
        "接收人": "received_by",
        "备注": "note",
        "统一社会信用代码": "credit_code",
    }
    option_of = {
        "接收时间": "--received-at",
        "申报单位": "--org",
        "项目名称": "--project",
        "方向": "--direction",
        "材料类型": "--item",
        "份数": "--copies",
        "所在区": "--district",
        "接收人": "--received-by",
        "备注": "--note",
        "统一社会信用代码": "--credit-code",
    }
    values, errors = validate(raw, tz=cfg.call.tz, deadline=cfg.call.deadline, districts=cfg.paper.districts)
    if only_given:
        given = {h for h, v in raw.items() if v is not None}
        errors = {h: m for h, m in errors.items() if h in given}
        values = {field_of[h]: values[field_of[h]] for h in given}
    if errors:
        raise Fail("; ".join(f"{option_of[h]} ({h}): {m}" for h, m in errors.items()), USAGE)
    return values


Opt = Annotated[str | None, typer.Option()]


@paper_app.command()
def add(
    org: Annotated[str, typer.Option("--org", help="申报单位.")],
    item: Annotated[str, typer.Option("--item", help="材料类型: 申报书, 推荐意见 or 汇总表.")] = "申报书",
    project: Annotated[str | None, typer.Option("--project", help="项目名称 (required for 申报书).")] = None,
    direction: Annotated[str | None, typer.Option("--direction", help="方向: 场景 / 模型 / 平台 / 终端.")] = None,
    copies: Annotated[str, typer.Option("--copies", help="份数.")] = "2",
    district: Annotated[str | None, typer.Option("--district", help="所在区.")] = None,
    received_at: Annotated[
        str | None, typer.Option("--received-at", help="接收时间, e.g. '2026/7/7 16:30' (default: now).")
    ] = None,
    received_by: Annotated[str | None, typer.Option("--received-by", help="接收人 (default: --user).")] = None,
    note: Annotated[str | None, typer.Option("--note", help="备注.")] = None,
    credit_code: Annotated[str | None, typer.Option("--credit-code", help="统一社会信用代码, when known.")] = None,
    user: UserOpt = "",
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
) -> None:
    """Log one hand-in at room 213."""
    from review.paper import add_entry

    user = _need_user(user)
    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        cfg = services.config
        when = received_at or datetime.now(cfg.call.tz).strftime("%Y-%m-%d %H:%M:%S")
        values = _cli_values(
            cfg,
            received_at=when,
            org=org,
            project=project,
            direction=direction,
            item=item,
            copies=copies,
            district=district,
            received_by=received_by or user,
            note=note,
            credit_code=credit_code,
            only_given=False,
        )
        e = add_entry(s, values, user, source="cli")
        changed = _reapply(s, cfg)
        s.commit()
        _say(f"paper entry {e.id}: {_describe(e, cfg)}; {changed} application(s) updated")


def _describe(e: Any, cfg: Config) -> str:
    from review.reconcile import FORM_TYPE_LABEL, ITEM_LABEL

    project = f"《{e.project_name}》" if e.project_name else ""
    direction = f"（{FORM_TYPE_LABEL.get(e.form_type, '')}）" if e.form_type else ""
    return (
        f"{_local(e.received_at, cfg)} {e.org_name}{project}{direction} {ITEM_LABEL.get(e.item, e.item)} "
        f"{e.copies} 份" + (f"，{e.district}" if e.district else "")
    )


@paper_app.command()
def edit(
    entry_id: Annotated[int, typer.Argument(help="The paper entry id (see `intake paper list`).")],
    org: Opt = None,
    project: Opt = None,
    direction: Opt = None,
    item: Opt = None,
    copies: Opt = None,
    district: Opt = None,
    received_at: Annotated[str | None, typer.Option("--received-at")] = None,
    received_by: Annotated[str | None, typer.Option("--received-by")] = None,
    note: Opt = None,
    credit_code: Annotated[str | None, typer.Option("--credit-code")] = None,
    reason: ReasonOpt = "",
    user: UserOpt = "",
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
) -> None:
    """Correct a paper entry; the values before stay in its history."""
    from review.paper import PaperError, edit_entry

    user = _need_user(user)
    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        cfg = services.config
        changes = _cli_values(
            cfg,
            received_at=received_at,
            org=org,
            project=project,
            direction=direction,
            item=item,
            copies=copies,
            district=district,
            received_by=received_by,
            note=note,
            credit_code=credit_code,
            only_given=True,
        )
        if not changes:
            raise Fail("nothing to change: give at least one of --org --project --copies …")
        try:
            e = edit_entry(s, entry_id, changes, user, reason or None)
        except PaperError as ex:
            raise Fail(str(ex), REJECTED) from None
        changed = _reapply(s, cfg)
        s.commit()
        _say(f"paper entry {e.id} (version {e.version}): {_describe(e, cfg)}; {changed} application(s) updated")


def _delete(entry_id: int, reason: str, user: str, config: Path, db: str | None, restore: bool) -> None:
    from review.paper import PaperError, delete_entry

    user = _need_user(user)
    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        try:
            e = delete_entry(s, entry_id, user, reason or None, restore=restore)
        except PaperError as ex:
            raise Fail(str(ex), REJECTED) from None
        changed = _reapply(s, services.config)
        s.commit()
        _say(f"paper entry {e.id} {'restored' if restore else 'deleted'}; {changed} application(s) updated")


@paper_app.command()
def delete(
    entry_id: Annotated[int, typer.Argument()],
    reason: ReasonOpt = "",
    user: UserOpt = "",
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
) -> None:
    """Take an entry out of the log (it stays, with its history, and can be restored)."""
    _delete(entry_id, reason, user, config, db, restore=False)


@paper_app.command()
def restore(
    entry_id: Annotated[int, typer.Argument()],
    reason: ReasonOpt = "",
    user: UserOpt = "",
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
) -> None:
    """Put a deleted entry back into the log."""
    _delete(entry_id, reason, user, config, db, restore=True)


@paper_app.command("history")
def history_(
    entry_id: Annotated[int, typer.Argument()],
    format: Annotated[Fmt, typer.Option("--format", "-f")] = Fmt.table,
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
) -> None:
    """Every version of a paper entry: who changed what, when, why."""
    from review.paper import PaperError, history

    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        cfg = services.config
        try:
            revs = history(s, entry_id)
        except PaperError as ex:
            raise Fail(str(ex), REJECTED) from None
        items: list[dict[str, Any]] = [
            {
                "version": r.version,
                "action": r.action,
                "at": r.at.astimezone(cfg.call.tz).isoformat(),
                "user": r.user,
                "reason": r.reason,
                "values": r.values,
            }
            for r in revs
        ]
    if format == Fmt.json:
        _json_out(items)
        return
    for it in items:
        _say(
            f"v{it['version']} {it['at'][:16]} {it['user']} {it['action']}"
            + (f"（{it['reason']}）" if it["reason"] else "")
        )
        _say("    " + json.dumps(it["values"], ensure_ascii=False))


@paper_app.command("list")
def list_(
    format: Annotated[Fmt, typer.Option("--format", "-f")] = Fmt.table,
    deleted: Annotated[bool, typer.Option("--deleted", help="Include deleted entries.")] = False,
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
) -> None:
    """The paper log, in arrival order, with the application each 申报书 entry was matched to."""
    from review.paper import entries
    from review.reconcile import Settings, cutoff_of, entry_json, run

    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        cfg = services.config
        report = run(s, Settings.from_config(cfg), cutoff_of(cfg))
        links = {er.entry.id: er for er in report.entries}
        items = []
        for e in entries(s, include_deleted=deleted):
            assert e.id is not None
            er = links.get(e.id)
            item = {
                **entry_json(_rec(e), cfg.call.tz),
                "credit_code": e.credit_code,
                "deleted": e.deleted,
                "version": e.version,
                "source": e.source_ref or e.source,
                "late": e.received_at >= cutoff_of(cfg),
                "match": er.link.status if er else None,
                "receipt_no": er.link.app.receipt_no if er and er.link.app else None,
                "score": er.link.score if er and er.link.status == "matched" else None,
            }
            items.append(item)
    if format == Fmt.json:
        _json_out(items)
        return
    t = Table("id", "接收时间", "申报单位", "项目名称", "材料", "份数", "所在区", "接收人", "匹配")
    for it in items:
        match = it["match"] or ""
        if it["receipt_no"]:
            match = f"{it['receipt_no']} ({it['score']:.0f})"
        t.add_row(
            str(it["id"]) + (" (deleted)" if it["deleted"] else ""),
            (it["received_at"] or "")[:16].replace("T", " ") + (" 逾期" if it["late"] else ""),
            escape(it["org_name"] or ""),
            escape(it["project_name"] or ""),
            it["item"],
            str(it["copies"]),
            escape(it["district"] or ""),
            escape(it["received_by"] or ""),
            escape(match),
        )
    _print_table(t)


def _rec(e: Any) -> Any:
    from review.reconcile import EntryRec

    return EntryRec(
        e.id, e.received_at, e.org_name, e.project_name, e.form_type, e.item, e.copies,
        e.district, e.received_by, e.note, e.credit_code,
    )  # fmt: skip


# -- staff decisions on matches --------------------------------------------------------------------------


def _override(
    subject: str, action: str, receipt: str | None, reason: str, user: str, config: Path, db: str | None
) -> None:
    from review.reconcile import set_override

    user = _need_user(user)
    if action != "clear" and not reason.strip():
        raise Fail("--reason is required: staff decisions on matches are audited with their reason")
    subject = subject.strip()
    if subject.isdigit():
        subject = f"paper:{subject}"
    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        try:
            set_override(s, subject, action, user, receipt_no=receipt, reason=reason)
        except (ValueError, LookupError) as ex:
            raise Fail(str(ex).strip("'\""), REJECTED) from None
        changed = _reapply(s, services.config)
        s.commit()
    what = {
        "match": f"matched to {receipt}",
        "unmatch": "belongs to no application",
        "clear": "matched automatically again",
    }
    _say(f"{subject}: {what[action]} ({user}); {changed} application(s) updated")


@paper_app.command()
def match(
    subject: Annotated[str, typer.Argument(help="A paper entry id (12 or paper:12) or a 汇总表 row (summary:<key>).")],
    receipt: Annotated[str, typer.Argument(help="The application's receipt number, e.g. AI2026-S-0007.")],
    reason: ReasonOpt = "",
    user: UserOpt = "",
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
) -> None:
    """Staff decide: this paper entry (or 汇总表 row) is about that application. Survives re-runs."""
    _override(subject, "match", receipt.strip(), reason, user, config, db)


@paper_app.command()
def unmatch(
    subject: Annotated[str, typer.Argument(help="A paper entry id (12 or paper:12) or a 汇总表 row (summary:<key>).")],
    reason: ReasonOpt = "",
    user: UserOpt = "",
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
) -> None:
    """Staff decide: this paper entry (or 汇总表 row) belongs to no application (an orphan)."""
    _override(subject, "unmatch", None, reason, user, config, db)


@paper_app.command("clear-match")
def clear_match(
    subject: Annotated[str, typer.Argument(help="A paper entry id (12 or paper:12) or a 汇总表 row (summary:<key>).")],
    reason: ReasonOpt = "",
    user: UserOpt = "",
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
) -> None:
    """Withdraw a staff decision: the entry (or row) is matched automatically again."""
    _override(subject, "clear", None, reason, user, config, db)


# -- intake reconcile ------------------------------------------------------------------------------------


@app.command()
def reconcile(
    format: Annotated[ReportFmt, typer.Option("--format", "-f")] = ReportFmt.table,
    apply_problems: Annotated[
        bool,
        typer.Option(
            "--apply/--no-apply",
            help="Write paper_missing, paper_copies_short, not_in_summary, late onto applications.",
        ),
    ] = True,
    all_apps: Annotated[bool, typer.Option("--all", help="Table: list every application, not only open ones.")] = False,
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
) -> None:
    """The reconciliation report: applications ↔ paper log ↔ district 汇总表 (SPEC 7)."""
    from review.reconcile import Settings, apply, cutoff_of, report_json, run

    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        cfg = services.config
        if apply_problems:
            report, changed = apply(s, cfg)
            s.commit()
        else:
            report, changed = run(s, Settings.from_config(cfg), cutoff_of(cfg)), 0
        data = report_json(report)
    if format == ReportFmt.json:
        _json_out(data)
        return
    _print_report(data, all_apps)
    if apply_problems:
        _complain(f"{changed} application(s) updated")


_PAPER_LABEL = {
    "matched": "已收",
    "missing": "未收",
    "ambiguous": "待确认",
    "copies_short": "份数不足",
    "late": "逾期",
}
_SUMMARY_LABEL = {
    "listed": "已列入",
    "ambiguous": "待确认",
    "not_listed": "未列入",
    "no_summary": "区未报汇总表",
    "unknown": "所在区不明",
}


def _print_report(data: dict[str, Any], all_apps: bool) -> None:
    c = data["counts"]
    _say(
        f"{c['applications']} applications — paper: "
        + ", ".join(f"{_PAPER_LABEL.get(k, k)} {v}" for k, v in c["paper"].items())
        + " — 汇总表: "
        + ", ".join(f"{_SUMMARY_LABEL.get(k, k)} {v}" for k, v in c["summary"].items())
    )
    _say(
        "paper entries: "
        + ", ".join(f"{k} {v}" for k, v in c["paper_entries"].items())
        + " — 汇总表 rows: "
        + ", ".join(f"{k} {v}" for k, v in c["summary_rows"].items())
    )
    apps = [
        a
        for a in data["applications"]
        if all_apps or a["paper"]["status"] != "matched" or a["paper"]["summary"]["status"] != "listed"
    ]
    if apps:
        t = Table("receipt", "申报单位", "项目名称", "纸质", "汇总表", title="applications" if all_apps else "open")
        for a in apps:
            p = a["paper"]
            paper = _PAPER_LABEL.get(p["status"], p["status"])
            if p["entries"]:
                paper += f" {p['copies']}份 ({p['score']:.0f})"
            if p["candidates"]:
                paper += " ← " + ", ".join(f"#{x['id']} ({x['score']:.0f})" for x in p["candidates"][:3])
            sm = p["summary"]
            summary = _SUMMARY_LABEL.get(sm["status"], sm["status"])
            if sm["candidates"]:
                summary += " ← " + ", ".join(f"{x['key']} ({x['score']:.0f})" for x in sm["candidates"][:2])
            t.add_row(
                a["receipt_no"],
                escape(a["org_name"] or ""),
                escape(a["project_name"] or ""),
                escape(paper),
                escape(summary),
            )
        _print_table(t)
    loose = [e for e in data["paper_entries"] if e["status"] in ("orphan", "ambiguous")]
    if loose:
        t = Table(
            "id", "接收时间", "申报单位", "项目名称", "status", "candidates", title="paper entries without application"
        )
        for e in loose:
            t.add_row(
                str(e["id"]),
                (e["received_at"] or "")[:16].replace("T", " "),
                escape(e["org_name"] or ""),
                escape(e["project_name"] or ""),
                e["status"],
                escape(", ".join(f"{x['receipt_no']} ({x['score']:.0f})" for x in e["candidates"][:3])),
            )
        _print_table(t)
    rows = [r for r in data["summary_rows"] if r["status"] in ("orphan", "ambiguous")]
    if rows:
        t = Table(
            "row", "所在区", "申报单位", "项目名称", "status", "candidates", title="汇总表 rows without application"
        )
        for r in rows:
            t.add_row(
                r["subject"],
                escape(r["district"] or ""),
                escape(r["org_name"] or ""),
                escape(r["project_name"] or ""),
                r["status"],
                escape(", ".join(f"{x['receipt_no']} ({x['score']:.0f})" for x in r["candidates"][:3])),
            )
        _print_table(t)
    if data["districts"]:
        t = Table("所在区", "汇总表（电子）", "汇总表（纸质）", "推荐意见（纸质）", "申报", "已列入", title="districts")
        for d in data["districts"]:
            t.add_row(
                escape(d["district"]),
                escape(f"{d['summary']['filename']} ({d['summary']['rows']} 行)" if d["summary"] else "—"),
                str(d["paper_summary_copies"] or "—"),
                str(d["paper_recommendation_copies"] or "—"),
                str(d["applications"]),
                str(d["listed"]),
            )
        _print_table(t)
    for stale in data["stale_overrides"]:
        _complain(f"staff match to an application that no longer exists (ignored): {stale}")
