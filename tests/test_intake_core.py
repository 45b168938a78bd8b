"""Mailbox intake core end to end: real Dovecot, SQLite and PostgreSQL, the real `intake` CLI."""

from __future__ import annotations

import hashlib
import json
import signal
import time
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from store.engine import make_engine
from store.models import AttachmentRow, MailboxCheckpoint, MailboxUid, Message, QuarantineEvent
from tests import mailgen
from tests.support import intake_env, run_intake, start_intake, write_config

CST = timezone(timedelta(hours=8))
DEADLINE = datetime(2026, 7, 7, 17, 0, tzinfo=CST)


def submission(i: int, *, size: int = 20_000, subject: str | None = None) -> bytes:
    """A plausible application email: Chinese subject, a .docx-like and a .pdf-like attachment."""
    m = EmailMessage()
    m["From"] = f"申报单位{i} <applicant{i}@example.com>"
    m["To"] = "whaicj@126.com"
    m["Subject"] = subject or f"附件1 典型应用场景案例申报书 第{i}号"
    m["Message-ID"] = f"<sub-{i}-{size}@example.com>"
    m["Date"] = "Mon, 06 Jul 2026 10:00:00 +0800"
    m.set_content(f"您好，附件是第{i}号申报材料。")
    blob = hashlib.sha256(str(i).encode()).digest() * (size // 64 + 1)
    m.add_attachment(
        blob[:size],
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
        filename=f"附件1 申报书{i}.docx",
    )
    m.add_attachment(
        b"%PDF-1.4\n" + blob[: size // 2],
        maintype="application",
        subtype="pdf",
        filename=f"附件1 申报书{i}（盖章）.pdf",
    )
    return bytes(m)


def rows(db_url: str, model: Any, *, missing_ok: bool = False) -> list[Any]:
    """All rows of a table; with missing_ok, [] while a starting daemon has not created the tables yet."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    engine = make_engine(db_url)
    try:
        with Session(engine) as s:
            return list(s.exec(select(model)))
    except (OperationalError, ProgrammingError):
        if missing_ok:
            return []
        raise
    finally:
        engine.dispose()


def archive_files(config: Path) -> dict[str, bytes]:
    root = config.parent / "data" / "messages"
    return {p.name.removesuffix(".eml"): p.read_bytes() for p in root.rglob("*.eml")}


def wait_for(pred: Any, timeout: float = 60.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def ok(res: Any) -> Any:
    assert res.returncode == 0, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert "Traceback" not in res.stderr, res.stderr
    return res


# -- polling, archive, exactly once -------------------------------------------------------------------


def test_each_message_archived_and_recorded_once_across_polls_and_daemon_restarts(
    mailbox: Any, db_url: str, tmp_path: Path
) -> None:
    arrivals = [DEADLINE - timedelta(days=3), DEADLINE - timedelta(seconds=1), DEADLINE]
    for i, at in enumerate(arrivals):
        mailbox.append(submission(i), internaldate=at)
    config = write_config(tmp_path, mailbox=mailbox, db_url=db_url)
    env = intake_env(mailbox)

    ok(run_intake("poll", config=config, env=env))
    ok(run_intake("poll", config=config, env=env))  # nothing new: nothing recorded twice
    msgs = rows(db_url, Message)
    assert len(msgs) == 3
    assert sorted(m.received_at for m in msgs) == [a.astimezone(UTC) for a in arrivals]
    assert {m.received_source for m in msgs} == {"internaldate"}
    assert {m.state for m in msgs} == {"processed"}

    # Byte for byte: the archive holds exactly what the server returned, under its sha256.
    server_bytes = {hashlib.sha256(m.raw).hexdigest(): m.raw for m in mailbox.server.fetch_all(mailbox.user)}
    assert archive_files(config) == server_bytes
    assert {m.sha256 for m in msgs} == set(server_bytes)
    # BODY.PEEK: fetching did not mark anything \Seen.
    assert all("\\Seen" not in f for f in mailbox.flags().values())

    # The daemon picks up new mail, stops cleanly on SIGTERM, and a restart does not redo anything.
    log = tmp_path / "daemon.log"
    for round_ in range(2):
        daemon = start_intake("run", config=config, env=env, log=log)
        try:
            mailbox.append(submission(10 + round_), internaldate=DEADLINE - timedelta(hours=1))
            wait_for(
                lambda n=4 + round_: sum(m.state == "processed" for m in rows(db_url, Message, missing_ok=True)) == n,
                what="daemon to record the new message",
            )
        finally:
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=60) == 0, log.read_text()
    msgs = rows(db_url, Message)
    assert len(msgs) == 5 and len({m.sha256 for m in msgs}) == 5
    uids = rows(db_url, MailboxUid)
    assert sorted(u.uid for u in uids) == [1, 2, 3, 4, 5]
    assert len(archive_files(config)) == 5
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize("after", ["leave", "flag", "move"])
def test_server_action_after_archiving(mailbox: Any, tmp_path: Path, after: str) -> None:
    for i in range(3):
        mailbox.append(submission(i), internaldate=DEADLINE - timedelta(hours=i))
    config = write_config(
        tmp_path,
        mailbox=mailbox,
        sections={"mailbox": {"after": after, "move_to": "已归档", "flag": "$IntakeArchived"}},
    )
    ok(run_intake("poll", config=config, env=intake_env(mailbox)))
    inbox = mailbox.flags()
    if after == "leave":
        assert len(inbox) == 3 and all(flags == () for flags in inbox.values())
    elif after == "flag":
        assert len(inbox) == 3 and all(flags == ("$IntakeArchived",) for flags in inbox.values())
    else:
        assert inbox == {}
        moved = mailbox.server.fetch_all(mailbox.user, "已归档")
        assert len(moved) == 3
        assert all(b"\\Seen" not in m.flags for m in moved)
    db = f"sqlite:///{tmp_path / 'data/intake.db'}"
    assert all(u.action_done for u in rows(db, MailboxUid))
    # Polling again changes nothing on either side.
    ok(run_intake("poll", config=config, env=intake_env(mailbox)))
    assert len(rows(db, Message)) == 3
    assert len(mailbox.flags()) == (0 if after == "move" else 3)


# -- crashes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "after"),
    [
        ("poll.after_archive", "move"),  # archived and fsync'd, nothing committed yet
        ("poll.after_commit", "move"),  # committed, the server not yet told
        ("poll.after_action", "flag"),  # server acted, our record of it not yet committed
        ("stage.parse_message", "leave"),  # processing interrupted half-way
    ],
)
def test_killed_at_any_point_loses_nothing_and_duplicates_nothing(
    mailbox: Any, db_url: str, tmp_path: Path, fault: str, after: str
) -> None:
    for i in range(4):
        mailbox.append(submission(i), internaldate=DEADLINE - timedelta(minutes=i))
    config = write_config(
        tmp_path, mailbox=mailbox, db_url=db_url, sections={"mailbox": {"after": after, "batch_size": 2}}
    )
    crashed = run_intake("poll", config=config, env=intake_env(mailbox, INTAKE_FAULT=fault))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    after_crash = len(rows(db_url, Message))
    if fault == "poll.after_archive":
        assert after_crash == 0 and len(archive_files(config)) == 2
    if fault == "poll.after_commit":
        assert after_crash == 2 and len(mailbox.flags()) == 4  # nothing moved yet

    ok(run_intake("poll", config=config, env=intake_env(mailbox)))
    msgs = rows(db_url, Message)
    assert len(msgs) == 4 and len({m.sha256 for m in msgs}) == 4
    assert {m.state for m in msgs} == {"processed"}
    assert len(archive_files(config)) == 4
    assert sorted(u.uid for u in rows(db_url, MailboxUid)) == [1, 2, 3, 4]
    assert all(u.action_done for u in rows(db_url, MailboxUid))
    # Each message's attachments are listed once, even the one whose processing was cut short.
    atts = rows(db_url, AttachmentRow)
    assert len(atts) == 8
    assert len({(a.message_pk, a.seq) for a in atts}) == 8
    if after == "move":
        assert mailbox.flags() == {}
        assert len(mailbox.server.fetch_all(mailbox.user, "Archived")) == 4
    if after == "flag":
        assert all(f == ("$IntakeArchived",) for f in mailbox.flags().values())


def test_uidvalidity_change_rescans_without_reprocessing(mailbox: Any, db_url: str, tmp_path: Path) -> None:
    for i in range(5):
        mailbox.append(submission(i), internaldate=DEADLINE - timedelta(hours=i))
    config = write_config(tmp_path, mailbox=mailbox, db_url=db_url, sections={"mailbox": {"after": "flag"}})
    ok(run_intake("poll", config=config, env=intake_env(mailbox)))
    before = {m.sha256: (m.id, m.processed_at) for m in rows(db_url, Message)}
    old = rows(db_url, MailboxCheckpoint)[0].uidvalidity

    new = mailbox.recreate_folder()  # same messages come back under new UIDs, without our flag
    mailbox.append(submission(99), internaldate=DEADLINE - timedelta(minutes=5))
    res = ok(run_intake("poll", config=config, env=intake_env(mailbox)))
    assert "1 new, 5 already known" in res.stderr or "(1 new, " in res.stderr, res.stderr

    after = {m.sha256: (m.id, m.processed_at) for m in rows(db_url, Message)}
    assert len(after) == 6
    assert {k: after[k] for k in before} == before  # the known ones were not processed again
    cp = rows(db_url, MailboxCheckpoint)[0]
    assert (old, cp.uidvalidity) == (old, new) and old != new
    assert len([u for u in rows(db_url, MailboxUid) if u.uidvalidity == new]) == 6
    assert all(f == ("$IntakeArchived",) for f in mailbox.flags().values())


def test_connection_dropped_mid_fetch_recovers(mailbox: Any, tcp_proxy: Any, tmp_path: Path) -> None:
    for i in range(8):
        mailbox.append(submission(i, size=150_000), internaldate=DEADLINE - timedelta(minutes=i))
    proxy = tcp_proxy(mailbox.host, mailbox.port)
    config = write_config(
        tmp_path, mailbox=mailbox, sections={"mailbox": {"port": proxy.port, "batch_size": 2, "timeout": "10s"}}
    )
    # Server-to-client bytes: the greeting and login go through, the cut lands inside a later FETCH.
    proxy.cut_after_bytes(700_000, direction="down", new_connections=True)
    res = run_intake("poll", config=config, env=intake_env(mailbox))
    assert res.returncode == 1, res.stderr
    assert "FETCH failed" in res.stderr or "cannot" in res.stderr
    assert "Traceback" not in res.stderr
    partial = len(rows(f"sqlite:///{tmp_path / 'data/intake.db'}", Message))
    assert 0 < partial < 8

    proxy.clear_faults()
    ok(run_intake("poll", config=config, env=intake_env(mailbox)))
    msgs = rows(f"sqlite:///{tmp_path / 'data/intake.db'}", Message)
    assert len(msgs) == 8 and len({m.sha256 for m in msgs}) == 8
    cp = rows(f"sqlite:///{tmp_path / 'data/intake.db'}", MailboxCheckpoint)[0]
    assert cp.last_error is not None and cp.last_success_at is not None and cp.last_success_at > cp.last_error_at


def test_id_is_sent_after_login_and_before_select(mailbox: Any, tmp_path: Path) -> None:
    mailbox.append(submission(1))
    config = write_config(tmp_path, mailbox=mailbox)
    ok(run_intake("poll", config=config, env=intake_env(mailbox)))
    sessions = [s for s in mailbox.rawlog_commands() if "SELECT" in s]
    assert sessions, "no session with SELECT in Dovecot's rawlog"
    for verbs in sessions:
        assert "ID" in verbs and verbs.index("ID") < verbs.index("SELECT"), verbs
    assert 'name="intake"' in mailbox.rawlog_text() or '"name" "intake"' in mailbox.rawlog_text()


def test_wrong_password_is_a_clear_error(mailbox: Any, tmp_path: Path) -> None:
    config = write_config(tmp_path, mailbox=mailbox)
    res = run_intake("poll", config=config, env=intake_env(mailbox, INTAKE_TEST_IMAP_PASSWORD="wrong"))
    assert res.returncode == 1
    assert "login refused" in res.stderr and "Traceback" not in res.stderr


# -- what arrives: tricky messages and the real-world corpus -------------------------------------------


def test_tricky_corpus_through_imap_decodes_and_classes_right(mailbox: Any, tmp_path: Path) -> None:
    corpus = mailgen.corpus()
    # Inputs that stay hopeless after the server stored them (Dovecot rewrites NULs and bare line ends).
    broken = [(n, raw) for n, raw, _ in mailgen.hopeless() if n in ("outlook_msg", "pdf_file", "recursion_bomb")]
    for _name, raw, _exp in corpus:
        mailbox.append(raw, internaldate=DEADLINE - timedelta(days=1))
    for _name, raw in broken:
        mailbox.append(raw, internaldate=DEADLINE - timedelta(days=1))
    config = write_config(tmp_path, mailbox=mailbox)
    res = run_intake("poll", config=config, env=intake_env(mailbox))
    # Quarantined input is reported (exit 1) but does not stop the rest.
    assert res.returncode == 1, res.stderr
    reported = [line for line in res.stderr.splitlines() if ";UID=" in line and ": quarantined: " in line]
    assert len(reported) == len(broken), res.stderr
    listed = json.loads(ok(run_intake("messages", "--format", "json", config=config)).stdout)
    assert len(listed) == len(corpus) + len(broken)
    server = {hashlib.sha256(m.raw).hexdigest(): m.raw for m in mailbox.server.fetch_all(mailbox.user)}
    assert {m["sha256"] for m in listed} == set(server)
    # Appended in corpus order, so UID n is the n-th message (the server may rewrite odd bytes, e.g. NUL).
    by_uid = {int(m["source"].rsplit("UID=", 1)[1]): m for m in listed}
    for uid, (name, _raw, exp) in enumerate(corpus, start=1):
        item = by_uid.get(uid)
        assert item is not None, f"{name} missing"
        assert item["class"] == exp["class"], name
        assert item["quarantined"] is None, (name, item["quarantined"])
        if "filenames" in exp:
            assert [a["filename"] for a in item["attachments"]] == exp["filenames"], name
        if "subject" in exp:
            assert item["subject"] == exp["subject"], name
        for a in item["attachments"]:
            assert len(a["sha256"]) == 64 and a["size"] >= 0
        if exp.get("cloud"):
            assert len(item["cloud_links"]) == len(exp["cloud"]), name
    quarantined = [m for m in listed if m["quarantined"]]
    assert len(quarantined) == len(broken)
    assert all("cannot be parsed" in m["quarantined"] for m in quarantined)
    events = rows(f"sqlite:///{tmp_path / 'data/intake.db'}", QuarantineEvent)
    assert len(events) == len(broken)


def _realworld() -> Path:
    import os

    root = Path(os.environ.get("INTAKE_REALWORLD", "/work/shared/realworld"))
    if not root.is_dir():
        pytest.fail(f"real-world corpus not found at {root}: set INTAKE_REALWORLD")
    return root


def test_realworld_messages_are_recorded_or_quarantined_never_crash(tmp_path: Path) -> None:
    root = _realworld()
    files = sorted([*root.glob("eml/**/*.eml"), *root.glob("cn_mail_conventions/*.eml")])
    assert len(files) > 300
    config = write_config(tmp_path)
    res = run_intake("ingest", str(root / "eml"), str(root / "cn_mail_conventions"), config=config)
    assert res.returncode in (0, 1), res.stderr
    assert "Traceback" not in res.stderr
    listed = json.loads(ok(run_intake("messages", "--format", "json", config=config)).stdout)
    recorded = {m["sha256"] for m in listed}
    rejected = {line.split(": ", 1)[0] for line in res.stderr.splitlines() if ": " in line}
    for f in files:
        # Byte-identical files are one message (recorded under the first path met).
        sha = hashlib.sha256(f.read_bytes()).hexdigest()
        assert sha in recorded or str(f) in rejected, f"{f} neither recorded nor reported"
    for m in listed:
        assert m["state"] in ("processed", "quarantined")
        if m["state"] == "quarantined":
            assert m["quarantined"], m["source"]

    by_source = {Path(m["source"]).name: m for m in listed}
    expect = {
        "bounce__mailbox-full.eml": "bounce",
        "bounce__office365.eml": "bounce",
        "multipart_report_emails__report_530.eml": "bounce",
        "qq_autoreply_X-QQ-AUTO-REPLY_qemu-devel.eml": "auto_reply",
        "qq_holidayreply_X-QQ-HolidayReply_gbk_from_blog.eml": "auto_reply",
        "mail_test_13.eml": "list",
        "mail_test_16.eml": "list",
    }
    for name, klass in expect.items():
        assert by_source[name]["class"] == klass, (name, by_source[name]["class_reasons"])
    # A zh-CN Exchange "答复:" is a person answering, not an auto-reply.
    assert by_source["exchange_zh-CN_reply_dafu_gb2312_baidu_kvm.eml"]["class"] != "auto_reply"
    # GBK bytes in a gb2312-labelled subject come out as text, not mojibake or an error.
    subject = by_source["mail_test_9.eml"]["subject"]
    assert subject and "\ufffd" not in subject and any("\u4e00" <= ch <= "\u9fff" for ch in subject)

    # Ingesting everything again changes nothing.
    again = run_intake("ingest", str(root / "eml"), str(root / "cn_mail_conventions"), config=config)
    assert "0 new" in again.stderr
    assert len(json.loads(run_intake("messages", "--format", "json", config=config).stdout)) == len(listed)


def test_realworld_messages_through_imap(mailbox: Any, tmp_path: Path) -> None:
    root = _realworld()
    files = sorted(root.glob("eml/sisimai_bounces/*.eml"))[:25] + sorted(root.glob("cn_mail_conventions/*.eml"))
    for f in files:
        mailbox.append(f.read_bytes(), internaldate=DEADLINE - timedelta(days=2))
    config = write_config(tmp_path, mailbox=mailbox)
    res = run_intake("poll", config=config, env=intake_env(mailbox))
    assert res.returncode in (0, 1) and "Traceback" not in res.stderr, res.stderr
    listed = json.loads(ok(run_intake("messages", "--format", "json", config=config)).stdout)
    assert len(listed) == len(files)
    assert all(m["state"] in ("processed", "quarantined") for m in listed)
    # Arriving by IMAP (CRLF-normalised by the server) classes each message as parsing its file does.
    from parsers.mail import parse_message

    by_uid = {int(m["source"].rsplit("UID=", 1)[1]): m for m in listed}
    for uid, f in enumerate(files, start=1):
        assert by_uid[uid]["class"] == parse_message(f.read_bytes()).msg_class.value, f.name
    assert {m["class"] for m in listed} >= {"bounce", "auto_reply"}
    qq = [by_uid[i] for i, f in enumerate(files, start=1) if f.name.startswith("qq_")]
    assert len(qq) == 2 and all(m["class"] == "auto_reply" for m in qq)


# -- TLS, IDLE, check-config ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["ssl", "starttls"])
def test_tls_modes_verify_the_server_certificate(mailbox: Any, tmp_path: Path, mode: str) -> None:
    mailbox.append(submission(1))
    port = mailbox.ssl_port if mode == "ssl" else mailbox.port
    config = write_config(
        tmp_path,
        mailbox=mailbox,
        sections={"mailbox": {"host": "localhost", "port": port, "tls": mode, "cafile": str(mailbox.cafile)}},
    )
    ok(run_intake("poll", config=config, env=intake_env(mailbox)))
    assert len(rows(f"sqlite:///{tmp_path / 'data/intake.db'}", Message)) == 1
    # Without the CA the self-signed certificate is refused: no silent downgrade.
    config = write_config(
        tmp_path, mailbox=mailbox, sections={"mailbox": {"host": "localhost", "port": port, "tls": mode, "cafile": ""}}
    )
    res = run_intake("poll", config=config, env=intake_env(mailbox))
    assert res.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in res.stderr, res.stderr


def test_idle_brings_new_mail_in_within_seconds(mailbox: Any, tmp_path: Path) -> None:
    # Scheduled polls are 10 minutes apart: only IDLE can explain a quick pick-up.
    config = write_config(tmp_path, mailbox=mailbox, sections={"mailbox": {"idle": True, "poll_interval": "10m"}})
    db = f"sqlite:///{tmp_path / 'data/intake.db'}"
    log = tmp_path / "daemon.log"
    daemon = start_intake("run", config=config, env=intake_env(mailbox), log=log)
    try:
        wait_for(
            lambda: any(cp.last_success_at for cp in rows(db, MailboxCheckpoint, missing_ok=True)),
            what="first poll",
        )
        time.sleep(1.5)  # the IDLE connection is up
        latencies = []
        for i in range(3):
            start = time.monotonic()
            mailbox.append(submission(i), internaldate=DEADLINE - timedelta(hours=1))
            wait_for(
                lambda n=i + 1: len([m for m in rows(db, Message) if m.state == "processed"]) == n,
                timeout=30,
                what="IDLE pick-up",
            )
            latencies.append(time.monotonic() - start)
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, log.read_text()
    assert max(latencies) < 10, latencies
    assert "Traceback" not in log.read_text()


def test_check_config_connect_reports_the_mailbox(mailbox: Any, tmp_path: Path) -> None:
    for i in range(2):
        mailbox.append(submission(i))
    config = write_config(tmp_path, mailbox=mailbox)
    res = ok(run_intake("check-config", "--connect", config=config, env=intake_env(mailbox)))
    assert "configuration OK" in res.stdout
    assert "connected: 2 messages in INBOX" in res.stdout
    assert "IDLE: advertised" in res.stdout
    # check-config never records or changes anything.
    assert not (tmp_path / "data" / "intake.db").exists() or not rows(
        f"sqlite:///{tmp_path / 'data/intake.db'}", Message
    )
    assert all("\\Seen" not in f for f in mailbox.flags().values())
