"""`intake acks`: list, show, send, retry, mark-sent and preview acknowledgement emails (issue 6)."""

from __future__ import annotations

import email
import json
import sys
from collections.abc import Mapping, Sequence
from email.policy import default as default_policy
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlmodel import Session, col, select

from intake.cli import OK, REJECTED, ConfigOpt, DbOpt, Fail, Fmt, VerboseOpt, _context, _local, app, err, out
from intake.config import Config
from intake.daemon import Job, register_job
from intake.pipeline import Services
from review.exports import register_section
from store.acks_models import ACK_STATES, AckOutbox

acks_app = typer.Typer(
    name="acks",
    help="Acknowledgement emails: list (default), show, send, retry, mark-sent, preview.",
    no_args_is_help=False,
    invoke_without_command=True,
)
app.add_typer(acks_app, name="acks")


@register_job
def _ack_job(services: Services) -> Job | None:
    # Imported when `intake run` starts, not by every command (templates, SMTP, parsers).
    from intake.acks import ack_job

    return ack_job(services)


def _ack_section(session: Session, apps: Sequence[Any]) -> Mapping[int, dict[str, Any]]:
    from intake.acks.export_section import ack_sections

    return ack_sections(session, apps)


# The `ack` section of `intake export` (and of the dashboard's exports).
register_section("ack", _ack_section)


def ack_json(row: AckOutbox, cfg: Config, source_message_id: str | None = None) -> dict[str, Any]:
    """One outbox row as JSON (what `intake acks --format json` prints)."""
    return {
        "id": row.id,
        "message": row.message_pk,
        "source_message_id": source_message_id,
        "status": row.status,
        "kind": row.kind,
        "reason": row.reason,
        "to": row.recipient,
        "message_id": row.ack_message_id,
        "subject": row.subject,
        "receipt_nos": list(row.receipt_nos or []),
        "attempts": row.attempts,
        "next_attempt_at": _local(row.next_attempt_at, cfg),
        "last_error": row.last_error,
        "sent_at": _local(row.sent_at, cfg),
        "smtp_reply": row.smtp_reply,
        "copied_at": _local(row.copied_at, cfg),
        "created_at": _local(row.created_at, cfg),
        "history": list(row.history or []),
    }


@acks_app.callback()
def list_acks(
    ctx: typer.Context,
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    status: Annotated[
        list[str] | None, typer.Option("--status", "-s", help=f"Only these states: {', '.join(ACK_STATES)}.")
    ] = None,
    format: Annotated[Fmt, typer.Option("--format", "-f")] = Fmt.table,
    limit: Annotated[int, typer.Option(help="At most this many, newest first (0: all).")] = 0,
) -> None:
    """The acknowledgement outbox, newest first (also the default without a subcommand)."""
    if ctx.invoked_subcommand is not None:
        # Options given before a subcommand (intake acks --config X send) are its defaults.
        ctx.obj = {"config": config, "db": db}
        return
    from store.models import Message

    bad = [s for s in status or [] if s not in ACK_STATES]
    if bad:
        raise Fail(f"--status must be one of {', '.join(ACK_STATES)} (got {', '.join(bad)})")
    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        q = select(AckOutbox, Message.message_id).join(Message, col(Message.id) == col(AckOutbox.message_pk))
        if status:
            q = q.where(col(AckOutbox.status).in_(status))
        q = q.order_by(col(AckOutbox.id).desc())
        if limit:
            q = q.limit(limit)
        items = [ack_json(row, services.config, mid) for row, mid in s.exec(q)]
    if format == Fmt.json:
        sys.stdout.write(json.dumps(items, ensure_ascii=False, indent=2) + "\n")
        return
    t = Table("id", "created", "status", "kind", "to", "receipts", "subject / reason")
    for it in items:
        t.add_row(
            str(it["id"]),
            (it["created_at"] or "")[:16],
            it["status"],
            it["kind"],
            it["to"] or "",
            ", ".join(it["receipt_nos"]),
            (it["reason"] if it["status"] in ("suppressed", "failed", "unknown") else it["subject"]) or "",
        )
    out.print(t)


def _opts(ctx: typer.Context, config: Path, db: str | None) -> tuple[Path, str | None]:
    parent = ctx.obj or {}
    if config == Path("config.toml") and parent.get("config"):
        config = parent["config"]
    return config, db or parent.get("db")


def _readable(raw: bytes) -> str:
    """Headers decoded and the text body, as the recipient's mail client would show them."""
    m = email.message_from_bytes(raw, policy=default_policy)
    lines = [f"{k}: {v}" for k, v in m.items()]
    part = m.get_body(preferencelist=("plain",)) if m.is_multipart() else m
    body = part.get_content() if part is not None else ""
    return "\n".join(lines) + "\n\n" + str(body)


@acks_app.command("show")
def show(
    ctx: typer.Context,
    ack_id: Annotated[int, typer.Argument(metavar="ID", help="Outbox id (see `intake acks`).")],
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    raw: Annotated[bool, typer.Option("--raw", help="Print the exact bytes sent (or to be sent).")] = False,
    format: Annotated[Fmt, typer.Option("--format", "-f")] = Fmt.table,
) -> None:
    """One acknowledgement: its state and history, and the message as the applicant sees it."""
    from store.models import Message

    config, db = _opts(ctx, config, db)
    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        row = s.get(AckOutbox, ack_id)
        if row is None:
            raise Fail(f"no acknowledgement with id {ack_id}", REJECTED)
        msg = s.get(Message, row.message_pk)
        info = ack_json(row, services.config, msg.message_id if msg else None)
        data = row.raw
    if raw:
        if data is None:
            raise Fail(f"acknowledgement {ack_id} has no message ({info['status']}: {info['reason']})", REJECTED)
        sys.stdout.buffer.write(data)
        return
    if format == Fmt.json:
        info["text"] = _readable(data) if data else None
        sys.stdout.write(json.dumps(info, ensure_ascii=False, indent=2) + "\n")
        return
    for key, value in info.items():
        if key != "history" and value not in (None, [], ""):
            out.print(f"{key}: {value}", markup=False, highlight=False)
    for ev in info["history"]:
        out.print(f"history: {json.dumps(ev, ensure_ascii=False)}", markup=False, highlight=False)
    if data:
        out.print("\n" + _readable(data), markup=False, highlight=False)


