"""intake.smtp against a real aiosmtpd server: SMTPS / STARTTLS with AUTH like smtp.126.com, and every failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from devservices.ports import free_port
from devservices.smtp import SmtpServer
from intake.config import SmtpConfig
from intake.smtp import (
    SmtpAuthError,
    SmtpClient,
    SmtpConnectError,
    SmtpPermanentError,
    SmtpTemporaryError,
    SmtpUncertainError,
)
from tests.conftest import SMTP_PASSWORD, SMTP_USER

RAW = (
    b"From: whaicj@126.test\r\nTo: applicant@example.cn\r\nSubject: =?utf-8?b?5Zue5omn?=\r\n"
    b"Message-ID: <ack-1-abc@intake.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"\r\nline one\r\n.starts with a dot\r\n..two dots\r\n"
)


def smtp_config(server: SmtpServer | None, **overrides: Any) -> SmtpConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port if server else free_port(),
        "tls": {"smtps": "ssl", "starttls": "starttls", "plain": "none"}[server.mode if server else "plain"],
        "cafile": str(server.cafile) if server and server.cafile else "",
        "username": SMTP_USER,
        "from": SMTP_USER,
        "timeout": "5s",
        "local_hostname": "intake.test",
    }
    values.update(overrides)
    return SmtpConfig.model_validate(values)


@pytest.mark.parametrize("mode", ["smtps", "starttls", "plain"])
def test_sends_over_tls_with_auth_and_the_bytes_arrive_unchanged(
    make_smtp_server: Callable[..., SmtpServer], mode: str
) -> None:
    server = make_smtp_server(mode)
    calls: list[str] = []
    with SmtpClient(smtp_config(server), SMTP_PASSWORD) as client:
        reply = client.send(
            RAW, mail_from=SMTP_USER, rcpt="applicant@example.cn", before_data=lambda: calls.append("x")
        )
        # A second message on the same connection.
        client.send(RAW.replace(b"ack-1", b"ack-2"), mail_from=SMTP_USER, rcpt="other@example.cn")
    assert reply.startswith("250")
    assert calls == ["x"]
    got = server.wait_for(2)
    assert got[0].data.replace(b"\r\n", b"\n") == RAW.replace(b"\r\n", b"\n")  # dot-stuffing undone by the server
    assert got[0].rcpt_tos == ("applicant@example.cn",)
    assert got[0].mail_from == SMTP_USER
    assert got[0].auth_user == SMTP_USER
    assert got[0].tls is (mode != "plain")
    assert got[1].rcpt_tos == ("other@example.cn",)


def test_wrong_authorization_code_is_an_auth_error(make_smtp_server: Callable[..., SmtpServer]) -> None:
    server = make_smtp_server("smtps")
    client = SmtpClient(smtp_config(server), "web-password-not-the-authcode")
    with pytest.raises(SmtpAuthError) as e:
        client.connect()
    assert e.value.code == 535
    assert SMTP_USER in str(e.value)
    assert server.messages == []


def test_untrusted_certificate_is_refused(make_smtp_server: Callable[..., SmtpServer]) -> None:
    server = make_smtp_server("smtps")
    with pytest.raises(SmtpConnectError, match="certificate") as e:
        SmtpClient(smtp_config(server, cafile=""), SMTP_PASSWORD).connect()
    assert "cafile" in str(e.value)
    starttls = make_smtp_server("starttls")
    with pytest.raises(SmtpConnectError, match="certificate"):
        SmtpClient(smtp_config(starttls, cafile=""), SMTP_PASSWORD).connect()


def test_nothing_listening_is_a_connect_error() -> None:
    started = time.monotonic()
    with pytest.raises(SmtpConnectError, match="cannot connect"):
        SmtpClient(smtp_config(None), SMTP_PASSWORD).connect()
    assert time.monotonic() - started < 5


def test_refusals_are_temporary_or_permanent_and_the_connection_goes_on(
    make_smtp_server: Callable[..., SmtpServer],
) -> None:
    server = make_smtp_server("smtps")
    with SmtpClient(smtp_config(server), SMTP_PASSWORD) as client:
        server.refuse(451, at="MAIL", times=1)
        with pytest.raises(SmtpTemporaryError) as temp:
            client.send(RAW, mail_from=SMTP_USER, rcpt="a@example.cn")
        assert temp.value.code == 451 and temp.value.temporary
        server.refuse(550, at="RCPT", times=1, message="5.1.1 User unknown")
        with pytest.raises(SmtpPermanentError) as perm:
            client.send(RAW, mail_from=SMTP_USER, rcpt="gone@example.cn")
        assert perm.value.code == 550 and not perm.value.temporary
        assert "User unknown" in str(perm.value)
        server.refuse(452, at="DATA", times=1)
        data_started: list[bool] = []
        with pytest.raises(SmtpTemporaryError) as data:
            client.send(RAW, mail_from=SMTP_USER, rcpt="a@example.cn", before_data=lambda: data_started.append(True))
        assert data.value.code == 452 and data_started == [True]
        assert server.messages == []
        client.send(RAW, mail_from=SMTP_USER, rcpt="a@example.cn")
    assert len(server.wait_for(1)) == 1


def test_a_server_that_does_not_greet_times_out(make_smtp_server: Callable[..., SmtpServer]) -> None:
    server = make_smtp_server("smtps")
    server.hang("CONNECT")
    started = time.monotonic()
    with pytest.raises(SmtpConnectError, match="timed out"):
        SmtpClient(smtp_config(server, timeout="1s"), SMTP_PASSWORD).connect()
    assert time.monotonic() - started < 4
    server.recover()
    with SmtpClient(smtp_config(server), SMTP_PASSWORD) as client:
        client.send(RAW, mail_from=SMTP_USER, rcpt="a@example.cn")
    assert len(server.wait_for(1)) == 1


def test_hang_before_data_is_certain_hang_after_data_is_not(make_smtp_server: Callable[..., SmtpServer]) -> None:
    server = make_smtp_server("smtps")
    server.hang("MAIL")
    marks: list[str] = []
    with pytest.raises(SmtpConnectError):
        SmtpClient(smtp_config(server, timeout="1s"), SMTP_PASSWORD).send(
            RAW, mail_from=SMTP_USER, rcpt="a@example.cn", before_data=lambda: marks.append("mail")
        )
    assert marks == []  # never got as far as DATA: certainly not sent
    server.recover()
    server.hang("DATA")
    with pytest.raises(SmtpUncertainError, match="may have been accepted"):
        SmtpClient(smtp_config(server, timeout="1s"), SMTP_PASSWORD).send(
            RAW, mail_from=SMTP_USER, rcpt="a@example.cn", before_data=lambda: marks.append("data")
        )
    assert marks == ["data"]
    server.recover()


def test_before_data_can_stop_the_message(make_smtp_server: Callable[..., SmtpServer]) -> None:
    server = make_smtp_server("starttls")

    class Stop(Exception):
        pass

    def stop() -> None:
        raise Stop

    with SmtpClient(smtp_config(server), SMTP_PASSWORD) as client:
        with pytest.raises(Stop):
            client.send(RAW, mail_from=SMTP_USER, rcpt="a@example.cn", before_data=stop)
        client.send(RAW, mail_from=SMTP_USER, rcpt="b@example.cn")
    got = server.wait_for(1)
    time.sleep(0.2)
    assert [m.rcpt_tos for m in server.messages] == [("b@example.cn",)]
    assert len(got) == 1


def test_plain_smtp_is_refused_for_a_remote_host() -> None:
    with pytest.raises(ValueError, match=r"only allowed for 127\.0\.0\.1"):
        SmtpConfig.model_validate({"host": "smtp.126.com", "tls": "none"})
