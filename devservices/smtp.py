"""An in-process aiosmtpd server for tests: plain, SMTPS or STARTTLS, AUTH, recorded mail and fault modes."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import mailbox
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from devservices import _proc
from devservices.certs import CertPair, self_signed
from devservices.ports import LOCALHOST, DevServiceError, free_port

Mode = Literal["plain", "smtps", "starttls"]
RefuseAt = Literal["MAIL", "RCPT", "DATA"]
HangAt = Literal["CONNECT", "MAIL", "DATA"]

# aiosmtpd logs every command at INFO, and at WARNING its own use of the deprecated Session.login_data
# after each AUTH: test output needs neither
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    auth_user: str | None
    peer: tuple[str, int] | None
    tls: bool
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class _Faults:
    """What the server does wrong on purpose; read from the server thread, set from the test thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.refuse_code: int | None = None
        self.refuse_at: RefuseAt = "MAIL"
        self.refuse_message = ""
        self.refuse_times: int | None = None
        self.hang_at: HangAt | None = None
        self.hung: set[asyncio.BaseTransport] = set()
        self.refused = 0

    def take_refusal(self, stage: str) -> str | None:
        with self.lock:
            if self.refuse_code is None or self.refuse_at != stage:
                return None
            if self.refuse_times is not None:
                if self.refuse_times <= 0:
                    self.refuse_code = None
                    return None
                self.refuse_times -= 1
            self.refused += 1
            return f"{self.refuse_code} {self.refuse_message}"


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def _maybe_hang(self, stage: str, smtp: SMTP) -> None:
        if self.server._faults.hang_at == stage:
            await _hang_forever(self.server._faults, smtp)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await self._maybe_hang("MAIL", server)
        if self.server.require_auth and not session.authenticated:
            # checked here rather than with aiosmtpd's auth_required, which warns on every connection
            # when combined with auth_require_tls=False (needed for plain and SMTPS)
            return "530 5.7.0 Authentication required"
        refusal = self.server._faults.take_refusal("MAIL")
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        refusal = self.server._faults.take_refusal("RCPT")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # a hang after the data arrived is the nasty case: the message may count as sent or not
        await self._maybe_hang("DATA", server)
        refusal = self.server._faults.take_refusal("DATA")
        if refusal:
            return refusal
        raw = envelope.original_content or b""
        auth = session.auth_data
        user = auth.login.decode("utf-8", "replace") if isinstance(auth, LoginPassword) else None
        msg = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=raw,
            auth_user=user,
            peer=session.peer if isinstance(session.peer, tuple) else None,
            tls=session.ssl is not None or self.server.mode == "smtps",
        )
        self.server._record(msg)
        return "250 Message accepted for delivery"


async def _hang_forever(faults: _Faults, smtp: SMTP) -> None:
    transport = smtp.transport
    if transport is not None:
        with faults.lock:
            faults.hung.add(transport)
    try:
        # cancelled when the client goes away, on recover() or on stop()
        await asyncio.get_running_loop().create_future()
    finally:
        if transport is not None:
            with faults.lock:
                faults.hung.discard(transport)


class _SMTP(SMTP):
    faults: _Faults

    async def _handle_client(self) -> None:
        if self.faults.hang_at == "CONNECT":
            # accept the TCP (and, for SMTPS, the TLS) connection but never send the 220 greeting
            await _hang_forever(self.faults, self)
            return
        await super()._handle_client()


