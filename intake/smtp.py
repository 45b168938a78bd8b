"""The only module that talks SMTP: SMTPS or STARTTLS, AUTH with the 授权码, and errors that say what to do."""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from types import TracebackType

from intake.config import SmtpConfig

log = logging.getLogger(__name__)


class SmtpError(Exception):
    """Sending did not work; `code` is the server's reply code when there was one."""

    # Whether trying the same message again later may work.
    temporary = True

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class SmtpConnectError(SmtpError):
    """The server could not be reached, or the connection (or TLS) failed before a message was handed over."""


class SmtpAuthError(SmtpError):
    """The server refused the login: wrong account or 授权码. Not the message's fault, and retrying at once will
    not help (too many failed logins can get the account locked)."""


class SmtpTemporaryError(SmtpError):
    """A 4xx reply to this message (greylisting, rate limits, mailbox busy): try it again later."""


class SmtpPermanentError(SmtpError):
    """A 5xx reply to this message (recipient unknown, content refused): trying again will not help."""

    temporary = False


class SmtpUncertainError(SmtpError):
    """The connection broke after the whole message was sent and before the server answered: the server may
    or may not have accepted it. Sending it again risks a duplicate; not sending it risks none arriving."""


def _reply_error(code: int, reply: bytes | str, what: str) -> SmtpError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    message = f"{what}: {code} {' '.join(text.split())}"
    if 400 <= code < 500:
        return SmtpTemporaryError(message, code)
    return SmtpPermanentError(message, code)


# Lines beginning with a period get another one (RFC 5321 4.5.2, "dot-stuffing").
_LEADING_DOT = re.compile(rb"(?m)^\.")
_NET_ERRORS = (OSError, smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException)


class SmtpClient:
    """One authenticated connection to the configured server; every network call is bounded by the timeout."""

    def __init__(self, cfg: SmtpConfig, password: str) -> None:
        self.cfg = cfg
        self._password = password
        self._smtp: smtplib.SMTP | None = None

    @property
    def server(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    def _context(self) -> ssl.SSLContext:
        # Certificate and host name are verified; a private CA (tests, a relay) is given as cafile.
        return ssl.create_default_context(cafile=self.cfg.cafile or None)

    def connect(self) -> None:
        """Connect (implicit TLS, or STARTTLS), EHLO, and log in."""
        timeout = self.cfg.timeout.total_seconds()
        local = self.cfg.local_hostname or None
        try:
            smtp: smtplib.SMTP
            if self.cfg.tls == "ssl":
                smtp = smtplib.SMTP_SSL(
                    self.cfg.host, self.cfg.port, local_hostname=local, timeout=timeout, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(self.cfg.host, self.cfg.port, local_hostname=local, timeout=timeout)
            self._smtp = smtp
            smtp.ehlo()
            if self.cfg.tls == "starttls":
                if not smtp.has_extn("starttls"):
                    raise SmtpConnectError(f"{self.server}: the server does not offer STARTTLS")
                code, reply = smtp.starttls(context=self._context())
                if code != 220:
                    raise SmtpConnectError(f"{self.server}: STARTTLS refused: {code} {reply!r}", code)
                smtp.ehlo()
        except SmtpError:
            self.close()
            raise
        except (*_NET_ERRORS, smtplib.SMTPException) as e:
            self.close()
            raise SmtpConnectError(f"{self.server}: cannot connect: {_describe(e)}") from e
        try:
            # The 126.com password for SMTP is an authorization code (授权码), not the web password.
            smtp.login(self.cfg.username, self._password)
        except smtplib.SMTPAuthenticationError as e:
            self.close()
            raise SmtpAuthError(
                f"{self.server}: login as {self.cfg.username} refused: {_describe(e)}", e.smtp_code
            ) from None
        except smtplib.SMTPNotSupportedError as e:
            self.close()
            raise SmtpAuthError(f"{self.server}: the server offers no AUTH: {_describe(e)}") from e
        except (*_NET_ERRORS, smtplib.SMTPException) as e:
            self.close()
            raise SmtpConnectError(f"{self.server}: login failed: {_describe(e)}") from e

    def send(
        self,
        raw: bytes,
        *,
        mail_from: str,
        rcpt: str,
        before_data: Callable[[], None] | None = None,
    ) -> str:
        """Hand one message to the server; returns its reply to the end of data (e.g. "250 Mail OK queued").

        `before_data` runs after the server accepted sender and recipient and before the DATA command: the
        last moment at which the message has certainly not been handed over. Raises SmtpTemporaryError /
        SmtpPermanentError for a refusal, SmtpConnectError when the connection fails before the message was
        complete, SmtpUncertainError when it fails while waiting for the final reply.
        """
        if self._smtp is None:
            self.connect()
        smtp = self._smtp
        assert smtp is not None
        try:
            code, reply = smtp.mail(mail_from)
            if code != 250:
                raise _reply_error(code, reply, f"MAIL FROM:<{mail_from}> refused")
            code, reply = smtp.rcpt(rcpt)
            if code not in (250, 251):
                raise _reply_error(code, reply, f"RCPT TO:<{rcpt}> refused")
            if before_data is not None:
                before_data()
            code, reply = smtp.docmd("DATA")
            if code != 354:
                raise _reply_error(code, reply, "DATA refused")
            payload = _LEADING_DOT.sub(b"..", raw)
            if not payload.endswith(b"\r\n"):
                payload += b"\r\n"
            smtp.send(payload + b".\r\n")
        except SmtpError:
            self._reset()
            raise
        except (*_NET_ERRORS, smtplib.SMTPException) as e:
            # The end-of-data mark was not sent: the server cannot have accepted the message.
            self.close()
            raise SmtpConnectError(f"{self.server}: connection lost before the message was sent: {_describe(e)}") from e
        except BaseException:
            self._reset()
            raise
        try:
            code, reply = smtp.getreply()
        except (*_NET_ERRORS, smtplib.SMTPException) as e:
            self.close()
            raise SmtpUncertainError(
                f"{self.server}: no reply after the message was sent ({_describe(e)}); it may have been accepted"
            ) from e
        if code != 250:
            self._reset()
            raise _reply_error(code, reply, "message refused after DATA")
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return f"{code} {' '.join(text.split())}"

    def _reset(self) -> None:
        """After a refusal: RSET so the connection can carry the next message, or drop it."""
        if self._smtp is None:
            return
        try:
            self._smtp.rset()
        except (*_NET_ERRORS, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (*_NET_ERRORS, smtplib.SMTPException):
            with contextlib.suppress(OSError):
                smtp.close()

    def __enter__(self) -> SmtpClient:
        self.connect()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _describe(e: BaseException) -> str:
    if isinstance(e, smtplib.SMTPResponseException):
        err = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
        return f"{e.smtp_code} {' '.join(err.split())}"
    if isinstance(e, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({e.verify_message}); set [smtp] cafile for a private CA"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


__all__ = [
    "SmtpAuthError",
    "SmtpClient",
    "SmtpConnectError",
    "SmtpError",
    "SmtpPermanentError",
    "SmtpTemporaryError",
    "SmtpUncertainError",
]
