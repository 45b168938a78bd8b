"""The outbox: one row per received message, queued with its results, sent exactly once where SMTP allows."""

from __future__ import annotations

import getpass
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any

from sqlalchemy import and_, func, or_, text, update
from sqlmodel import Session, col, select

from intake.acks.decide import Decision, decide, reply_address
from intake.acks.render import Envelope, RenderError, compose, gather, render_body, template_context, with_date
from intake.config import Config, ConfigError
from intake.faults import crash_point
from intake.leases import _dead_local
from intake.mailbox import Mailbox, MailboxError
from intake.pipeline import Services
from intake.smtp import (
    SmtpAuthError,
    SmtpClient,
    SmtpConnectError,
    SmtpError,
    SmtpPermanentError,
    SmtpUncertainError,
)
from store.acks_models import AckOutbox
from store.models import Application, DocumentRow, Message

# Exactly once, and where it cannot be: a row is inserted by the pipeline stage in the same transaction as
# the application data (it is never visible before them), unique per message (reprocessing or a replay finds
# it and never adds a second). A sender claims a pending row with one conditional UPDATE (on PostgreSQL over
# a `FOR UPDATE SKIP LOCKED` subquery), so of two daemons exactly one gets it, and marks it `sending`. Just
# before the DATA command it commits `data_started_at` (durably). Then:
#
# * the server answers 250 -> `sent`; a 4xx/5xx answer -> back to `pending` with backoff, or `failed`;
# * the process dies, or the connection breaks while waiting for the answer to the message: the row stays
#   `sending`. When its lease has expired (or its owner is a dead process of this host), recovery looks at
#   it: without `data_started_at` nothing was handed over and it is queued again; with it, the server may
#   have the message. SMTP has no way to ask, so we do not guess: if `[ack] sent_check_folder` names the
#   folder where the server files what it sends, the ack's own Message-ID is looked for there (found ->
#   `sent`, absent after a grace period -> queued again); otherwise the row becomes `unknown` and staff
#   decide (`intake acks retry ID` resends it with the same Message-ID, `intake acks mark-sent ID`).
#
# The trade-off: in the window between handing the message over and recording the answer, we prefer an
# ack that staff must look at over a duplicate in an applicant's inbox. The window is one SMTP round trip.

log = logging.getLogger(__name__)

# A message handed over but not confirmed is looked for in sent_check_folder only after this long (the
# server files it a moment after accepting it), and given up on (-> unknown) after SENT_CHECK_GIVE_UP.
SENT_CHECK_GRACE = timedelta(minutes=2)
SENT_CHECK_GIVE_UP = timedelta(hours=1)
# Sent acks whose copy could not be appended to sent_folder are tried again for this long.
SENT_COPY_WINDOW = timedelta(days=7)
# At most this many acknowledgements per run of the daemon's job (every [ack] send_interval).
JOB_BATCH = 20
# How many of the newest messages of a folder are looked through for a Message-ID.
FOLDER_SCAN = 2000

UNKNOWN_REASON = (
    "the sender stopped after handing the message to the SMTP server and before recording its answer: it may "
    "or may not have been delivered. Look for it in the Sent folder, then `intake acks retry ID` (same "
    "Message-ID) or `intake acks mark-sent ID`."
)
SENDABLE_KINDS = ("receipt", "question", "limit_notice")


def new_message_id(message_pk: int | None, config: Config) -> str:
    return f"<ack-{message_pk or 0}-{secrets.token_hex(8)}@{config.ack.message_id_domain}>"


def _event(what: str, now: datetime, **detail: Any) -> dict[str, Any]:
    return {"at": now.isoformat(), "what": what, **{k: v for k, v in detail.items() if v is not None}}


# -- queueing (the pipeline stage) ---------------------------------------------------------------------


@dataclass
class Rendered:
    subject: str
    raw: bytes
    receipt_nos: list[str]


