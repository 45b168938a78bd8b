"""The daemon: scheduled polls (and IDLE wake-ups), processing, periodic jobs, clean shutdown."""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import DBAPIError, OperationalError

from intake.mailbox import Mailbox, MailboxAuthError, MailboxError
from intake.pipeline import Services, Stage, TransientError
from intake.poller import Poller
from store.archive import ArchiveError

log = logging.getLogger(__name__)

# The first retry after a failed poll comes this soon; each further failure doubles it up to
# [mailbox] backoff_max, so a short outage is bridged quickly and a long one is not hammered.
FIRST_RETRY = 5.0
# How often a worker-only daemon (no mailbox of its own) looks for messages the pollers archived.
WORKER_INTERVAL = 3.0


class JobError(Exception):
    """A job's expected failure (its server is down, a credential is refused): a warning, not a bug."""


@dataclass
class Job:
    """A periodic job besides the poll (acknowledgements, ...): a name, an interval, a callable."""

    name: str
    every: timedelta
    fn: Callable[[], object]


JobFactory = Callable[[Services], "Job | None"]
ServerFactory = Callable[[Services, "Daemon"], Callable[[threading.Event], None]]
_JOB_FACTORIES: list[JobFactory] = []
_SERVER_FACTORY: list[ServerFactory] = []


def register_job(factory: JobFactory) -> JobFactory:
    """Contribute a periodic job to `intake run` (the factory may return None when disabled by config)."""
    if factory not in _JOB_FACTORIES:
        _JOB_FACTORIES.append(factory)
    return factory


def register_server(factory: ServerFactory) -> ServerFactory:
    """The dashboard registers how to serve itself in the daemon's main thread until the stop event."""
    _SERVER_FACTORY[:] = [factory]
    return factory


def job_factories() -> list[JobFactory]:
    _load_extensions()
    return list(_JOB_FACTORIES)


def server_factory() -> ServerFactory | None:
    _load_extensions()
    return _SERVER_FACTORY[0] if _SERVER_FACTORY else None


def _load_extensions() -> None:
    # The command modules import the areas that contribute jobs and the dashboard server.
    import intake.cli  # noqa: F401


@dataclass
class Health:
    last_cycle_at: datetime | None = None
    last_poll_ok_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    idle_active: bool = False
    jobs: dict[str, str] = field(default_factory=dict)