class _Controller(Controller):
    def __init__(self, handler: Any, faults: _Faults, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.faults = faults

    def factory(self) -> SMTP:
        smtp = _SMTP(self.handler, **self.SMTP_kwargs)
        smtp.faults = self.faults
        return smtp


class SmtpServer:
    """aiosmtpd on 127.0.0.1 in a thread, like smtp.126.com: `mode` "plain", "smtps" (implicit TLS, as on
    port 465) or "starttls" (STARTTLS required before AUTH and mail).

    With `users` given (or `require_auth`), AUTH LOGIN/PLAIN is checked against them and a wrong
    password gets "535 5.7.8 Authentication credentials invalid". Every accepted message is kept in
    `messages` (and in `maildir` if given).
    """

    def __init__(
        self,
        mode: Mode = "plain",
        *,
        users: dict[str, str] | None = None,
        require_auth: bool | None = None,
        workdir: Path | str | None = None,
        maildir: Path | str | None = None,
        port: int | None = None,
        hostname: str = "smtp.devservices.test",
        timeout: float = 60.0,
    ) -> None:
        if mode not in ("plain", "smtps", "starttls"):
            raise ValueError(f"mode must be plain, smtps or starttls, not {mode!r}")
        self.mode: Mode = mode
        self.host = LOCALHOST
        self._pick_port = port is None
        self.port = port or free_port()
        self.users: dict[str, str] = dict(users or {})
        self.require_auth = bool(self.users) if require_auth is None else require_auth
        self.hostname = hostname
        self.timeout = timeout
        self._workdir = Path(workdir) if workdir is not None else None
        self._own_workdir = workdir is None
        self._maildir_path = Path(maildir) if maildir is not None else None
        self.maildir: mailbox.Maildir | None = None
        self._certs: CertPair | None = None
        self._faults = _Faults()
        self._messages: list[ReceivedMessage] = []
        self._cond = threading.Condition()
        self._controller: _Controller | None = None
        self.auth_failures = 0
        self.startup_seconds: float | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._controller is not None:
            return self
        t0 = time.monotonic()
        if self.mode != "plain" and self._certs is None:
            self._certs = self_signed(self._work() / "tls", name="smtp")
        if self._maildir_path is not None:
            # aiosmtpd's own Mailbox handler fails on a missing Maildir; create=True makes it
            self.maildir = mailbox.Maildir(self._maildir_path, create=True)
        for attempt in range(3):
            try:
                self._controller = self._start_controller()
                break
            except DevServiceError as exc:
                in_use = isinstance(exc.__cause__, OSError) and exc.__cause__.errno == errno.EADDRINUSE
                if not (in_use and self._pick_port) or attempt == 2:
                    raise
                # the port we picked was taken meanwhile by another process: pick again
                self.port = free_port()
        self._pick_port = False
        _proc.register(self)
        self.startup_seconds = time.monotonic() - t0
        return self

    def _start_controller(self) -> _Controller:
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            # a fixed name: the default socket.getfqdn() can stall on DNS
            "server_hostname": self.hostname,
            "authenticator": self._authenticate,
            "timeout": self.timeout,
            "ready_timeout": 10.0,
        }
        if self.mode == "smtps":
            assert self._certs is not None
            kwargs["ssl_context"] = self._certs.server_context()
            # aiosmtpd only knows about STARTTLS; the whole connection is TLS already here
            kwargs["auth_require_tls"] = False
        elif self.mode == "starttls":
            assert self._certs is not None
            kwargs["tls_context"] = self._certs.server_context()
            kwargs["require_starttls"] = True
            kwargs["auth_require_tls"] = True
        else:
            kwargs["auth_require_tls"] = False
        controller = _Controller(_Handler(self), self._faults, **kwargs)
        try:
            controller.start()
        except Exception as exc:
            with contextlib.suppress(Exception):
                controller.stop(no_assert=True)
            raise DevServiceError(f"SMTP server could not start on {self.host}:{self.port}: {exc}") from exc
        return controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop(no_assert=True)
            self._controller = None
        _proc.unregister(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """stop(), and delete the work dir (certificates) if this server made it (no `workdir` given)."""
        self.stop()
        if self._own_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
            self._certs = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    @property
    def cafile(self) -> Path | None:
        return self._certs.cafile if self._certs is not None else None

    def add_user(self, name: str, password: str) -> None:
        self.users[name] = password

    # -- received mail ---------------------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of everything accepted so far, oldest first."""
        with self._cond:
            return list(self._messages)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Block until at least `n` messages were accepted; TimeoutError saying how many came otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= n, timeout=timeout):
                raise TimeoutError(f"SMTP server got {len(self._messages)} of {n} messages in {timeout} s")
            return list(self._messages)

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()

    # -- faults ----------------------------------------------------------------------------------------

    def refuse(
        self,
        code: int = 451,
        *,
        at: RefuseAt = "MAIL",
        times: int | None = None,
        message: str = "4.3.0 Temporary failure (devservices)",
    ) -> None:
        """Answer `code` to MAIL FROM (or RCPT TO, or the end of DATA) — for `times` transactions, then
        normally again (None: until recover()). 4xx codes are temporary failures, 5xx permanent."""
        if not 400 <= code <= 599:
            raise ValueError("refusal codes are 4xx or 5xx")
        if code >= 500 and message.startswith("4."):
            message = "5" + message[1:]
        with self._faults.lock:
            self._faults.refuse_code = code
            self._faults.refuse_at = at
            self._faults.refuse_times = times
            self._faults.refuse_message = message

    def hang(self, at: HangAt = "CONNECT") -> None:
        """Stop answering: new connections get no greeting ("CONNECT"), or MAIL FROM / the end of DATA get
        no reply, so clients run into their timeouts. A message hung at DATA is not recorded."""
        with self._faults.lock:
            self._faults.hang_at = at

    def recover(self) -> None:
        """Back to normal; connections left hanging are closed (their clients see the connection drop)."""
        with self._faults.lock:
            self._faults.refuse_code = None
            self._faults.refuse_times = None
            self._faults.hang_at = None
            hung = list(self._faults.hung)
        if hung and self._controller is not None:
            loop = self._controller.loop
            for transport in hung:
                loop.call_soon_threadsafe(transport.close)

    @property
    def refused(self) -> int:
        """How many commands were refused on purpose so far."""
        return self._faults.refused

    # -- internals -------------------------------------------------------------------------------------

    def _work(self) -> Path:
        if self._workdir is None:
            self._workdir = _proc.work_dir(None, "devservices-smtp-")
        self._workdir.mkdir(parents=True, exist_ok=True)
        return self._workdir

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            mechanism in ("LOGIN", "PLAIN")
            and isinstance(auth_data, LoginPassword)
            and self.users.get(auth_data.login.decode("utf-8", "replace"))
            == auth_data.password.decode("utf-8", "replace")
        )
        if not ok:
            self.auth_failures += 1
        # handled=False: aiosmtpd then sends 235 or 535 itself; handled=True would leave the client waiting
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _record(self, msg: ReceivedMessage) -> None:
        if self.maildir is not None:
            self.maildir.add(msg.data)
        with self._cond:
            self._messages.append(msg)
            self._cond.notify_all()
