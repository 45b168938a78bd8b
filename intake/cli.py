"""The `intake` command line: daemon, poll, ingest, messages, replay, check-config (SPEC 9)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlmodel import Session, col, select

from intake import __version__
from intake.config import Config, ConfigError, load_config
from intake.logsetup import setup_logging
from intake.pipeline import Services, Stage, TransientError, process_pending, resolve_stages

# Exit codes of SPEC 9.
OK, REJECTED, USAGE = 0, 1, 2

app = typer.Typer(
    name="intake",
    help="Mailbox intake for a call for applications: poll, archive, parse, check, acknowledge.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# C0 and C1 control characters but tab and newline: what a terminal would act on.
_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class SafeConsole(Console):
    """A console for text that came by email (subjects, names, file names, form fields): the escape sequences
    it may carry (retitling the terminal, rewriting what is on screen, links) are shown as �, never acted on."""

    def render_str(self, text: str, **kwargs: Any) -> Any:
        return super().render_str(_TERMINAL_CONTROL.sub("\ufffd", text), **kwargs)


# soft_wrap: "file: reason" lines stay one line whatever the terminal width (grep, logs).
err = SafeConsole(stderr=True, soft_wrap=True)
out = SafeConsole()

ConfigOpt = Annotated[
    Path,
    typer.Option("--config", "-c", help="Configuration file.", envvar="INTAKE_CONFIG", show_default=True),
]
DbOpt = Annotated[str | None, typer.Option("--db", help="Database URL; overrides [store] url.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]


class Fmt(StrEnum):
    table = "table"
    json = "json"


class Fail(Exception):
    """A user-facing error with an exit code: printed without a traceback."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


def _config(path: Path, db: str | None) -> Config:
    # The default ./config.toml may be absent: then the built-in defaults apply.
    if path == Path("config.toml") and not path.exists():
        return load_config(None, db_url=db)
    return load_config(path, db_url=db)


@contextmanager
def _context(
    config_path: Path, db: str | None, verbose: bool = False
) -> Iterator[tuple[Services, list[tuple[str, Stage]]]]:
    from intake.services import build_services

    cfg = _config(config_path, db)
    setup_logging(cfg.logging, verbose=verbose)
    stages = resolve_stages(cfg.pipeline.stages)
    services = build_services(cfg)
    try:
        yield services, stages
    finally:
        services.close()
        services.engine.dispose()
        if services.work_engine is not None:
            services.work_engine.dispose()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _local(dt: datetime | None, cfg: Config) -> str | None:
    return dt.astimezone(cfg.call.tz).isoformat() if dt else None


def _report_quarantined(services: Services, ids: list[int]) -> None:
    from store.models import Message

    if not ids:
        return
    with Session(services.engine) as s:
        for m in s.exec(select(Message).where(col(Message.id).in_(ids))):
            err.print(f"{m.source_ref}: quarantined: {m.quarantine_reason}", markup=False, highlight=False)


# -- commands ---------------------------------------------------------------------------------------


class Role(StrEnum):
    all = "all"
    poller = "poller"
    worker = "worker"


@app.command()
def run(
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    verbose: VerboseOpt = False,
    role: Annotated[
        Role,
        typer.Option(
            "--role",
            help="all: everything; poller: fetch and archive only; worker: process and acknowledge only "
            "(several of each may share one PostgreSQL database).",
        ),
    ] = Role.all,
) -> None:
    """The daemon: scheduled polls (and IDLE), processing, acks, dashboard; stops on SIGTERM/SIGINT."""
    import threading

    from intake.daemon import Daemon, install_signal_handlers

    # First thing: a SIGTERM while migrations run must still end in a clean exit.
    stop = threading.Event()
    install_signal_handlers(stop)
    with _context(config, db, verbose) as (services, stages):
        cfg = services.config
        polls = role != Role.worker and cfg.mailbox.enabled
        password = cfg.secret(cfg.mailbox.password_env) if polls else None
        daemon = Daemon(
            services,
            stages,
            password,
            jobs=_jobs(services) if role != Role.poller else [],
            stop_event=stop,
            process=role != Role.poller,
        )
        what = (f"polling {cfg.mailbox.username}@{cfg.mailbox.host}/{cfg.mailbox.folder} every "
                f"{cfg.mailbox.poll_interval}") if polls else "processing what pollers archive"  # fmt: skip
        err.print(f"intake {__version__} ({role.value}): {what}", markup=False, highlight=False)
        daemon.run_forever(_dashboard_server(services, daemon) if role == Role.all else None)


