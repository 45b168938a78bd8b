"""Message processing: stages with one signature, run in the order the configuration lists them."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from intake.config import Config, ConfigError
from intake.faults import crash_point
from intake.leases import owner_id, reap_dead_leases
from parsers.archives import ArchiveLimits
from parsers.documents import ParseOptions
from parsers.sandbox import ParserPool
from store.archive import Archive, ArchiveError
from store.models import MESSAGES, Message, QuarantineEvent
from store.types import utcnow

log = logging.getLogger(__name__)
# Stages of several worker threads may ask for the parser pool at once: one pool per process.
_POOL_LOCK = threading.Lock()

# A message whose processing kills the process this many times is quarantined instead of retried
# forever (a poison message must not take the daemon down on every restart).
MAX_ATTEMPTS = 3
LEASE = timedelta(minutes=15)


class TransientError(Exception):
    """Processing could not run for a reason outside the message (database down, disk full)."""


class Quarantine(Exception):
    """Control flow from a stage: this message cannot be processed; keep it and say why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FreshRaw:
    """Messages just archived and committed by this process's poller, kept in memory (bounded) until its
    worker processes them: the bytes it hashed and wrote, without a second read and sha256 from disk."""

    # A message a worker of this process has not taken by then was taken by another process (scale-out).
    MAX_AGE = 300.0

    def __init__(self, limit: int = 24 * 1024 * 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit  # 0: off (a poller-only daemon has no worker to hand anything to)
        self._clock = clock
        self._items: dict[int, tuple[float, bytes]] = {}
        self._size = 0
        self._lock = threading.Lock()

    def put(self, message_pk: int, raw: bytes) -> None:
        with self._lock:
            now = self._clock()
            while self._items:
                pk, (at, old) = next(iter(self._items.items()))
                if now - at <= self.MAX_AGE:
                    break  # in insertion order: the rest are younger
                del self._items[pk]
                self._size -= len(old)
            # Full (a worker far behind): the newest are left out, not the oldest, which the worker takes
            # first; they are read from the archive as usual.
            if message_pk in self._items or self._size + len(raw) > self.limit:
                return
            self._items[message_pk] = (now, raw)
            self._size += len(raw)

    def pop(self, message_pk: int) -> bytes | None:
        with self._lock:
            item = self._items.pop(message_pk, None)
            if item is None:
                return None
            self._size -= len(item[1])
            return item[1]


@dataclass
class Services:
    """What stages may use: configuration, database, archives, parsers. Built once per process."""

    config: Config
    # Durable commits: what must hold before acting on the outside world (poller, sent acks, staff).
    engine: Engine
    archive: Archive
    blobs: Archive
    # Relaxed commits (no fsync) for processing, which can always be redone from the archive.
    work_engine: Engine | None = None
    owner: str = field(default_factory=owner_id)
    clock: Callable[[], datetime] = utcnow
    # Long-lived helpers that stages create lazily (the parser pool, ...), closed by close().
    extras: dict[str, Any] = field(default_factory=dict)
    # Raw bytes the poller of this process has just archived, for its worker to use instead of reading
    # them back from disk.
    fresh: FreshRaw = field(default_factory=lambda: FreshRaw())

    @property
    def processing_engine(self) -> Engine:
        return self.work_engine or self.engine

    def parser_pool(self) -> ParserPool:
        """The sandboxed document parsers (`[parsing] workers` processes), started on first use."""
        return self._pool("parser_pool", self.config.parsing.workers)

    def message_parser(self) -> ParserPool:
        """The sandboxed message parsers, one process per processing thread (`[pipeline] threads`), so that
        no thread waits for another's message; kept apart from the document parsers, whose OCR can take
        seconds and a gigabyte."""
        return self._pool("message_parser", self.config.pipeline.threads)

    def _pool(self, key: str, workers: int) -> ParserPool:
        with _POOL_LOCK:
            pool = self.extras.get(key)
            if pool is None:
                pool = ParserPool(parse_options(self.config), workers=workers)
                self.extras[key] = pool
            return pool

    def close(self) -> None:
        for value in self.extras.values():
            closer = getattr(value, "close", None)
            if callable(closer):
                closer()
        self.extras.clear()


def parse_options(config: Config) -> ParseOptions:
    """The parsers' knobs and sandbox limits from the [parsing] section."""
    import shutil

    p = config.parsing
    return ParseOptions(
        soffice=shutil.which(p.soffice) if p.soffice else None,
        ocr=p.ocr,
        ocr_max_pages=p.ocr_max_pages,
        time_limit_s=p.time_limit.total_seconds(),
        memory_limit_mb=max(256, p.memory_limit // (1024 * 1024)),
        archive_limits=ArchiveLimits(
            max_members=p.archive_max_members, max_total_size=p.archive_max_total, max_ratio=float(p.archive_max_ratio)
        ),
    )


@dataclass
class MessageContext:
    """One message travelling through the stages; stages read and add to it."""

    services: Services
    session: Session
    message: Message
    raw: bytes
    # Filled in by stages, for the stages after them.
    data: dict[str, Any] = field(default_factory=dict)


Stage = Callable[[MessageContext], None]

_REGISTRY: dict[str, Stage] = {}


def stage(name: str, *, slow: bool = False) -> Callable[[Stage], Stage]:
    """Register a stage under the name the configuration uses.

    A `slow` stage (OCR, LibreOffice) gets the earlier stages' writes committed before it runs, so no
    write transaction stays open while it works; fast stages share one commit per message.
    """

    def register(fn: Stage) -> Stage:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise RuntimeError(f"two stages registered as {name!r}")
        _REGISTRY[name] = fn
        if slow:
            _SLOW.add(name)
        return fn

    return register


_SLOW: set[str] = set()


def _load_stage_modules() -> None:
    import intake.stages as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")


def resolve_stages(names: list[str]) -> list[tuple[str, Stage]]:
    """Stage functions for the configured names, in order; an unknown name is a configuration error."""
    _load_stage_modules()
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise ConfigError(
            f"pipeline.stages: unknown stage(s) {', '.join(unknown)}; known: {', '.join(sorted(_REGISTRY))}"
        )
    return [(n, _REGISTRY[n]) for n in names]


@dataclass
class ProcessResult:
    processed: int = 0
    quarantined: int = 0
    quarantined_ids: list[int] = field(default_factory=list)


def claim(services: Services, *, limit: int = 10, only: int | None = None) -> list[int]:
    """Lease up to `limit` of the oldest unprocessed messages to this process (one commit for all).

    Returns [] only when nothing is left to claim: candidates that another thread or daemon took between
    the SELECT and the UPDATE are followed by the next ones.
    """
    while True:
        now = services.clock()
        candidates, claimed = _claim_once(services, now, limit, only)
        if claimed or not candidates:
            return claimed


def _claim_once(services: Services, now: datetime, limit: int, only: int | None) -> tuple[list[int], list[int]]:
    claimed: list[int] = []
    with Session(services.processing_engine) as s:
        q = (
            select(Message.id)
            .where(Message.state == "new")
            .where(or_(col(Message.lease_until).is_(None), col(Message.lease_until) < now))
            .order_by(col(Message.received_at).asc().nulls_last(), col(Message.id))
            .limit(limit)
        )
        if only is not None:
            q = q.where(Message.id == only)
        if services.engine.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        candidates = [int(m) for m in s.exec(q) if m is not None]
        if candidates:
            # One conditional UPDATE: of two processes racing for a row, exactly one changes it, and
            # RETURNING says which rows were ours.
            rows = s.exec(
                update(Message)
                .where(col(Message.id).in_(candidates))
                .where(col(Message.state) == "new")
                .where(or_(col(Message.lease_until).is_(None), col(Message.lease_until) < now))
                .values(lease_owner=services.owner, lease_until=now + LEASE, attempts=Message.attempts + 1)
                .returning(col(Message.id))
            )
            got = {int(r[0]) for r in rows}
            claimed = [m for m in candidates if m in got]  # never more than `limit`: the SELECT's LIMIT
        s.commit()
    return candidates, claimed


def claim_next(services: Services, *, only: int | None = None) -> int | None:
    """Lease the oldest unprocessed message (or `only` that one); None when there is none."""
    got = claim(services, limit=1, only=only)
    return got[0] if got else None


def process_message(services: Services, message_pk: int, stages: list[tuple[str, Stage]]) -> str:
    """Run every stage on one leased message; returns the final state ("processed" / "quarantined")."""
    with Session(services.processing_engine, expire_on_commit=False) as s:
        msg = s.get(Message, message_pk)
        if msg is None:
            return "missing"
        if msg.attempts > MAX_ATTEMPTS:
            return _quarantine(
                s,
                msg,
                "pipeline",
                f"processing was interrupted {msg.attempts - 1} times (the process died)",
                None,
            )
        raw = services.fresh.pop(message_pk)
        if raw is None:
            try:
                raw = services.archive.get(msg.sha256, verify=True)
            except ArchiveError as e:
                return _quarantine(s, msg, "archive", str(e), None)
        ctx = MessageContext(services=services, session=s, message=msg, raw=raw)
        for name, fn in stages:
            try:
                if name in _SLOW:
                    # What the earlier stages wrote is committed: a slow stage (OCR) must not hold a
                    # write transaction open. A crash restarts the message from its first stage.
                    s.commit()
                fn(ctx)
                crash_point(f"stage.{name}")
            except Quarantine as q:
                s.rollback()
                return _quarantine(s, msg, name, q.reason, None)
            except (OperationalError, DBAPIError, ArchiveError) as e:
                # The database went away or the disk is full: not this message's fault. Give the
                # message back (this attempt does not count) and let the caller back off.
                s.rollback()
                _release(services, message_pk)
                raise TransientError(f"stage {name}: {type(e).__name__}: {e}") from e
            except Exception as e:
                s.rollback()
                log.exception("stage %s failed on message %s (%s)", name, msg.id, msg.sha256[:12])
                return _quarantine(
                    s,
                    msg,
                    name,
                    f"internal error in stage {name}: {type(e).__name__}: {e}",
                    traceback.format_exc(),
                )
        done = {
            "state": "processed",
            "processed_at": services.clock(),
            "lease_owner": None,
            "lease_until": None,
            "quarantine_reason": None,
        }
        s.connection().execute(update(MESSAGES).where(MESSAGES.c.id == msg.id).values(**done))
        s.commit()
        for key, value in done.items():
            set_committed_value(msg, key, value)
        return "processed"


def _release(services: Services, message_pk: int) -> None:
    try:
        with Session(services.processing_engine) as s:
            s.exec(
                update(Message)
                .where(col(Message.id) == message_pk)
                .values(lease_owner=None, lease_until=None, attempts=Message.attempts - 1)
            )
            s.commit()
    except (OperationalError, DBAPIError):
        # Still down: the lease simply expires.
        pass


def _quarantine(s: Session, msg: Message, stage_name: str, reason: str, detail: str | None) -> str:
    msg = s.merge(msg)
    msg.state = "quarantined"
    msg.quarantine_reason = f"{stage_name}: {reason}"
    msg.lease_owner = None
    msg.lease_until = None
    s.add(msg)
    s.add(QuarantineEvent(message_pk=msg.id or 0, stage=stage_name, reason=reason, detail=detail))
    s.commit()
    log.warning("message %s quarantined: %s: %s", msg.id, stage_name, reason)
    return "quarantined"


def process_pending(
    services: Services,
    stages: list[tuple[str, Stage]],
    *,
    should_stop: Callable[[], bool] = lambda: False,
    on_done: Callable[[int, str], None] | None = None,
) -> ProcessResult:
    """Process every message not yet processed, oldest arrival first."""
    result = ProcessResult()
    reap_dead_leases(services.engine)
    while not should_stop():
        batch = claim(services)
        if not batch:
            break
        for i, mid in enumerate(batch):
            if should_stop():
                for rest in batch[i:]:
                    _release(services, rest)
                return result
            try:
                state = process_message(services, mid, stages)
            except BaseException:
                for rest in batch[i + 1 :]:
                    _release(services, rest)
                raise
            if state == "processed":
                result.processed += 1
            elif state == "quarantined":
                result.quarantined += 1
                result.quarantined_ids.append(mid)
            if on_done:
                on_done(mid, state)
    return result


def replay(services: Services, message_pk: int, stages: list[tuple[str, Stage]]) -> str:
    """Run a quarantined (or processed) message through the pipeline again, after a fix."""
    with Session(services.engine) as s:
        msg = s.get(Message, message_pk)
        if msg is None:
            raise LookupError(f"no message with id {message_pk}")
        now = services.clock()
        for ev in s.exec(select(QuarantineEvent).where(QuarantineEvent.message_pk == message_pk)):
            if ev.resolved_at is None:
                ev.resolved_at = now
                s.add(ev)
        msg.state = "new"
        msg.attempts = 0
        msg.lease_owner = None
        msg.lease_until = None
        s.add(msg)
        s.commit()
    reap_dead_leases(services.engine)
    mid = claim_next(services, only=message_pk)
    if mid is None:
        return "busy"
    return process_message(services, mid, stages)
