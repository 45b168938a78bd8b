"""The real-service runners work: Dovecot (TLS, rawlog, UIDVALIDITY, restart), proxy, PostgreSQL, SMTP."""

from __future__ import annotations

import imaplib
import os
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from conftest import SMTP_PASSWORD, SMTP_USER, Mailbox
from imapclient import IMAPClient

from devservices import _proc
from devservices.certs import client_context
from devservices.dovecot import Dovecot
from devservices.ports import ensure_debian_packages, free_port, port_open
from devservices.postgres import Postgres
from devservices.proxy import TcpProxy
from devservices.smtp import SmtpServer

CST = timezone(timedelta(hours=8))
DEADLINE = datetime(2025, 3, 31, 17, 0, tzinfo=CST)
CLIENT_ID = {"name": "intake", "version": "0.1.0", "vendor": "intake-tests"}


def _mail(subject: str = "申报材料", body: str = "附件见后", size: int = 0) -> bytes:
    msg = EmailMessage()
    msg["From"] = "applicant@example.org"
    msg["To"] = "intake@126.test"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{time.monotonic_ns()}@example.org>"
    msg.set_content(body + "x" * size)
    return msg.as_bytes().replace(b"\n", b"\r\n")


# -- Dovecot ---------------------------------------------------------------------------------------------


def test_login_id_and_append_with_internaldate(mailbox: Mailbox) -> None:
    before = DEADLINE - timedelta(seconds=1)
    after = DEADLINE + timedelta(seconds=1)
    uid_before = mailbox.append(_mail("before"), internaldate=before)
    uid_after = mailbox.append(_mail("after"), internaldate=after, flags=("\\Seen",))

    c = IMAPClient(mailbox.host, mailbox.port, ssl=False, timeout=10)
    c.normalise_times = False
    c.login(mailbox.user, mailbox.password)
    server_id = c.id_(CLIENT_ID)
    c.select_folder("INBOX", readonly=True)
    got = c.fetch([uid_before, uid_after], ["INTERNALDATE", "FLAGS"])
    c.logout()

    assert server_id  # Dovecot answers ID with its own parameters
    # aware datetimes compare as instants: Dovecot may answer in another zone than the one given
    assert got[uid_before][b"INTERNALDATE"] == before
    assert got[uid_after][b"INTERNALDATE"] == after
    assert got[uid_before][b"INTERNALDATE"] < DEADLINE < got[uid_after][b"INTERNALDATE"]
    assert mailbox.flags() == {uid_before: (), uid_after: ("\\Seen",)}
    # imap_id_log = * puts the client's ID parameters into the server log
    assert "ID sent: name=intake, version=0.1.0, vendor=intake-tests" in mailbox.server.log_text()


def test_imaps_and_starttls_verify_against_cafile(mailbox: Mailbox) -> None:
    assert mailbox.cafile is not None and mailbox.ssl_port is not None
    mailbox.append(_mail())

    with IMAPClient(
        "localhost", mailbox.ssl_port, ssl=True, ssl_context=client_context(mailbox.cafile), timeout=10
    ) as c:
        c.login(mailbox.user, mailbox.password)
        assert c.select_folder("INBOX")[b"EXISTS"] == 1

    with IMAPClient("localhost", mailbox.port, ssl=False, timeout=10) as c:
        assert b"STARTTLS" in c.capabilities()
        c.starttls(client_context(mailbox.cafile))
        c.login(mailbox.user, mailbox.password)
        assert c.select_folder("INBOX")[b"EXISTS"] == 1

    # the certificate really is the one in cafile: the system trust store rejects it
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient("localhost", mailbox.ssl_port, ssl=True, ssl_context=ssl.create_default_context())


def test_rawlog_proves_id_was_sent_before_select(mailbox: Mailbox) -> None:
    # a client that behaves as 126.com demands: LOGIN, ID, SELECT
    with mailbox.client() as c:
        c.id_(CLIENT_ID)
        c.select_folder("INBOX")
    # and one that does not
    with mailbox.client() as c:
        c.select_folder("INBOX")

    sessions = mailbox.rawlog_commands()
    assert len(sessions) == 2
    good, bad = sessions
    assert good.index("ID") < good.index("SELECT")
    assert "SELECT" in bad and "ID" not in bad
    # the raw text holds the ID parameters as sent, and never the password (LOGIN precedes rawlog)
    text = mailbox.rawlog_text()
    assert 'ID ("name" "intake" "version" "0.1.0" "vendor" "intake-tests")' in text
    assert mailbox.password not in text