def _jobs(services: Services) -> list[Any]:
    """Periodic jobs besides polling, contributed by the modules that own them (intake.daemon.register_job)."""
    from intake.daemon import job_factories

    return [job for factory in job_factories() if (job := factory(services)) is not None]


def _dashboard_server(services: Services, daemon: Any) -> Any:
    """The dashboard, served in the daemon's main thread, when a module registered a server factory."""
    from intake.daemon import server_factory

    factory = server_factory()
    if factory is None or not services.config.dashboard.enabled:
        return None
    return factory(services, daemon)


@app.command()
def poll(
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    verbose: VerboseOpt = False,
    process: Annotated[bool, typer.Option(help="Process what was fetched (parse, check, queue acks).")] = True,
) -> None:
    """One poll of the mailbox now, then exit."""
    from intake.cycle import run_cycle
    from intake.mailbox import MailboxError
    from intake.poller import Poller

    with _context(config, db, verbose) as (services, stages):
        cfg = services.config
        password = cfg.secret(cfg.mailbox.password_env)
        poller = Poller(services, password)
        with _progress() as prog:
            fetch_task = prog.add_task("fetching", total=None)
            proc_task = prog.add_task("processing", total=None)
            try:
                if process:
                    cyc = run_cycle(
                        services,
                        stages,
                        poller,
                        on_fetched=lambda d, t: prog.update(fetch_task, completed=d, total=t),
                        on_processed=lambda _m, _s: prog.advance(proc_task),
                    )
                    res, pres = cyc.poll, cyc.process
                else:
                    res, pres = poller.poll(progress=lambda d, t: prog.update(fetch_task, completed=d, total=t)), None
            except MailboxError as e:
                raise Fail(str(e), REJECTED) from None
            except TransientError as e:
                raise Fail(f"processing stopped, nothing is lost; run again when fixed: {e}", REJECTED) from None
        assert res is not None
        if res.skipped:
            err.print(f"poll skipped: {res.skipped}", markup=False)
        err.print(
            f"{res.seen} UIDs looked at, {res.fetched} fetched ({res.new_messages} new, "
            f"{res.duplicates} already known), {res.actions} server actions",
            markup=False,
        )
        if pres is not None:
            err.print(f"{pres.processed} processed, {pres.quarantined} quarantined", markup=False)
            _report_quarantined(services, pres.quarantined_ids)
            if pres.quarantined:
                raise typer.Exit(REJECTED)


def _process(services: Services, stages: list[tuple[str, Stage]]) -> Any:
    from sqlmodel import func

    from store.models import Message

    with Session(services.engine) as s:
        pending = s.exec(select(func.count()).select_from(Message).where(Message.state == "new")).one()
    with _progress() as prog:
        task = prog.add_task("processing", total=pending)
        try:
            res = process_pending(services, stages, on_done=lambda _m, _s: prog.advance(task))
        except TransientError as e:
            raise Fail(f"processing stopped, nothing is lost; run again when fixed: {e}", REJECTED) from None
    err.print(f"{res.processed} processed, {res.quarantined} quarantined", markup=False)
    return res


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help=".eml files, folders of them, Maildir folders, mbox files.")],
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    verbose: VerboseOpt = False,
    process: Annotated[bool, typer.Option(help="Process what was ingested.")] = True,
) -> None:
    """Ingest messages from files as if they had arrived by mail."""
    from intake.ingest import discover, ingest_paths

    with _context(config, db, verbose) as (services, stages):
        total = sum(1 for _ in discover(paths))
        with _progress() as prog:
            task = prog.add_task("archiving", total=total)
            res = ingest_paths(services, paths)
            prog.update(task, completed=total)
        for r in res.rejected:
            err.print(f"{r.source}: {r.reason}", markup=False, highlight=False)
        err.print(
            f"{len(res.new_ids)} new, {res.duplicates} already known, {len(res.rejected)} rejected",
            markup=False,
        )
        quarantined = 0
        if process:
            pres = _process(services, stages)
            _report_quarantined(services, pres.quarantined_ids)
            quarantined = pres.quarantined
        if res.rejected or quarantined:
            raise typer.Exit(REJECTED)


