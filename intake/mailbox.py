"""The only module that talks IMAP: connect, log in, identify, fetch without \\Seen, act on messages."""

from __future__ import annotations

import contextlib
import imaplib
import logging
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import SocketTimeout

from intake import __version__
from intake.config import MailboxConfig

log = logging.getLogger(__name__)

# Raised by the socket layer and imaplib for a dropped or stalled connection.
_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # socket.timeout, ConnectionResetError, ssl.SSLError are subclasses
    imaplib.IMAP4.abort,
    EOFError,
)


class MailboxError(Exception):
    """The mailbox could not be reached or answered badly; polling retries later with backoff."""


class MailboxAuthError(MailboxError):
    """The server refused the login: wrong account or 授权码; retrying will not help."""


@dataclass(frozen=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int
    exists: int


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    raw: bytes
    internaldate: datetime
    size: int


@dataclass(frozen=True)
class HeaderInfo:
    uid: int
    message_id: str | None
    internaldate: datetime
    size: int


def _aware(dt: Any) -> datetime:
    if not isinstance(dt, datetime):
        raise MailboxError(f"server sent an unreadable INTERNALDATE: {dt!r}")
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class Mailbox:
    """One logged-in IMAP connection with one folder selected.

    Every network call is bounded by the socket timeout; every failure surfaces as MailboxError.
    """

    def __init__(self, cfg: MailboxConfig, password: str) -> None:
        self.cfg = cfg
        self._password = password
        self._client: IMAPClient | None = None
        self.capabilities: frozenset[str] = frozenset()
        self.status: FolderStatus | None = None
        self.server_id: dict[str, str] = {}

    @property
    def account(self) -> str:
        return f"{self.cfg.username}@{self.cfg.host}"

    # -- connection -------------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.cfg.cafile or None)
        return ctx

    def connect(self) -> FolderStatus:
        """Connect, (STARTTLS), LOGIN, ID, SELECT the folder; return its UIDVALIDITY/UIDNEXT."""
        timeout = self.cfg.timeout.total_seconds()
        try:
            use_ssl = self.cfg.tls == "ssl"
            client = IMAPClient(
                self.cfg.host,
                port=self.cfg.port,
                ssl=use_ssl,
                ssl_context=self._ssl_context() if use_ssl else None,
                timeout=SocketTimeout(connect=timeout, read=timeout),
                use_uid=True,
            )
            # Aware datetimes for INTERNALDATE: arrival times decide lateness, local time must not leak in.
            client.normalise_times = False
            self._client = client
            if self.cfg.tls == "starttls":
                client.starttls(self._ssl_context())
            try:
                # Plain LOGIN: Coremail advertises SASL-IR but does not support it.
                client.login(self.cfg.username, self._password)
            except LoginError as e:
                raise MailboxAuthError(f"{self.account}: login refused: {_text(e)}") from None
            caps = {c.decode("ascii", "replace").upper() for c in client.capabilities()}
            self.capabilities = frozenset(caps)
            # 126.com refuses SELECT ("Unsafe Login") unless the client identified itself first.
            if "ID" in caps:
                answer = client.id_({"name": self.cfg.id_name, "version": __version__, "vendor": self.cfg.id_vendor})
                self.server_id = {_text(k): _text(v) for k, v in (answer.items() if isinstance(answer, dict) else [])}
            else:
                log.info("%s does not advertise ID; selecting without it", self.account)
            return self.select(self.cfg.folder)
        except MailboxError:
            self.close()
            raise
        except (*_TRANSIENT, IMAPClientError, imaplib.IMAP4.error) as e:
            self.close()
            raise MailboxError(f"{self.account}: cannot connect: {_text(e)}") from e

    def select(self, folder: str) -> FolderStatus:
        c = self._c()
        try:
            info = c.select_folder(folder)
        except (*_TRANSIENT, IMAPClientError, imaplib.IMAP4.error) as e:
            raise MailboxError(f"{self.account}: cannot select {folder!r}: {_text(e)}") from e
        uidvalidity = int(info.get(b"UIDVALIDITY", 0))
        uidnext = int(info.get(b"UIDNEXT", 0))
        exists = int(info.get(b"EXISTS", 0))
        if not uidvalidity:
            raise MailboxError(f"{self.account}: server gave no UIDVALIDITY for {folder!r}")
        self.status = FolderStatus(uidvalidity, uidnext, exists)
        return self.status

    def close(self) -> None:
        c, self._client = self._client, None
        if c is None:
            return
        try:
            c.logout()
        except Exception:
            with contextlib.suppress(Exception):
                c.shutdown()

    def __enter__(self) -> Mailbox:
        self.connect()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _c(self) -> IMAPClient:
        if self._client is None:
            raise MailboxError(f"{self.account}: not connected")
        return self._client

    # -- reading ----------------------------------------------------------------------------------

    def uids_from(self, first_uid: int) -> list[int]:
        """UIDs >= first_uid in the selected folder, ascending."""
        c = self._c()
        try:
            found = c.search(["UID", f"{max(first_uid, 1)}:*"])
        except (*_TRANSIENT, IMAPClientError, imaplib.IMAP4.error) as e:
            raise MailboxError(f"{self.account}: UID SEARCH failed: {_text(e)}") from e
        # "n:*" always matches the highest UID even when it is below n (RFC 3501 6.4.8).
        return sorted(int(u) for u in found if int(u) >= first_uid)

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for part in _chunks(uids, 500):
            data = self._fetch(part, [b"RFC822.SIZE"])
            for uid, d in data.items():
                out[int(uid)] = int(d.get(b"RFC822.SIZE", 0))
        return out

    def headers(self, uids: Sequence[int]) -> list[HeaderInfo]:
        """Message-ID, INTERNALDATE and size of each UID, without downloading bodies."""
        out: list[HeaderInfo] = []
        for part in _chunks(uids, 200):
            data = self._fetch(part, [b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]", b"INTERNALDATE", b"RFC822.SIZE"])
            for uid, d in data.items():
                hdr = next((v for k, v in d.items() if k.startswith(b"BODY[HEADER")), b"") or b""
                out.append(
                    HeaderInfo(
                        uid=int(uid),
                        message_id=_message_id(hdr),
                        internaldate=_aware(d.get(b"INTERNALDATE")),
                        size=int(d.get(b"RFC822.SIZE", 0)),
                    )
                )
        return sorted(out, key=lambda h: h.uid)

    def fetch(self, uids: Sequence[int]) -> list[FetchedMessage]:
        """Whole raw messages; BODY.PEEK so the server does not set \\Seen."""
        data = self._fetch(uids, [b"BODY.PEEK[]", b"INTERNALDATE", b"RFC822.SIZE"])
        out: list[FetchedMessage] = []
        for uid, d in data.items():
            raw = d.get(b"BODY[]")
            if raw is None:
                # Expunged by someone else between SEARCH and FETCH: nothing to archive.
                continue
            out.append(
                FetchedMessage(
                    uid=int(uid),
                    raw=bytes(raw),
                    internaldate=_aware(d.get(b"INTERNALDATE")),
                    size=int(d.get(b"RFC822.SIZE", len(raw))),
                )
            )
        return sorted(out, key=lambda m: m.uid)

    def _fetch(self, uids: Sequence[int], items: list[bytes]) -> dict[int, dict[bytes, Any]]:
        if not uids:
            return {}
        try:
            return self._c().fetch(list(uids), items)
        except (*_TRANSIENT, IMAPClientError, imaplib.IMAP4.error) as e:
            raise MailboxError(f"{self.account}: FETCH failed: {_text(e)}") from e

    def flags(self, uids: Sequence[int]) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        try:
            for uid, fl in self._c().get_flags(list(uids)).items():
                out[int(uid)] = {_text(f) for f in fl}
        except (*_TRANSIENT, IMAPClientError, imaplib.IMAP4.error) as e:
            raise MailboxError(f"{self.account}: FETCH FLAGS failed: {_text(e)}") from e
        return out

    # -- acting -----------------------------------------------------------------------------------

    def apply_action(self, uids: Sequence[int]) -> None:
        """The configured after-archiving action: leave, flag, or move to a folder."""
        if not uids or self.cfg.after == "leave":
            return
        c = self._c()
        try:
            if self.cfg.after == "flag":
                c.add_flags(list(uids), [self.cfg.flag], silent=True)
            elif self.cfg.after == "move":
                self._ensure_folder(self.cfg.move_to)
                if "MOVE" in self.capabilities:
                    c.move(list(uids), self.cfg.move_to)
                else:
                    c.copy(list(uids), self.cfg.move_to)
                    c.add_flags(list(uids), [b"\\Deleted"], silent=True)
                    if "UIDPLUS" in self.capabilities:
                        c.uid_expunge(list(uids))
                    # Without UIDPLUS a plain EXPUNGE could remove messages someone else marked
                    # deleted: leave them flagged \Deleted for the mail client to purge.
        except (*_TRANSIENT, IMAPClientError, imaplib.IMAP4.error) as e:
            raise MailboxError(f"{self.account}: cannot {self.cfg.after} messages: {_text(e)}") from e

    def _ensure_folder(self, name: str) -> None:
        c = self._c()
        if not c.folder_exists(name):
            c.create_folder(name)

    def append(self, folder: str, raw: bytes, flags: Iterable[str] = ("\\Seen",)) -> None:
        """APPEND a message (a copy of a sent acknowledgement into the Sent folder)."""
        c = self._c()
        try:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            c.append(folder, raw, flags=tuple(flags), msg_time=datetime.now(UTC))
        except (*_TRANSIENT, IMAPClientError, imaplib.IMAP4.error) as e:
            raise MailboxError(f"{self.account}: cannot append to {folder!r}: {_text(e)}") from e

    # -- waiting ----------------------------------------------------------------------------------

    @property
    def can_idle(self) -> bool:
        return "IDLE" in self.capabilities

    def idle_start(self) -> None:
        """Enter IDLE: the server will push EXISTS when mail arrives."""
        try:
            self._c().idle()
        except (*_TRANSIENT, IMAPClientError, imaplib.IMAP4.error) as e:
            raise MailboxError(f"{self.account}: IDLE failed: {_text(e)}") from e

    def idle_poll(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds inside IDLE; True when the server announced new mail."""
        try:
            responses = self._c().idle_check(timeout=timeout)
        except (*_TRANSIENT, IMAPClientError, imaplib.IMAP4.error) as e:
            raise MailboxError(f"{self.account}: IDLE failed: {_text(e)}") from e
        return any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)

    def idle_stop(self) -> None:
        try:
            self._c().idle_done()
        except (*_TRANSIENT, IMAPClientError, imaplib.IMAP4.error) as e:
            raise MailboxError(f"{self.account}: IDLE DONE failed: {_text(e)}") from e

    def noop(self) -> None:
        try:
            self._c().noop()
        except (*_TRANSIENT, IMAPClientError, imaplib.IMAP4.error) as e:
            raise MailboxError(f"{self.account}: NOOP failed: {_text(e)}") from e


def _chunks(seq: Sequence[int], n: int) -> Iterable[Sequence[int]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def _message_id(header_block: bytes) -> str | None:
    # Only the Message-ID field was requested, possibly folded over several lines.
    text = header_block.decode("ascii", "replace").replace("\r\n ", " ").replace("\r\n\t", " ")
    for line in text.splitlines():
        if line.lower().startswith("message-id:"):
            value = line.split(":", 1)[1].strip()
            return value or None
    return None


__all__ = [
    "FetchedMessage",
    "FolderStatus",
    "HeaderInfo",
    "Mailbox",
    "MailboxAuthError",
    "MailboxError",
]