def test_rawlog_is_written_while_the_connection_is_open(mailbox: Mailbox) -> None:
    c = mailbox.client()
    try:
        c.id_(CLIENT_ID)
        c.select_folder("INBOX")
        assert mailbox.rawlog_commands() == [["ID", "SELECT"]]
    finally:
        c.logout()


def test_rawlog_commands_skip_append_literals(mailbox: Mailbox) -> None:
    # a body line that looks like a command must not be taken for one
    mailbox.append(_mail(body="A1 SELECT INBOX\r\nA2 ID NIL {3}\r\n"))
    assert mailbox.rawlog_commands() == [["APPEND", "LOGOUT"]]


def test_recreate_folder_changes_uidvalidity_and_keeps_messages(mailbox: Mailbox) -> None:
    raw = _mail("kept")
    mailbox.append(raw, internaldate=DEADLINE, flags=("\\Seen",))
    mailbox.append(_mail("other folder"), folder="Archive")
    inbox_before = mailbox.status()
    archive_before = mailbox.status("Archive")

    new_inbox = mailbox.recreate_folder("INBOX")
    new_archive = mailbox.recreate_folder("Archive")

    assert new_inbox != inbox_before["UIDVALIDITY"]
    assert new_archive != archive_before["UIDVALIDITY"]
    assert mailbox.status()["UIDVALIDITY"] == new_inbox
    assert mailbox.status()["MESSAGES"] == 1
    [stored] = mailbox.server.fetch_all(mailbox.user)
    assert stored.raw == raw
    assert stored.internaldate == DEADLINE
    assert b"\\Seen" in stored.flags

    emptied = mailbox.recreate_folder("Archive", keep_messages=False)
    assert emptied != new_archive
    assert mailbox.status("Archive")["MESSAGES"] == 0


def test_restart_and_kill_keep_mail(make_dovecot: Callable[..., Dovecot]) -> None:
    server = make_dovecot()
    server.add_user("keep@example.test", "pw")
    uid = server.append("keep@example.test", "INBOX", _mail("survives"))
    port, pid = server.port, server.pid

    server.restart()
    assert server.port == port and server.pid != pid
    assert server.status("keep@example.test")["MESSAGES"] == 1

    old_pid = server.pid
    assert old_pid is not None
    server.kill()
    assert not _proc.group_alive(old_pid)
    assert not port_open(server.host, port)
    server.start()
    assert [m.uid for m in server.fetch_all("keep@example.test")] == [uid]


def test_stop_leaves_no_process_and_frees_the_ports(make_dovecot: Callable[..., Dovecot]) -> None:
    server = make_dovecot()
    server.add_user("u@example.test", "pw")
    c = server.client("u@example.test")  # a live imap process must not survive either
    c.select_folder("INBOX")
    pid = server.pid
    assert pid is not None and len(_proc.group_members(pid)) > 2
    server.stop()
    assert _proc.group_members(pid) == []
    assert not port_open(server.host, server.port)
    assert server.ssl_port is not None and not port_open(server.host, server.ssl_port)


def test_proxy_cut_mid_fetch_fails_the_client(
    mailbox: Mailbox, tcp_proxy: Callable[[str, int], TcpProxy]
) -> None:
    uid = mailbox.append(_mail(size=300_000))
    proxy = tcp_proxy(mailbox.host, mailbox.port)

    c = IMAPClient(proxy.host, proxy.port, ssl=False, timeout=10)
    c.login(mailbox.user, mailbox.password)
    c.select_folder("INBOX")
    proxy.cut_after_bytes(50_000)
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        c.fetch([uid], ["BODY.PEEK[]"])

    # the cut was one-shot: a reconnecting client gets the whole message
    with IMAPClient(proxy.host, proxy.port, ssl=False, timeout=10) as c2:
        c2.login(mailbox.user, mailbox.password)
        c2.select_folder("INBOX")
        body = c2.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    assert len(body) > 300_000