def render_for(
    session: Session, config: Config, msg: Message, kind: str, recipient: str, ack_message_id: str, now: datetime
) -> Rendered:
    """Compose the acknowledgement of `kind` for `msg` from what the store knows now."""
    facts = gather(session, config, msg)
    body = render_body(config, kind, template_context(config, facts))
    env = Envelope(
        recipient=recipient,
        original_subject=msg.subject or "",
        original_message_id=msg.message_id,
        original_references=tuple(msg.references or []),
    )
    subject, raw = compose(config, env, body, ack_message_id, now)
    return Rendered(subject, raw, facts.receipt_nos)


def receipt_numbers(session: Session, msg: Message) -> list[str]:
    """Receipt numbers of the applications this message's documents belong to."""
    q = (
        select(Application.receipt_no)
        .join(DocumentRow, col(DocumentRow.application_pk) == col(Application.id))
        .where(DocumentRow.message_pk == msg.id)
        .distinct()
    )
    return sorted(str(r) for r in session.exec(q))


def _lock_recipient(session: Session, recipient: str) -> None:
    """Serialise the rate-limit count per recipient between processes (SQLite serialises all writers)."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        key = int.from_bytes(sha256(recipient.encode()).digest()[:8], "big", signed=True)
        session.connection().execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def recent_count(session: Session, recipient: str, since: datetime, exclude_message: int | None) -> int:
    """Acknowledgements (not suppressions) queued for `recipient` since `since`."""
    q = (
        select(func.count())
        .select_from(AckOutbox)
        .where(AckOutbox.recipient == recipient)
        .where(col(AckOutbox.created_at) >= since)
        .where(AckOutbox.status != "suppressed")
    )
    if exclude_message is not None:
        q = q.where(AckOutbox.message_pk != exclude_message)
    return int(session.exec(q).one())


def enqueue(session: Session, config: Config, msg: Message, now: datetime) -> AckOutbox:
    """Decide and compose the acknowledgement of `msg`, in the caller's transaction; idempotent per message.

    A message that already has a row keeps its decision; a row still waiting to be sent gets the newest
    findings (a replay after a parser fix), under the same Message-ID.
    """
    existing = session.exec(select(AckOutbox).where(AckOutbox.message_pk == msg.id)).first()
    if existing is not None:
        _refresh(session, config, msg, existing, now)
        return existing
    decision = decide(msg, config)
    kind, reasons = decision.kind, list(decision.reasons)
    if not decision.suppressed:
        assert decision.recipient is not None
        _lock_recipient(session, decision.recipient)
        window = config.ack.rate_window
        n = recent_count(session, decision.recipient, now - window, msg.id)
        limit = config.ack.rate_limit
        if n == limit:
            kind = "limit_notice"
        elif n > limit:
            hours = round(window.total_seconds() / 3600)
            reasons = [
                f"per-sender limit: {n} acknowledgements to {decision.recipient} in the last {hours} h "
                f"(limit {limit}, then one notice)"
            ]
            kind = "none"
    row = AckOutbox(
        message_pk=msg.id or 0,
        kind=kind,
        recipient=decision.recipient,
        created_at=now,
        updated_at=now,
    )
    if decision.note:
        row.history = [_event("recipient", now, note=decision.note)]
    if kind == "none":
        row.status = "suppressed"
        row.reason = "; ".join(reasons)
        if msg.msg_class == "submission":
            row.receipt_nos = receipt_numbers(session, msg)
    else:
        assert decision.recipient is not None
        row.ack_message_id = new_message_id(msg.id, config)
        row.status = "dry_run" if config.ack.dry_run else "pending"
        try:
            r = render_for(session, config, msg, kind, decision.recipient, row.ack_message_id, now)
            row.subject, row.raw, row.receipt_nos = r.subject, r.raw, r.receipt_nos
        except RenderError as e:
            # A broken custom template must not stop the message's processing: staff see this row, fix the
            # template, and `intake acks retry ID` composes it again.
            row.status = "failed"
            row.reason = f"could not compose: {e}"
            log.error("acknowledgement of message %s not composed: %s", msg.id, e)
    session.add(row)
    session.flush()
    log.info(
        "ack for message %s: %s%s",
        msg.id,
        row.status,
        f" ({row.reason})" if row.reason else f" to {row.recipient} ({row.kind})",
    )
    return row


def _refresh(session: Session, config: Config, msg: Message, row: AckOutbox, now: datetime) -> None:
    if row.status not in ("pending", "dry_run") or row.kind not in SENDABLE_KINDS or not row.recipient:
        return
    try:
        r = render_for(session, config, msg, row.kind, row.recipient, row.ack_message_id or "", now)
    except RenderError as e:
        log.error("acknowledgement %s not recomposed, the queued text stays: %s", row.id, e)
        return
    # Conditional: a sender that claimed the row meanwhile keeps what it is sending.
    session.exec(
        update(AckOutbox)
        .where(col(AckOutbox.id) == row.id)
        .where(col(AckOutbox.status).in_(("pending", "dry_run")))
        .values(subject=r.subject, raw=r.raw, receipt_nos=r.receipt_nos, updated_at=now)
    )


# -- sending ---------------------------------------------------------------------------------------------


@dataclass
class SendReport:
    sent: int = 0
    deferred: int = 0  # a temporary refusal: tried again later
    failed: int = 0
    unknown: int = 0
    requeued: int = 0  # recovered from a dead sender, or not found in the Sent folder: queued again
    confirmed: int = 0  # recovered from a dead sender and found in the Sent folder
    copied: int = 0
    skipped: str | None = None
    error: str | None = None  # the server could not be reached / refused the login: nothing was tried
    ids: list[int] = field(default_factory=list)


class _LeaseLost(Exception):
    """Another process took the row over (our lease expired): do not send it."""


class AckSender:
    """Sends what is pending: used by the daemon's job (every [ack] send_interval) and `intake acks send`."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.config = services.config
        self.owner = services.owner
        # After the server could not be reached: no new attempt before this (the daemon's job).
        self.pause_until: datetime | None = None
        self.connect_failures = 0
        self.last_error: str | None = None
        # Since when sending has been held back by [ack] max_per_hour (None: it is not).
        self.capped_since: datetime | None = None

    @property
    def engine(self) -> Any:
        # Durable commits: what we record about the outside world must survive a power cut.
        return self.services.engine

    def now(self) -> datetime:
        return self.services.clock()

    # -- the job ----------------------------------------------------------------------------------

    def run_job(self) -> SendReport:
        """One run of the daemon's job: honours the pause after connection failures; raises on a failure so
        the daemon's health shows it."""
        now = self.now()
        if self.pause_until is not None and now < self.pause_until:
            return SendReport(skipped=f"paused until {self.pause_until.isoformat()} after: {self.last_error}")
        # A bounded batch per run: a SIGTERM never waits for a long queue to drain.
        report = self.run(limit=JOB_BATCH)
        if report.error:
            from intake.daemon import JobError

            raise JobError(report.error)
        return report

    def run(
        self,
        *,
        only: int | None = None,
        limit: int | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> SendReport:
        """Recover rows of dead senders, send the pending rows that are due (at most `limit`, or only `only`),
        copy what was sent to the Sent folder."""
        report = SendReport()
        self.recover(report)
        if self.config.ack.dry_run:
            report.skipped = "[ack] dry_run = true: nothing is sent"
            return report
        # Read the 授权码 before claiming anything: a missing variable must not leave a row claimed.
        client = SmtpClient(self.config.smtp, self.config.secret(self.config.smtp.password_env))
        started = self.now()
        tried = 0
        # A staff member sending one acknowledgement by id is not held back by the hourly cap.
        budget = None if only is not None else self.hour_budget()
        try:
            while not should_stop() and (limit is None or tried < limit):
                if budget is not None and budget <= 0:
                    report.skipped = self._capped()
                    break
                row = self.claim(only=only)
                if row is None:
                    break
                tried += 1
                if budget is not None:
                    budget -= 1
                outcome = self._send_one(client, row, report)
                report.ids.append(row.id or 0)
                if outcome == "connection" or only is not None:
                    break
        finally:
            client.close()
        if report.error is None:
            self.connect_failures = 0
            self.pause_until = None
            self.last_error = None
        self.copy_to_sent_folder(report, started)
        return report

    def hour_budget(self) -> int | None:
        """How many more acknowledgements may go to the server this hour ([ack] max_per_hour), None: no cap.

        Counts what was handed over in the last hour (sent, or possibly sent) and what is being sent now. Two
        daemons may each send one more than the cap between them; it is a bound on abuse, not an invoice.
        """
        cap = self.config.ack.max_per_hour
        if not cap:
            return None
        since = self.now() - timedelta(hours=1)
        with Session(self.engine) as s:
            n = s.exec(
                select(func.count())
                .select_from(AckOutbox)
                .where(
                    or_(
                        and_(col(AckOutbox.status) == "sent", col(AckOutbox.sent_at) >= since),
                        and_(col(AckOutbox.status) == "unknown", col(AckOutbox.data_started_at) >= since),
                        col(AckOutbox.status) == "sending",
                    )
                )
            ).one()
        left = max(0, cap - int(n))
        if left and self.capped_since is not None:
            log.info("acknowledgements: under the hourly cap again; sending resumes")
            self.capped_since = None
        return left

    def _capped(self) -> str:
        cap = self.config.ack.max_per_hour
        text = (
            f"hourly cap reached: {cap} acknowledgements handed to the server in the last hour "
            "([ack] max_per_hour); the others wait"
        )
        if self.capped_since is None:
            self.capped_since = self.now()
            with Session(self.engine) as s:
                waiting = s.exec(select(func.count()).select_from(AckOutbox).where(AckOutbox.status == "pending")).one()
            # Once per episode: a flood of forged senders, or a rush bigger than the cap allows.
            log.warning("%s (%d pending)", text, waiting)
        return text

    def claim(self, *, only: int | None = None) -> AckOutbox | None:
        """Take the oldest due pending row (or `only`) for this process: one conditional UPDATE."""
        now = self.now()
        sub = (
            select(AckOutbox.id)
            .where(AckOutbox.status == "pending")
            .where(or_(col(AckOutbox.next_attempt_at).is_(None), col(AckOutbox.next_attempt_at) <= now))
            .order_by(col(AckOutbox.id))
            .limit(1)
        )
        if only is not None:
            sub = sub.where(AckOutbox.id == only)
        if self.engine.dialect.name == "postgresql":
            sub = sub.with_for_update(skip_locked=True)
        with Session(self.engine, expire_on_commit=False) as s:
            got = s.exec(
                update(AckOutbox)
                .where(col(AckOutbox.id) == sub.scalar_subquery())
                .where(col(AckOutbox.status) == "pending")
                .values(
                    status="sending",
                    lease_owner=self.owner,
                    lease_until=now + self.config.ack.lease,
                    attempts=AckOutbox.attempts + 1,
                    data_started_at=None,
                    updated_at=now,
                )
                .returning(col(AckOutbox.id))
            ).first()
            s.commit()
            if got is None:
                return None
            return s.exec(select(AckOutbox).where(AckOutbox.id == got[0])).one()

    def _update(
        self, row_id: int, *, where_status: tuple[str, ...] = ("sending",), owner: bool = True, **values: Any
    ) -> bool:
        """A conditional update of one row, committed durably; False when the row was no longer ours."""
        with Session(self.engine) as s:
            q = update(AckOutbox).where(col(AckOutbox.id) == row_id).where(col(AckOutbox.status).in_(where_status))
            if owner:
                q = q.where(col(AckOutbox.lease_owner) == self.owner)
            res = s.exec(q.values(updated_at=self.now(), **values))
            s.commit()
            return bool(res.rowcount)

    def _send_one(self, client: SmtpClient, row: AckOutbox, report: SendReport) -> str:
        assert row.id is not None
        crash_point("ack.claimed")
        if row.raw is None or not row.recipient:
            self._update(
                row.id,
                status="failed",
                reason="nothing to send (no message composed, or no address)",
                lease_owner=None,
                lease_until=None,
            )
            report.failed += 1
            return "failed"
        raw = with_date(row.raw, self.now(), self.config)

        def before_data() -> None:
            # The last moment at which the message has certainly not been handed over: from here on an
            # interruption leaves a row that must not simply be sent again.
            if not self._update(row.id or 0, data_started_at=self.now(), raw=raw):
                raise _LeaseLost
            crash_point("ack.before_data")

        try:
            reply = client.send(raw, mail_from=self.config.smtp.from_, rcpt=row.recipient, before_data=before_data)
        except _LeaseLost:
            log.warning("ack %s: taken over by another sender; not sent by this one", row.id)
            return "lost"
        except (SmtpAuthError, SmtpConnectError) as e:
            # Not this message's fault: give it back without counting the attempt, and stop this run.
            self._update(
                row.id,
                status="pending",
                attempts=row.attempts - 1,
                last_error=str(e),
                data_started_at=None,
                lease_owner=None,
                lease_until=None,
            )
            self._connection_failed(e, report)
            return "connection"
        except SmtpUncertainError as e:
            self._uncertain(row, str(e), report)
            return "unknown"
        except SmtpPermanentError as e:
            self._update(
                row.id,
                status="failed",
                reason=f"refused by the server: {e}",
                last_error=str(e),
                data_started_at=None,
                lease_owner=None,
                lease_until=None,
            )
            log.error("ack %s to %s refused for good: %s", row.id, row.recipient, e)
            report.failed += 1
            return "failed"
        except SmtpError as e:
            return self._defer(row, str(e), report)
        crash_point("ack.after_data")
        now = self.now()
        # Unconditional on the owner: it was sent, whoever holds the row now.
        self._update(
            row.id,
            where_status=("sending", "unknown", "pending"),
            owner=False,
            status="sent",
            sent_at=now,
            smtp_reply=reply,
            last_error=None,
            reason=None,
            lease_owner=None,
            lease_until=None,
        )
        log.info("ack %s sent to %s (%s): %s", row.id, row.recipient, row.ack_message_id, reply)
        report.sent += 1
        return "sent"

    def _defer(self, row: AckOutbox, error: str, report: SendReport) -> str:
        assert row.id is not None
        ack = self.config.ack
        if row.attempts >= ack.max_attempts:
            self._update(
                row.id,
                status="failed",
                reason=f"gave up after {row.attempts} tries: {error}",
                last_error=error,
                data_started_at=None,
                lease_owner=None,
                lease_until=None,
            )
            log.error("ack %s to %s failed after %d tries: %s", row.id, row.recipient, row.attempts, error)
            report.failed += 1
            return "failed"
        delay = min(ack.retry_max, ack.retry_base * 2 ** max(0, row.attempts - 1))
        self._update(
            row.id,
            status="pending",
            next_attempt_at=self.now() + delay,
            last_error=error,
            data_started_at=None,
            lease_owner=None,
            lease_until=None,
        )
        log.warning(
            "ack %s to %s: %s; try %d of %d in %s",
            row.id,
            row.recipient,
            error,
            row.attempts + 1,
            ack.max_attempts,
            delay,
        )
        report.deferred += 1
        return "deferred"

    def _uncertain(self, row: AckOutbox, error: str, report: SendReport) -> None:
        assert row.id is not None
        if self.config.ack.sent_check_folder:
            # Leave it to recovery, which looks for it in the Sent folder once the server had time to file it.
            self._update(row.id, lease_until=self.now(), last_error=error)
            log.warning("ack %s: %s; will look for it in %s", row.id, error, self.config.ack.sent_check_folder)
            return
        self._update(
            row.id,
            status="unknown",
            reason=f"{UNKNOWN_REASON} ({error})",
            last_error=error,
            lease_owner=None,
            lease_until=None,
        )
        log.error("ack %s to %s: outcome unknown, left for staff: %s", row.id, row.recipient, error)
        report.unknown += 1

    def _connection_failed(self, e: SmtpError, report: SendReport) -> None:
        ack = self.config.ack
        self.connect_failures += 1
        if isinstance(e, SmtpAuthError):
            # A wrong 授权码 does not fix itself; repeated failed logins can get the account locked.
            delay = ack.retry_max
        else:
            delay = min(ack.retry_max, ack.retry_base * 2 ** (self.connect_failures - 1))
        self.pause_until = self.now() + delay
        self.last_error = str(e)
        report.error = str(e)
        log.warning("SMTP: %s; acknowledgements wait (next try in %s)", e, delay)

    # -- recovery ---------------------------------------------------------------------------------

    def recover(self, report: SendReport) -> None:
        """Rows left `sending` by a dead or stalled sender: queued again, confirmed, or marked unknown."""
        now = self.now()
        with Session(self.engine, expire_on_commit=False) as s:
            rows = list(s.exec(select(AckOutbox).where(AckOutbox.status == "sending")))
        stale = [
            r
            for r in rows
            if r.lease_until is None or r.lease_until < now or (r.lease_owner and _dead_local(r.lease_owner))
        ]
        to_check: list[AckOutbox] = []
        for r in stale:
            if r.data_started_at is None:
                if self._settle(
                    r,
                    status="pending",
                    event="requeued",
                    note="the sender stopped before handing the message over: queued again",
                ):
                    report.requeued += 1
            elif self.config.ack.sent_check_folder:
                to_check.append(r)
            elif self._settle(r, status="unknown", reason=UNKNOWN_REASON, event="unknown", note=UNKNOWN_REASON):
                log.error("ack %s to %s: outcome unknown, left for staff", r.id, r.recipient)
                report.unknown += 1
        if to_check:
            self._check_sent_folder(to_check, report)

    def _settle(self, r: AckOutbox, *, status: str, event: str, note: str, **values: Any) -> bool:
        """Move a stale `sending` row on, provided nobody else did meanwhile (same owner and lease)."""
        now = self.now()
        with Session(self.engine) as s:
            q = (
                update(AckOutbox)
                .where(col(AckOutbox.id) == r.id)
                .where(col(AckOutbox.status) == "sending")
                .where(
                    col(AckOutbox.lease_owner).is_(None)
                    if r.lease_owner is None
                    else col(AckOutbox.lease_owner) == r.lease_owner
                )
            )
            if status == "pending":
                values.setdefault("data_started_at", None)
                values.setdefault("next_attempt_at", None)
            res = s.exec(
                q.values(
                    status=status,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                    history=[*(r.history or []), _event(event, now, note=note, owner=r.lease_owner)],
                    **values,
                )
            )
            s.commit()
            return bool(res.rowcount)

    def _check_sent_folder(self, rows: list[AckOutbox], report: SendReport) -> None:
        folder = self.config.ack.sent_check_folder
        now = self.now()
        try:
            found = self._find_in_folder(folder, {r.ack_message_id or "" for r in rows})
        except (MailboxError, ConfigError) as e:
            log.warning("cannot look in %s for interrupted acknowledgements (will try again): %s", folder, e)
            found = None
        for r in rows:
            started = r.data_started_at or now
            if found is not None and (r.ack_message_id or "").lower() in found:
                settled = self._settle(
                    r,
                    status="sent",
                    event="confirmed",
                    note=f"found in folder {folder}",
                    sent_at=started,
                    smtp_reply=f"(no answer recorded; found in {folder})",
                    reason=None,
                )
                report.confirmed += int(settled)
            elif now - started >= SENT_CHECK_GIVE_UP:
                settled = self._settle(
                    r,
                    status="unknown",
                    reason=f"{UNKNOWN_REASON} (could not settle it from {folder})",
                    event="unknown",
                    note=f"not settled from {folder} within {SENT_CHECK_GIVE_UP}",
                )
                report.unknown += int(settled)
            elif found is not None and now - started >= SENT_CHECK_GRACE:
                # The server files what it accepts at once; absent after the grace period means not accepted.
                settled = self._settle(
                    r,
                    status="pending",
                    event="requeued",
                    note=f"not in {folder} {SENT_CHECK_GRACE} after it was handed over: queued again",
                )
                report.requeued += int(settled)
            else:
                continue
            if settled:
                log.warning("ack %s: settled from %s: %s", r.id, folder, "see its history")

    def _imap_password(self) -> str:
        return self.config.secret(self.config.mailbox.password_env)

    def _find_in_folder(self, folder: str, message_ids: set[str]) -> set[str]:
        """Which of `message_ids` (lower-cased) are among the newest messages of `folder`."""
        mb = Mailbox(self.config.mailbox, self._imap_password())
        try:
            mb.connect()
            return _ids_in(mb, folder, {m.lower() for m in message_ids if m})
        finally:
            mb.close()

    # -- copies in the Sent folder -------------------------------------------------------------------

    def copy_to_sent_folder(self, report: SendReport, started: datetime) -> None:
        """APPEND each sent ack not copied yet to [ack] sent_folder (failures are retried by later runs)."""
        folder = self.config.ack.sent_folder
        if not folder:
            return
        now = self.now()
        with Session(self.engine, expire_on_commit=False) as s:
            rows = list(
                s.exec(
                    select(AckOutbox)
                    .where(AckOutbox.status == "sent")
                    .where(col(AckOutbox.copied_at).is_(None))
                    .where(col(AckOutbox.raw).is_not(None))
                    .where(col(AckOutbox.sent_at) >= now - SENT_COPY_WINDOW)
                    .order_by(col(AckOutbox.id))
                )
            )
        if not rows:
            return
        mb: Mailbox | None = None
        try:
            mb = Mailbox(self.config.mailbox, self._imap_password())
            mb.connect()
            # Rows left over by an earlier run may have been appended just before a crash: look first.
            leftovers = {(r.ack_message_id or "").lower() for r in rows if r.sent_at and r.sent_at < started}
            present = _ids_in(mb, folder, leftovers) if leftovers else set()
            for r in rows:
                if (r.ack_message_id or "").lower() not in present:
                    mb.append(folder, r.raw or b"")
                with Session(self.engine) as s:
                    s.exec(update(AckOutbox).where(col(AckOutbox.id) == r.id).values(copied_at=self.now()))
                    s.commit()
                report.copied += 1
        except (MailboxError, ConfigError) as e:
            log.warning("copy of sent acknowledgements to %s failed (will try again): %s", folder, e)
        finally:
            if mb is not None:
                mb.close()


def _ids_in(mb: Mailbox, folder: str, wanted: set[str]) -> set[str]:
    try:
        status = mb.select(folder)
    except MailboxError:
        # No such folder (yet): nothing is in it. A broken connection fails the next command as well.
        mb.noop()
        return set()
    uids = mb.uids_from(max(1, status.uidnext - FOLDER_SCAN))
    have = {h.message_id.strip().lower() for h in mb.headers(uids) if h.message_id}
    return wanted & have


# -- staff actions ---------------------------------------------------------------------------------------


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def retry(services: Services, ack_id: int, *, force: bool = False, user: str | None = None) -> AckOutbox:
    """Queue one acknowledgement (again): failed, unknown, suppressed, dry-run, or with `force` a sent one.

    A row without a composed message (suppressed, or a template error) is composed now. An unknown or
    failed one keeps its Message-ID, so a mail client that did get the first copy shows one message.
    """
    config = services.config
    now = services.clock()
    with Session(services.engine, expire_on_commit=False) as s:
        row = s.get(AckOutbox, ack_id)
        if row is None:
            raise LookupError(f"no acknowledgement with id {ack_id}")
        if row.status == "sending":
            raise ValueError(f"acknowledgement {ack_id} is being sent right now (by {row.lease_owner})")
        if row.status == "sent" and not force:
            raise ValueError(
                f"acknowledgement {ack_id} was sent at {row.sent_at.isoformat() if row.sent_at else '?'}; "
                "use --force to send it again"
            )
        msg = s.get(Message, row.message_pk)
        if msg is None:
            raise LookupError(f"message {row.message_pk} of acknowledgement {ack_id} is gone")
        recipient = row.recipient or reply_address(msg)
        if not recipient:
            raise ValueError(f"message {row.message_pk} has no usable address to reply to")
        kind = row.kind
        if kind not in SENDABLE_KINDS:
            kind = "receipt" if msg.msg_class == "submission" else "question"
        msg_id = row.ack_message_id or new_message_id(msg.id, config)
        if force and row.status == "sent":
            msg_id = new_message_id(msg.id, config)
        try:
            r = render_for(s, config, msg, kind, recipient, msg_id, now)
        except RenderError as e:
            raise ValueError(f"cannot compose it: {e}") from e
        row.history = [
            *(row.history or []),
            _event("retry", now, by=user or _user(), previous=row.status, reason=row.reason),
        ]
        row.status = "dry_run" if config.ack.dry_run else "pending"
        row.kind, row.recipient, row.ack_message_id = kind, recipient, msg_id
        row.subject, row.raw, row.receipt_nos = r.subject, r.raw, r.receipt_nos
        row.attempts = 0
        row.next_attempt_at = None
        row.data_started_at = None
        row.lease_owner = row.lease_until = None
        row.last_error = row.reason = None
        row.updated_at = now
        s.add(row)
        s.commit()
        return row


def mark_sent(services: Services, ack_id: int, *, user: str | None = None, note: str = "") -> AckOutbox:
    """Staff found an `unknown` (or failed) acknowledgement in the Sent folder / the applicant confirmed it."""
    now = services.clock()
    with Session(services.engine, expire_on_commit=False) as s:
        row = s.get(AckOutbox, ack_id)
        if row is None:
            raise LookupError(f"no acknowledgement with id {ack_id}")
        if row.status not in ("unknown", "failed"):
            raise ValueError(
                f"acknowledgement {ack_id} is {row.status}: only unknown or failed ones can be marked sent"
            )
        row.history = [
            *(row.history or []),
            _event("mark-sent", now, by=user or _user(), previous=row.status, note=note or None),
        ]
        row.status = "sent"
        row.sent_at = row.data_started_at or now
        row.smtp_reply = row.smtp_reply or "(marked sent by staff)"
        row.reason = None
        row.updated_at = now
        s.add(row)
        s.commit()
        return row


def preview(session: Session, config: Config, msg: Message, now: datetime) -> tuple[Decision, Rendered | None]:
    """What the acknowledgement of `msg` would be now (nothing is stored)."""
    d = decide(msg, config)
    if d.recipient is None:
        return d, None
    kind = d.kind if d.kind != "none" else ("receipt" if msg.msg_class == "submission" else "question")
    return d, render_for(session, config, msg, kind, d.recipient, new_message_id(msg.id, config), now)
