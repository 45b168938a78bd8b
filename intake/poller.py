"""One poll of the mailbox: fetch new UIDs, archive + fsync, commit, then act on the server."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from intake.config import MailboxConfig
from intake.faults import crash_point
from intake.leases import reap_dead_leases
from intake.mailbox import FetchedMessage, Mailbox, MailboxError
from intake.pipeline import Services
from store.archive import sha256_hex
from store.models import MailboxCheckpoint, MailboxUid, Message, insert_values

log = logging.getLogger(__name__)

POLL_LEASE = timedelta(minutes=10)

MailboxFactory = Callable[[MailboxConfig, str], Mailbox]


@dataclass
class PollResult:
    uidvalidity: int = 0
    seen: int = 0  # UIDs in the folder that this poll looked at
    fetched: int = 0  # messages downloaded
    fetched_bytes: int = 0
    new_messages: int = 0  # rows created in `message`
    duplicates: int = 0  # UIDs whose bytes (or Message-ID, after a UIDVALIDITY change) were known
    actions: int = 0  # server actions applied (flag / move)
    uidvalidity_changed: bool = False
    skipped: str | None = None  # why nothing was done (another poller holds the lease, ...)
    new_ids: list[int] = field(default_factory=list)


def _batches(uids: Sequence[int], sizes: dict[int, int], max_count: int, max_bytes: int) -> Iterator[list[int]]:
    """Consecutive groups of UIDs bounded in count and bytes, so memory does not grow with the mailbox."""
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if batch and (len(batch) >= max_count or total + size > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


class Poller:
    """Polls one account+folder into the archive and the `message` table."""

    def __init__(self, services: Services, password: str, mailbox_factory: MailboxFactory = Mailbox) -> None:
        self.services = services
        self.cfg = services.config.mailbox
        self.password = password
        self.mailbox_factory = mailbox_factory
        self.account = f"{self.cfg.username}@{self.cfg.host}"
        self.folder = self.cfg.folder

    # -- lease and checkpoint ---------------------------------------------------------------------

    def _checkpoint(self, s: Session) -> MailboxCheckpoint:
        q = select(MailboxCheckpoint).where(
            MailboxCheckpoint.account == self.account, MailboxCheckpoint.folder == self.folder
        )
        cp = s.exec(q).first()
        if cp is None:
            try:
                s.add(MailboxCheckpoint(account=self.account, folder=self.folder))
                s.commit()
            except IntegrityError:
                # Another daemon created it at the same moment.
                s.rollback()
            cp = s.exec(q).one()
        return cp

    def acquire_lease(self) -> bool:
        reap_dead_leases(self.services.engine)
        now = self.services.clock()
        with Session(self.services.engine) as s:
            self._checkpoint(s)
            res = s.exec(
                update(MailboxCheckpoint)
                .where(col(MailboxCheckpoint.account) == self.account)
                .where(col(MailboxCheckpoint.folder) == self.folder)
                .where(
                    or_(
                        col(MailboxCheckpoint.lease_owner).is_(None),
                        col(MailboxCheckpoint.lease_owner) == self.services.owner,
                        col(MailboxCheckpoint.lease_until) < now,
                    )
                )
                .values(lease_owner=self.services.owner, lease_until=now + POLL_LEASE, last_poll_at=now)
            )
            s.commit()
            return bool(res.rowcount == 1)

    def release_lease(self, error: str | None = None) -> None:
        now = self.services.clock()
        with Session(self.services.engine) as s:
            cp = self._checkpoint(s)
            if cp.lease_owner == self.services.owner:
                cp.lease_owner = None
                cp.lease_until = None
            if error is None:
                cp.last_success_at = now
            else:
                cp.last_error = error
                cp.last_error_at = now
            s.add(cp)
            s.commit()

    # -- the poll ---------------------------------------------------------------------------------

    def poll(
        self,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Callable[[int, int], None] | None = None,
    ) -> PollResult:
        """Fetch everything not yet recorded. Raises MailboxError when the server fails mid-way;
        what was committed before stays committed, and the next poll continues from there."""
        if not self.acquire_lease():
            return PollResult(skipped="another poller holds the lease for this folder")
        try:
            result = self._poll(should_stop, progress)
        except MailboxError as e:
            self.release_lease(error=str(e))
            raise
        except BaseException as e:
            self.release_lease(error=f"{type(e).__name__}: {e}")
            raise
        self.release_lease()
        return result

    def _poll(self, should_stop: Callable[[], bool], progress: Callable[[int, int], None] | None) -> PollResult:
        result = PollResult()
        mb = self.mailbox_factory(self.cfg, self.password)
        status = mb.connect()
        try:
            result.uidvalidity = status.uidvalidity
            with Session(self.services.engine) as s:
                cp = self._checkpoint(s)
                same = cp.uidvalidity == status.uidvalidity
                start = cp.last_uid + 1 if same else 1
                if cp.uidvalidity and not same:
                    result.uidvalidity_changed = True
                    log.warning(
                        "%s/%s: UIDVALIDITY changed %s -> %s: rescanning, known messages are not reprocessed",
                        self.account,
                        self.folder,
                        cp.uidvalidity,
                        status.uidvalidity,
                    )
                    cp.uidvalidity = status.uidvalidity
                    cp.last_uid = 0
                    s.add(cp)
                    s.commit()
                elif not cp.uidvalidity:
                    cp.uidvalidity = status.uidvalidity
                    s.add(cp)
                    s.commit()
                known = {
                    row.uid: row.action_done
                    for row in s.exec(
                        select(MailboxUid).where(
                            MailboxUid.account == self.account,
                            MailboxUid.folder == self.folder,
                            MailboxUid.uidvalidity == status.uidvalidity,
                            MailboxUid.uid >= start,
                        )
                    )
                }
            uids = mb.uids_from(start)
            result.seen = len(uids)

            # A crash after the commit but before the server action left these behind.
            pending = [u for u in uids if u in known and not known[u]]
            if pending:
                self._act(mb, status.uidvalidity, pending, result)

            todo = [u for u in uids if u not in known]
            if result.uidvalidity_changed and todo:
                todo = self._dedupe_by_message_id(mb, status.uidvalidity, todo, result)

            sizes = mb.sizes(todo) if todo else {}
            # Batch k is archived and committed in a second thread while batch k+1 comes over the network
            # (fsync waits on the disk, FETCH on the server); its server action follows its commit as always.
            recording: tuple[Future[None], list[FetchedMessage]] | None = None
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="poll-record") as recorder:
                try:
                    for batch in _batches(todo, sizes, self.cfg.batch_size, self.cfg.batch_bytes):
                        if should_stop():
                            break
                        fetched = mb.fetch(batch)
                        if recording is not None:
                            self._settle(mb, status.uidvalidity, uids, recording, result, progress, len(todo))
                        recording = (recorder.submit(self._record, status.uidvalidity, fetched, result), fetched)
                    if recording is not None:
                        self._settle(mb, status.uidvalidity, uids, recording, result, progress, len(todo))
                        recording = None
                finally:
                    if recording is not None:
                        # A failed FETCH must not abandon the batch before it: it is kept, acted on next poll.
                        recording[0].result()
            if not todo:
                self._advance(status.uidvalidity, uids)
        finally:
            mb.close()
        return result

    def _settle(
        self,
        mb: Mailbox,
        uidvalidity: int,
        uids: list[int],
        recording: tuple[Future[None], list[FetchedMessage]],
        result: PollResult,
        progress: Callable[[int, int], None] | None,
        total: int,
    ) -> None:
        """Wait for a batch's archive and commit, then act on the server and move the checkpoint."""
        future, fetched = recording
        future.result()
        crash_point("poll.after_commit")
        self._act(mb, uidvalidity, [m.uid for m in fetched], result)
        self._advance(uidvalidity, uids)
        if progress:
            progress(result.fetched, total)

    def _record(self, uidvalidity: int, fetched: list[FetchedMessage], result: PollResult) -> None:
        """Archive (fsync'd) then commit rows: after this returns the messages are safe."""
        if not fetched:
            return
        shas = [sha256_hex(m.raw) for m in fetched]
        self.services.archive.put_many([m.raw for m in fetched], shas)
        crash_point("poll.after_archive")
        leave = self.cfg.after == "leave"
        now = self.services.clock()
        with Session(self.services.engine) as s:
            existing: dict[str, int | None] = {
                row.sha256: row.id for row in s.exec(select(Message).where(col(Message.sha256).in_(set(shas))))
            }
            new_rows: dict[str, dict[str, object]] = {}
            fresh: list[tuple[int, str]] = []
            for m, sha in zip(fetched, shas, strict=True):
                result.fetched += 1
                result.fetched_bytes += len(m.raw)
                if sha in existing or sha in new_rows:
                    result.duplicates += 1
                    continue
                new_rows[sha] = insert_values(
                    Message,
                    sha256=sha,
                    size=len(m.raw),
                    source="imap",
                    source_ref=f"{self.account}/{self.folder};UIDVALIDITY={uidvalidity};UID={m.uid}",
                    received_at=m.internaldate,
                    received_source="internaldate",
                    created_at=now,
                )
            if new_rows:
                # One multi-row INSERT for the batch; RETURNING gives the ids.
                inserted = s.exec(
                    insert(Message).returning(col(Message.id), col(Message.sha256)), params=list(new_rows.values())
                )
                for mid, sha in inserted:
                    existing[sha] = mid
                    result.new_messages += 1
                    result.new_ids.append(mid)
                    fresh.append((mid, sha))
            s.exec(
                insert(MailboxUid),
                params=[
                    insert_values(
                        MailboxUid,
                        account=self.account,
                        folder=self.folder,
                        uidvalidity=uidvalidity,
                        uid=m.uid,
                        message_pk=existing[sha],
                        action_done=leave,
                        recorded_at=now,
                    )
                    for m, sha in zip(fetched, shas, strict=True)
                ],
            )
            s.commit()
        raw_of = {sha: m.raw for m, sha in zip(fetched, shas, strict=True)}
        for mid, sha in fresh:
            self.services.fresh.put(mid, raw_of[sha])

    def _act(self, mb: Mailbox, uidvalidity: int, uids: list[int], result: PollResult) -> None:
        if not uids or self.cfg.after == "leave":
            return
        mb.apply_action(uids)
        crash_point("poll.after_action")
        with Session(self.services.engine) as s:
            s.exec(
                update(MailboxUid)
                .where(col(MailboxUid.account) == self.account)
                .where(col(MailboxUid.folder) == self.folder)
                .where(col(MailboxUid.uidvalidity) == uidvalidity)
                .where(col(MailboxUid.uid).in_(uids))
                .values(action_done=True)
            )
            s.commit()
        result.actions += len(uids)

    def _advance(self, uidvalidity: int, uids: list[int]) -> None:
        """Move the checkpoint to the highest UID below which everything is recorded and acted on."""
        with Session(self.services.engine) as s:
            cp = self._checkpoint(s)
            last = cp.last_uid
            # Only the UIDs above the checkpoint: each batch reads its own rows, not the whole folder's again.
            done = set(
                s.exec(
                    select(MailboxUid.uid).where(
                        MailboxUid.account == self.account,
                        MailboxUid.folder == self.folder,
                        MailboxUid.uidvalidity == uidvalidity,
                        MailboxUid.action_done == True,  # noqa: E712
                        MailboxUid.uid > last,
                    )
                )
            )
            for uid in uids:
                if uid <= last:
                    continue
                if uid not in done:
                    break
                last = uid
            if last != cp.last_uid:
                cp.last_uid = last
                s.add(cp)
                s.commit()

    def _dedupe_by_message_id(self, mb: Mailbox, uidvalidity: int, todo: list[int], result: PollResult) -> list[int]:
        """After a UIDVALIDITY change, map UIDs whose Message-ID we already hold without downloading them."""
        infos = mb.headers(todo)
        ids = {i.message_id for i in infos if i.message_id}
        if not ids:
            return todo
        with Session(self.services.engine) as s:
            known: dict[str, int] = {}
            for row in s.exec(select(Message).where(col(Message.message_id).in_(ids), Message.source == "imap")):
                if row.message_id and row.id is not None:
                    known.setdefault(row.message_id, row.id)
            leave = self.cfg.after == "leave"
            now = self.services.clock()
            mapped: set[int] = set()
            for info in infos:
                mid = known.get(info.message_id or "")
                if mid is None:
                    continue
                s.add(
                    MailboxUid(
                        account=self.account,
                        folder=self.folder,
                        uidvalidity=uidvalidity,
                        uid=info.uid,
                        message_pk=mid,
                        action_done=leave,
                        recorded_at=now,
                    )
                )
                mapped.add(info.uid)
                result.duplicates += 1
            s.commit()
        if mapped and not leave:
            self._act(mb, uidvalidity, sorted(mapped), result)
        return [u for u in todo if u not in mapped]