@app.command()
def messages(
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    format: Annotated[Fmt, typer.Option("--format", "-f")] = Fmt.table,
    klass: Annotated[str | None, typer.Option("--class", help="submission, auto_reply, bounce, list, other")] = None,
    quarantined: Annotated[bool, typer.Option("--quarantined", help="Only quarantined messages.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first (0: all).")] = 0,
) -> None:
    """The messages received, with class and attachments."""
    from store.models import AttachmentRow, Message

    classes = {"submission", "auto_reply", "bounce", "list", "other"}
    if klass and klass not in classes:
        raise Fail(f"--class must be one of {', '.join(sorted(classes))}")
    with _context(config, db) as (services, _stages), Session(services.engine) as s:
        cfg = services.config
        q = select(Message).order_by(col(Message.received_at).desc().nulls_last(), col(Message.id).desc())
        if klass:
            q = q.where(Message.msg_class == klass)
        if quarantined:
            q = q.where(Message.state == "quarantined")
        if limit:
            q = q.limit(limit)
        rows = list(s.exec(q))
        atts: dict[int, list[AttachmentRow]] = {}
        ids = [m.id for m in rows if m.id is not None]
        for i in range(0, len(ids), 500):
            for a in s.exec(
                select(AttachmentRow)
                .where(col(AttachmentRow.message_pk).in_(ids[i : i + 500]))
                .order_by(col(AttachmentRow.seq))
            ):
                atts.setdefault(a.message_pk, []).append(a)
        items = [message_json(m, atts.get(m.id or 0, []), cfg) for m in rows]
    if format == Fmt.json:
        sys.stdout.write(json.dumps(items, ensure_ascii=False, indent=2) + "\n")
        return
    t = Table("id", "received", "class", "from", "subject", "files", "state")
    for it in items:
        t.add_row(
            str(it["id"]),
            (it["received_at"] or "")[:19],
            it["class"] or "",
            it["from"] or "",
            (it["subject"] or "")[:40],
            str(len(it["attachments"])),
            "quarantined: " + it["quarantined"] if it["quarantined"] else it["state"],
        )
    out.print(t)


def message_json(m: Any, attachments: list[Any], cfg: Config) -> dict[str, Any]:
    """The `intake messages --format json` item of SPEC 9 (plus a few extra keys)."""
    return {
        "id": m.id,
        "sha256": m.sha256,
        "message_id": m.message_id,
        "from": m.from_addr,
        "from_name": m.from_name,
        "subject": m.subject,
        "received_at": _local(m.received_at, cfg),
        "received_source": m.received_source,
        "sent_at": _local(m.sent_at, cfg),
        "class": m.msg_class,
        "class_reasons": m.class_reasons,
        "state": m.state,
        "quarantined": m.quarantine_reason if m.state == "quarantined" else None,
        "attachments": [{"filename": a.filename, "size": a.size, "sha256": a.sha256} for a in attachments],
        "cloud_links": [c.get("url") for c in m.cloud_links],
        "source": m.source_ref,
    }