@acks_app.command("send")
def send(
    ctx: typer.Context,
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Send what is pending now, then exit (the daemon does this every ack send_interval)."""
    from intake.acks.outbox import AckSender

    config, db = _opts(ctx, config, db)
    with _context(config, db, verbose) as (services, _stages):
        if not services.config.ack.enabled:
            raise Fail("[ack] enabled = false: acknowledgements are off")
        report = AckSender(services).run()
    if report.skipped:
        err.print(report.skipped, markup=False)
    err.print(
        f"{report.sent} sent, {report.deferred} to retry later, {report.failed} failed, {report.unknown} unknown, "
        f"{report.requeued} requeued, {report.confirmed} confirmed from the Sent folder, {report.copied} copied",
        markup=False,
    )
    if report.error:
        err.print(f"error: {report.error}", markup=False, highlight=False)
        raise typer.Exit(REJECTED)
    if report.failed or report.unknown:
        raise typer.Exit(REJECTED)
    raise typer.Exit(OK)


@acks_app.command("retry")
def retry_cmd(
    ctx: typer.Context,
    ack_id: Annotated[int, typer.Argument(metavar="ID", help="Outbox id.")],
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Send it again even though it was sent.")] = False,
    now: Annotated[bool, typer.Option("--now", help="Send it at once instead of waiting for the daemon.")] = False,
) -> None:
    """Queue a failed, unknown, suppressed or dry-run acknowledgement again (composed anew)."""
    from intake.acks.outbox import AckSender, retry

    config, db = _opts(ctx, config, db)
    with _context(config, db) as (services, _stages):
        try:
            row = retry(services, ack_id, force=force)
        except LookupError as e:
            raise Fail(str(e), REJECTED) from None
        except ValueError as e:
            raise Fail(str(e), REJECTED) from None
        err.print(f"acknowledgement {ack_id}: {row.status}, to {row.recipient}", markup=False)
        if now and row.status == "pending":
            report = AckSender(services).run(only=ack_id)
            if report.error or not report.sent:
                raise Fail(f"not sent: {report.error or 'see `intake acks show ' + str(ack_id) + '`'}", REJECTED)
            err.print(f"acknowledgement {ack_id}: sent", markup=False)


@acks_app.command("mark-sent")
def mark_sent_cmd(
    ctx: typer.Context,
    ack_id: Annotated[int, typer.Argument(metavar="ID", help="Outbox id.")],
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    note: Annotated[str, typer.Option(help="Why (e.g. 'found in 已发送').")] = "",
) -> None:
    """Record that an `unknown` (or failed) acknowledgement did go out, e.g. after finding it in 已发送."""
    from intake.acks.outbox import mark_sent

    config, db = _opts(ctx, config, db)
    with _context(config, db) as (services, _stages):
        try:
            mark_sent(services, ack_id, note=note)
        except (LookupError, ValueError) as e:
            raise Fail(str(e), REJECTED) from None
    err.print(f"acknowledgement {ack_id}: sent", markup=False)


@acks_app.command("preview")
def preview_cmd(
    ctx: typer.Context,
    receipt: Annotated[str, typer.Argument(metavar="RECEIPT", help="Receipt number, e.g. AI2026-S-0007.")],
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    message: Annotated[
        int | None, typer.Option("--message", help="The email to acknowledge (default: the newest of the receipt).")
    ] = None,
) -> None:
    """Compose the acknowledgement an application's (newest) email gets now, without storing or sending it."""
    from intake.acks.outbox import preview
    from store.models import Application, DocumentRow, Message

    config, db = _opts(ctx, config, db)
    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        app_row = s.exec(select(Application).where(Application.receipt_no == receipt.strip().upper())).first()
        if app_row is None:
            raise Fail(f"no application with receipt number {receipt}", REJECTED)
        q = (
            select(Message)
            .join(DocumentRow, col(DocumentRow.message_pk) == col(Message.id))
            .where(DocumentRow.application_pk == app_row.id)
            .order_by(col(Message.received_at).desc().nulls_last(), col(Message.id).desc())
        )
        if message is not None:
            q = q.where(Message.id == message)
        msg = s.exec(q).first()
        if msg is None:
            raise Fail(f"no email of {receipt} found{f' with id {message}' if message else ''}", REJECTED)
        decision, rendered = preview(s, services.config, msg, services.clock())
        stored = s.exec(select(AckOutbox).where(AckOutbox.message_pk == msg.id)).first()
    err.print(f"message {msg.id}: {msg.subject!r} from {msg.from_addr}", markup=False, highlight=False)
    if stored is not None:
        err.print(f"outbox: acknowledgement {stored.id} is {stored.status}", markup=False, highlight=False)
    if decision.suppressed:
        err.print(f"would not be sent: {'; '.join(decision.reasons)}", markup=False, highlight=False)
    if rendered is None:
        raise Fail("no address to reply to", REJECTED)
    out.print(_readable(rendered.raw), markup=False, highlight=False)