def install_signal_handlers(stop_event: threading.Event) -> None:
    """SIGTERM/SIGINT set `stop_event`: every loop stops at its next safe point and the process exits 0."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: shutting down after the current step", signal.Signals(signum).name)
        stop_event.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


class Daemon:
    """Runs `cycle` (poll then process) one at a time, on a schedule, on IDLE, and on retry."""

    def __init__(
        self,
        services: Services,
        stages: list[tuple[str, Stage]],
        password: str | None,
        jobs: list[Job] | None = None,
        stop_event: threading.Event | None = None,
        process: bool = True,
    ) -> None:
        self.services = services
        # A poller-only daemon archives and records; worker daemons (or `intake run` on another host) process.
        self.stages = stages if process else []
        self.process = process
        if not process:
            services.fresh.limit = 0  # nobody in this process would take the poller's hand-off
        self.password = password
        self.jobs = jobs or []
        self.stop_event = stop_event or threading.Event()
        self.health = Health()
        self._cycle_lock = threading.Lock()
        self._again = threading.Event()
        self._scheduler: BackgroundScheduler | None = None
        self._idle_thread: threading.Thread | None = None

    # -- one cycle --------------------------------------------------------------------------------

    def cycle(self) -> None:
        """Poll the mailbox (if enabled) and process what is pending. Never raises."""
        if not self._cycle_lock.acquire(blocking=False):
            # One poll at a time: remember to run again when the current one ends.
            self._again.set()
            return
        try:
            while True:
                self._again.clear()
                self._cycle_once()
                if not self._again.is_set() or self.stop_event.is_set():
                    break
        finally:
            self._cycle_lock.release()

    def _cycle_once(self) -> None:
        from intake.cycle import CycleResult, run_cycle

        mb = self.services.config.mailbox
        self.health.last_cycle_at = datetime.now(UTC)
        poller = Poller(self.services, self.password) if mb.enabled and self.password is not None else None
        try:
            if self.process:
                cyc = run_cycle(self.services, self.stages, poller, should_stop=self.stop_event.is_set)
            else:
                cyc = CycleResult(poll=poller.poll(should_stop=self.stop_event.is_set) if poller else None)
            res = cyc.poll
            if res is not None:
                if res.skipped:
                    log.info("poll skipped: %s", res.skipped)
                elif res.fetched or res.actions:
                    log.info(
                        "poll: %d fetched (%d new, %d known), %d server actions",
                        res.fetched,
                        res.new_messages,
                        res.duplicates,
                        res.actions,
                    )
                self.health.last_poll_ok_at = datetime.now(UTC)
                self.health.consecutive_failures = 0
                self.health.last_error = None
            if cyc.process.processed or cyc.process.quarantined:
                log.info("processed %d messages, %d quarantined", cyc.process.processed, cyc.process.quarantined)
        except MailboxAuthError as e:
            self._failed(str(e), auth=True)
        except MailboxError as e:
            self._failed(str(e))
        except (ArchiveError, TransientError, OperationalError, DBAPIError) as e:
            # The disk or the database is out for a while: expected in a season, retried with backoff.
            self._failed(f"{type(e).__name__}: {e}".splitlines()[0], what="storage")
        except Exception as e:  # the daemon must outlive a bug: logged with its traceback, then retried
            log.exception("cycle failed")
            self._failed(f"{type(e).__name__}: {e}")

    def _failed(self, error: str, *, auth: bool = False, what: str = "mailbox") -> None:
        self.health.consecutive_failures += 1
        self.health.last_error = error
        n = self.health.consecutive_failures
        cap = self.services.config.mailbox.backoff_max.total_seconds()
        delay = min(cap, FIRST_RETRY * 2 ** (n - 1)) * random.uniform(0.8, 1.2)
        if auth:
            # A wrong 授权码 will not fix itself in seconds; do not get the account locked.
            delay = cap
        log.warning("%s error (%d in a row), retry in %.0f s: %s", what, n, delay, error)
        self.trigger(delay)

    def trigger(self, delay: float = 0.0) -> None:
        """Run a cycle soon (IDLE saw new mail, or a retry after an error)."""
        if self._scheduler is None:
            return
        self._scheduler.add_job(
            self.cycle,
            "date",
            run_date=datetime.now(UTC) + timedelta(seconds=delay),
            id="cycle-now",
            replace_existing=True,
            misfire_grace_time=None,
        )

    # -- IDLE -------------------------------------------------------------------------------------

    def _idle_loop(self) -> None:
        cfg = self.services.config.mailbox
        failures = 0
        while not self.stop_event.is_set():
            mb = Mailbox(cfg, self.password or "")
            try:
                mb.connect()
                if not mb.can_idle:
                    log.info("%s does not advertise IDLE: scheduled polling only", mb.account)
                    return
                failures = 0
                self.health.idle_active = True
                renew_at = time.monotonic() + cfg.idle_renew.total_seconds()
                mb.idle_start()
                while not self.stop_event.is_set() and time.monotonic() < renew_at:
                    if mb.idle_poll(timeout=1.0):
                        self.trigger(0)
                mb.idle_stop()
            except MailboxError as e:
                failures += 1
                delay = min(cfg.backoff_max.total_seconds(), FIRST_RETRY * 2 ** (failures - 1))
                log.warning("IDLE connection lost (%s); reconnecting in %.0f s", e, delay)
                self.stop_event.wait(delay)
            finally:
                self.health.idle_active = False
                mb.close()

    # -- run --------------------------------------------------------------------------------------

    def start(self) -> None:
        cfg = self.services.config
        sched = BackgroundScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1})
        self._scheduler = sched
        # A worker without a mailbox looks for archived messages often: that is only a database query.
        every = cfg.mailbox.poll_interval.total_seconds()
        if self.password is None and self.process:
            every = min(every, WORKER_INTERVAL)
        sched.add_job(self.cycle, "interval", seconds=every, id="cycle", next_run_time=datetime.now(UTC))
        for job in self.jobs:
            sched.add_job(
                self._guard(job),
                "interval",
                seconds=job.every.total_seconds(),
                id=job.name,
                next_run_time=datetime.now(UTC) + timedelta(seconds=1),
            )
        sched.start()
        if cfg.mailbox.enabled and cfg.mailbox.idle and self.password is not None:
            self._idle_thread = threading.Thread(target=self._idle_loop, name="imap-idle", daemon=True)
            self._idle_thread.start()

    def _guard(self, job: Job) -> Callable[[], None]:
        def run() -> None:
            if self.stop_event.is_set():
                return
            try:
                job.fn()
                self.health.jobs[job.name] = "ok"
            except (JobError, ArchiveError, OperationalError, DBAPIError) as e:
                # An outage (its server, the database, the disk) repeats every run: one line each, no
                # traceback to bury the log.
                text = str(e).splitlines()[0] if str(e) else type(e).__name__
                log.warning("job %s: %s", job.name, text)
                self.health.jobs[job.name] = text
            except Exception as e:
                log.exception("job %s failed", job.name)
                self.health.jobs[job.name] = f"{type(e).__name__}: {e}"

        return run

    def stop(self, timeout: float = 60.0) -> None:
        """Ask every loop to stop at its next safe point and wait for the running cycle to end."""
        self.stop_event.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        got = self._cycle_lock.acquire(timeout=timeout)
        if got:
            self._cycle_lock.release()
        if self._idle_thread is not None:
            self._idle_thread.join(timeout=5)

    def install_signal_handlers(self) -> None:
        install_signal_handlers(self.stop_event)

    def run_forever(self, serve: Callable[[threading.Event], None] | None = None) -> None:
        """Start, then block until SIGTERM/SIGINT; `serve` (the dashboard) runs in this thread."""
        self.install_signal_handlers()
        if self.stop_event.is_set():
            return
        self.start()
        try:
            if serve is not None:
                serve(self.stop_event)
            else:
                while not self.stop_event.wait(1.0):
                    pass
        finally:
            self.stop()