@app.command()
def replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Message ids (see `intake messages --quarantined`).")] = None,
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    all_quarantined: Annotated[
        bool, typer.Option("--all-quarantined", help="Replay every quarantined message.")
    ] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run messages through the pipeline again (after a fix); they keep their archive and id."""
    from intake.pipeline import replay as replay_one
    from store.models import Message

    with _context(config, db, verbose) as (services, stages):
        targets = list(ids or [])
        if all_quarantined:
            with Session(services.engine) as s:
                targets += [m.id for m in s.exec(select(Message).where(Message.state == "quarantined")) if m.id]
        if not targets:
            raise Fail("give message ids, or --all-quarantined")
        failed = 0
        for mid in targets:
            try:
                state = replay_one(services, mid, stages)
            except LookupError as e:
                err.print(str(e), markup=False)
                failed += 1
                continue
            err.print(f"message {mid}: {state}", markup=False)
            if state != "processed":
                failed += 1
                _report_quarantined(services, [mid])
        if failed:
            raise typer.Exit(REJECTED)


@app.command("check-config")
def check_config(
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    connect: Annotated[bool, typer.Option("--connect", help="Also log in to the mailbox and report.")] = False,
) -> None:
    """Validate the configuration; with --connect, log in to the mailbox and report what it found."""
    from intake.mailbox import Mailbox, MailboxError

    cfg = _config(config, db)
    resolve_stages(cfg.pipeline.stages)
    out.print(f"configuration OK: {config}", markup=False)
    out.print(
        f"  call: {cfg.call.name} — deadline {cfg.call.deadline.isoformat()} ({cfg.call.timezone})",
        markup=False,
    )
    out.print(
        f"  mailbox: {cfg.mailbox.username}@{cfg.mailbox.host}:{cfg.mailbox.port} ({cfg.mailbox.tls}), "
        f"folder {cfg.mailbox.folder}, every {cfg.mailbox.poll_interval}, after: {cfg.mailbox.after}",
        markup=False,
    )
    out.print(f"  store: {_redact(cfg.db_url)}, data in {cfg.data_dir}", markup=False)
    out.print(f"  pipeline: {' → '.join(cfg.pipeline.stages)}", markup=False)
    if not connect:
        return
    password = cfg.secret(cfg.mailbox.password_env)
    mb = Mailbox(cfg.mailbox, password)
    try:
        st = mb.connect()
        uids = mb.uids_from(1)
    except MailboxError as e:
        raise Fail(str(e), REJECTED) from None
    finally:
        mb.close()
    out.print(
        f"  connected: {len(uids)} messages in {cfg.mailbox.folder}, UIDVALIDITY {st.uidvalidity}, "
        f"UIDNEXT {st.uidnext}",
        markup=False,
    )
    out.print(f"  server: {', '.join(sorted(mb.capabilities))}", markup=False)
    if mb.server_id:
        out.print(f"  server ID: {mb.server_id}", markup=False)
    out.print(
        f"  IDLE: {'advertised' if 'IDLE' in mb.capabilities else 'not advertised (polling only)'}",
        markup=False,
    )


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


def _load_command_modules() -> None:
    """Commands of other areas (applications, acknowledgements, paper log, users) live in
    intake/commands/*.py and register themselves on `app` when imported."""
    import importlib
    import pkgutil

    import intake.commands as pkg

    for mod in sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)):
        importlib.import_module(f"{pkg.__name__}.{mod}")


_load_command_modules()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: maps errors to SPEC 9 exit codes."""
    try:
        rc = app(args=argv, standalone_mode=False)
        # click returns the code of typer.Exit instead of raising it when not standalone.
        if isinstance(rc, int):
            return rc
    except typer.Exit as e:
        return int(e.exit_code)
    except Fail as e:
        err.print(f"error: {e}", markup=False, highlight=False)
        return e.code
    except ConfigError as e:
        err.print(f"configuration error: {e}", markup=False, highlight=False)
        return USAGE
    except (KeyboardInterrupt, typer.Abort):
        return 130
    except typer.TyperException as e:
        # Usage errors (unknown option, bad value): typer prints them, SPEC 9 says exit code 2.
        show = getattr(e, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {e}", markup=False)
        return USAGE
    return OK


if __name__ == "__main__":
    # `python -m intake.cli` runs this file as __main__, but the command modules of intake/commands
    # register on the importable intake.cli's `app`: dispatch through that module, not this copy.
    from intake.cli import main as _main

    sys.exit(_main())