def test_proxy_drop_pause_and_refuse(mailbox: Mailbox, tcp_proxy: Callable[[str, int], TcpProxy]) -> None:
    proxy = tcp_proxy(mailbox.host, mailbox.port)
    c = IMAPClient(proxy.host, proxy.port, ssl=False, timeout=10)
    c.login(mailbox.user, mailbox.password)
    assert proxy.drop_all() == 1
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        c.noop()

    c = IMAPClient(proxy.host, proxy.port, ssl=False, timeout=0.5)
    c.login(mailbox.user, mailbox.password)
    proxy.pause()
    t0 = time.monotonic()
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        c.noop()
    assert 0.4 < time.monotonic() - t0 < 5
    proxy.resume()

    proxy.refuse_new()
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        IMAPClient(proxy.host, proxy.port, ssl=False, timeout=2)
    proxy.clear_faults()
    with IMAPClient(proxy.host, proxy.port, ssl=False, timeout=2) as ok:
        ok.login(mailbox.user, mailbox.password)


def test_mailboxes_are_isolated(mailbox: Mailbox, dovecot: Dovecot) -> None:
    dovecot.add_user("neighbour@example.test", "pw")
    dovecot.append("neighbour@example.test", "INBOX", _mail("not yours"))
    assert mailbox.status()["MESSAGES"] == 0


# -- PostgreSQL ------------------------------------------------------------------------------------------


def test_postgres_reachable_and_survives_restart(postgres: Postgres) -> None:
    url = postgres.create_database("devservices_check")
    try:
        assert url == f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/devservices_check"
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (name text)"))
            conn.execute(sa.text("INSERT INTO t VALUES ('张三')"))
        engine.dispose()

        old_pid = postgres.pid
        postgres.restart()
        assert postgres.pid != old_pid
        with psycopg.connect(postgres.dsn("devservices_check")) as conn:
            assert conn.execute("SELECT name FROM t").fetchall() == [("张三",)]
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
    finally:
        postgres.drop_database("devservices_check")
    assert "devservices_check" not in postgres.databases()


def test_postgres_stop_ends_the_server(service_dir: Path) -> None:
    server = Postgres(service_dir / "pg").start()
    pid = server.pid
    assert pid is not None and port_open(server.host, server.port)
    server.stop()
    assert not _proc.group_alive(pid)
    assert not port_open(server.host, server.port)


def test_db_url_works_on_both_backends(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE applications (id integer primary key, unit text)"))
            conn.execute(sa.text("INSERT INTO applications VALUES (1, '某某科技有限公司')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT unit FROM applications")).scalar_one() == "某某科技有限公司"
    finally:
        engine.dispose()
    assert db_url.startswith(("sqlite:///", "postgresql+psycopg://"))


# -- SMTP ------------------------------------------------------------------------------------------------


def _smtp_client(server: SmtpServer, timeout: float = 5.0) -> smtplib.SMTP:
    if server.mode == "smtps":
        assert server.cafile is not None
        return smtplib.SMTP_SSL(
            "localhost", server.port, context=client_context(server.cafile), timeout=timeout
        )
    client = smtplib.SMTP(server.host, server.port, timeout=timeout)
    if server.mode == "starttls":
        assert server.cafile is not None
        client.starttls(context=client_context(server.cafile))
    return client


@pytest.mark.parametrize("mode", ["plain", "smtps", "starttls"])
def test_smtp_auth_and_delivery(
    make_smtp_server: Callable[..., SmtpServer], mode: str, tmp_path: Path
) -> None:
    server = make_smtp_server(mode, maildir=tmp_path / "Maildir")
    raw = _mail("回执：已收到您的申报材料")
    with _smtp_client(server) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as bad:
            client.login(SMTP_USER, "wrong")
        assert bad.value.smtp_code == 535
        client.login(SMTP_USER, SMTP_PASSWORD)
        client.sendmail(SMTP_USER, ["applicant@example.org"], raw)
    [msg] = server.wait_for(1, timeout=5)
    assert msg.mail_from == SMTP_USER
    assert msg.rcpt_tos == ("applicant@example.org",)
    assert msg.auth_user == SMTP_USER
    assert msg.data == raw
    assert msg.tls == (mode != "plain")
    assert server.maildir is not None and len(server.maildir) == 1
    assert server.auth_failures >= 1  # smtplib tries PLAIN, then LOGIN, before giving up


def test_smtp_requires_auth_and_starttls(make_smtp_server: Callable[..., SmtpServer]) -> None:
    plain = make_smtp_server("plain")
    with smtplib.SMTP(plain.host, plain.port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(SMTP_USER, ["a@example.org"], _mail())
        assert refused.value.smtp_code == 530

    starttls = make_smtp_server("starttls")
    with smtplib.SMTP(starttls.host, starttls.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        # AUTH before STARTTLS is refused, as on a real submission port
        with pytest.raises(smtplib.SMTPException):
            client.login(SMTP_USER, SMTP_PASSWORD)


def test_smtp_refuse_then_recover(smtp_server: SmtpServer) -> None:
    smtp_server.refuse(451)
    with _smtp_client(smtp_server) as client:
        client.login(SMTP_USER, SMTP_PASSWORD)
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(SMTP_USER, ["a@example.org"], _mail())
        assert 400 <= refused.value.smtp_code < 500

        smtp_server.refuse(452, at="DATA", times=1)
        with pytest.raises(smtplib.SMTPDataError) as data_refused:
            client.sendmail(SMTP_USER, ["a@example.org"], _mail())
        assert data_refused.value.smtp_code == 452
        client.sendmail(SMTP_USER, ["a@example.org"], _mail())  # times=1: the second try passes

        smtp_server.refuse(550, at="RCPT")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail(SMTP_USER, ["a@example.org"], _mail())
        smtp_server.recover()
        client.sendmail(SMTP_USER, ["a@example.org"], _mail())
    assert len(smtp_server.wait_for(2)) == 2
    assert smtp_server.refused == 3


def test_smtp_hang_makes_clients_time_out(smtp_server: SmtpServer) -> None:
    smtp_server.hang()
    t0 = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout, smtplib.SMTPServerDisconnected)):
        smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=0.5)
    assert time.monotonic() - t0 < 3

    smtp_server.hang("DATA")
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=0.5) as client:
        client.login(SMTP_USER, SMTP_PASSWORD)
        with pytest.raises((TimeoutError, socket.timeout, smtplib.SMTPServerDisconnected)):
            client.sendmail(SMTP_USER, ["a@example.org"], _mail())
    assert smtp_server.messages == []

    smtp_server.recover()
    with _smtp_client(smtp_server) as client:
        client.login(SMTP_USER, SMTP_PASSWORD)
        client.sendmail(SMTP_USER, ["a@example.org"], _mail())
    assert len(smtp_server.wait_for(1)) == 1


def test_smtp_wait_for_times_out_with_a_count(smtp_server: SmtpServer) -> None:
    with pytest.raises(TimeoutError, match="0 of 1"):
        smtp_server.wait_for(1, timeout=0.1)


def test_context_managers_stop_and_remove_their_own_dirs() -> None:
    with Dovecot(tls=False) as imap, Postgres() as pg, SmtpServer("smtps") as smtp:
        assert imap.running and pg.running and smtp.running
        dirs = [imap.workdir, pg.workdir]
        imap_pid, pg_pid = imap.pid, pg.pid
    assert imap_pid is not None and pg_pid is not None
    assert not _proc.group_alive(imap_pid) and not _proc.group_alive(pg_pid)
    assert not smtp.running and not port_open(smtp.host, smtp.port)
    assert not any(d.exists() for d in dirs)


# -- helpers ---------------------------------------------------------------------------------------------


def test_free_ports_are_distinct_and_unused() -> None:
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    assert not any(port_open("127.0.0.1", p) for p in ports)


def test_ensure_debian_packages_is_a_no_op_when_installed() -> None:
    assert ensure_debian_packages(["dovecot-imapd", "postgresql"]) == []


def test_work_dirs_are_reachable_by_service_users(
    devservices_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for p in [devservices_dir, *devservices_dir.parents]:
        assert os.stat(p).st_mode & 0o005 == 0o005, p
    # a concurrent pytest run resets its tmp root to 0700: our servers must not live below it
    assert not devservices_dir.is_relative_to(tmp_path_factory.getbasetemp().parent)
