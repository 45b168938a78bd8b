"""Acknowledgements end to end: daemon, Dovecot, SMTPS; one correct ack per submission, also when killed mid-send."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from devservices.smtp import ReceivedMessage, SmtpServer
from intake.acks.render import kind_label
from parsers.types import Kind
from store.acks_models import AckOutbox
from store.engine import make_engine
from store.models import Application, DocumentRow, Message
from tests.conftest import SMTP_PASSWORD
from tests.seasongen import (
    ALL_FILES,
    DEADLINE,
    Applicant,
    AppPlan,
    BuiltApplication,
    build_applications,
    compose,
    season_time,
)
from tests.support import PASSWORD_ENV, intake_env, run_intake, start_intake
from tests.test_acks_helpers import (
    SMTP_PASSWORD_ENV,
    Env,
    body_of,
    config_file,
    decoded,
    mail,
)

FULL_STAGES = ["parse_message", "store_attachments", "parse_documents", "applications", "enqueue_ack"]
ACK_DOMAIN = "intake.whaicj.126.com"


def wait_for(pred: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def ok(res: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert res.returncode == code, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert "Traceback" not in res.stderr, res.stderr
    return res


def outbox(db_url: str) -> list[AckOutbox]:
    engine = make_engine(db_url)
    try:
        with Session(engine) as s:
            return list(s.exec(select(AckOutbox).order_by(col(AckOutbox.id))))
    finally:
        engine.dispose()


def child_env(mailbox: Any = None, **extra: str) -> dict[str, str]:
    return intake_env(mailbox, **{SMTP_PASSWORD_ENV: SMTP_PASSWORD, **extra})


# -- a season's three kinds of submission through the daemon ------------------------------------------------


@pytest.fixture(scope="module")
def season() -> dict[str, Any]:
    """A complete, an incomplete and a late submission: their files and the emails that carry them."""
    complete = AppPlan(Kind.form_scenario, seed=601, files=ALL_FILES)
    incomplete = AppPlan(
        Kind.form_model,
        seed=602,
        applicant=Applicant.make(602, domain="126.com"),
        files={"word", "pdf"},
        values={"leader_name": None},
    )
    late = AppPlan(
        Kind.form_terminal,
        seed=603,
        applicant=Applicant.make(603, domain="163.com"),
        files={"word", "pdf", "commitment", "evidence"},
    )
    built = dict(zip(("complete", "incomplete", "late"), build_applications([complete, incomplete, late]), strict=True))
    arrivals = {
        "complete": season_time(-5),
        "incomplete": season_time(-2, 15),
        "late": DEADLINE + timedelta(minutes=3),
    }
    subjects = {
        "complete": "附件1 典型应用场景申报材料",
        "incomplete": "附件2申报书",
        "late": "附件4 智能终端产品申报材料（补交）",
    }
    mails = {
        name: compose(
            b.applicant.sender,
            subjects[name],
            b.attachments(),
            sent=arrivals[name] - timedelta(seconds=20),
            message_id=f"<{name}-1@{b.applicant.sender.split('@')[1]}>",
        )
        for name, b in built.items()
    }
    return {"built": built, "arrivals": arrivals, "subjects": subjects, "mails": mails}


def _app_rows(db_url: str) -> tuple[list[Application], list[DocumentRow], list[Message]]:
    engine = make_engine(db_url)
    try:
        with Session(engine) as s:
            return (
                list(s.exec(select(Application))),
                list(s.exec(select(DocumentRow).order_by(col(DocumentRow.id)))),
                list(s.exec(select(Message))),
            )
    finally:
        engine.dispose()


@pytest.mark.slow
def test_complete_incomplete_and_late_submissions_each_get_one_correct_ack(
    mailbox: Any, db_url: str, smtps: SmtpServer, tmp_path: Path, season: dict[str, Any]
) -> None:
    built: dict[str, BuiltApplication] = season["built"]
    for name, raw in season["mails"].items():
        mailbox.append(raw, internaldate=season["arrivals"][name])
    # A bounce and an auto-reply arrive too: neither gets anything.
    mailbox.append(mail("MAILER-DAEMON@126.com", "系统退信", files=0, headers=[("Return-Path", "<>")]))
    mailbox.append(mail("1234@qq.com", "自动回复: 回执", files=0, headers=[("X-QQ-AUTO-REPLY", "true")]))
    config = config_file(
        tmp_path,
        db_url,
        smtps,
        mailbox=mailbox,
        stages=FULL_STAGES,
        ack={"send_interval": "1s"},
    )
    # Room 213 has logged the paper copies of two of them already (it happens before the email arrives):
    # without them every application checked after the 2026 deadline would lack its paper copy (SPEC 4).
    for name, direction in (("complete", "场景"), ("incomplete", "模型")):
        b = built[name]
        r = run_intake("paper", "add", "--org", b.applicant.org, "--project", b.project, "--direction", direction,
                       "--copies", "2", "--received-at", "2026/7/6 10:00", "--user", "饶丽君",
                       config=config, env=child_env(mailbox))  # fmt: skip
        assert r.returncode == 0, r.stderr
    log = tmp_path / "daemon.log"
    daemon = start_intake("run", config=config, env=child_env(mailbox), log=log)
    try:
        wait_for(lambda: len(smtps.messages) >= 3 or daemon.poll() is not None, timeout=400, what="3 acks")
        assert daemon.poll() is None, log.read_text()
        time.sleep(3)  # nothing more comes
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, log.read_text()
    assert "Traceback" not in log.read_text()
    got: list[ReceivedMessage] = smtps.messages
    by_rcpt = {m.rcpt_tos[0]: m for m in got}
    senders = {name: b.applicant.sender for name, b in built.items()}
    assert len(got) == 3 and set(by_rcpt) == set(senders.values())

    apps, docs, msgs = _app_rows(db_url)
    msg_by_sender = {m.from_addr: m for m in msgs}
    rows = {r.message_pk: r for r in outbox(db_url)}
    assert len(rows) == 5
    assert sorted(r.status for r in rows.values()) == ["sent", "sent", "sent", "suppressed", "suppressed"]

    for name, b in built.items():
        received = by_rcpt[senders[name]]
        m = decoded(received.data)
        original = msg_by_sender[senders[name]]
        row = rows[original.id or 0]
        assert received.auth_user and received.tls and received.mail_from == "whaicj@126.com"
        assert m["Subject"] == "回执：" + season["subjects"][name]
        assert m["In-Reply-To"] == f"<{name}-1@{senders[name].split('@')[1]}>"
        assert m["References"] == m["In-Reply-To"]
        assert m["Auto-Submitted"] == "auto-replied" and m["X-Auto-Response-Suppress"] == "All"
        assert m["Message-ID"] == row.ack_message_id and m["Message-ID"].endswith(f"@{ACK_DOMAIN}>")
        assert row.raw is not None and row.raw.replace(b"\r\n", b"\n") == received.data.replace(b"\r\n", b"\n")
        text = body_of(received.data)
        # Receipt number, organisation, project and direction of the application the email carried.
        mine = [a for a in apps if a.credit_code == b.applicant.credit_code]
        assert len(mine) == 1, [(a.receipt_no, a.org_name) for a in apps]
        app = mine[0]
        assert row.receipt_nos == [app.receipt_no]
        assert f"回执编号：{app.receipt_no}" in text
        assert f"申报单位：{b.applicant.org}" in text
        assert f"项目名称：{b.project}" in text
        # Every file with the kind it was recognised as.
        for d in docs:
            if d.message_pk == original.id:
                assert f"{d.filename} —— {kind_label(d.kind, d.format, d.has_commitment_page)}" in text, d.filename
        word = built[name].files["word"][0]
        assert f"{word} —— 申报书（" in text and "Word 版" in text
        assert "市人工智能专班 彭沐喆 027-85317173" in text
        if name == "complete":
            assert app.status == "complete", app.problems
            assert "检查结果：材料齐全" in text and "需要补正" not in text
            assert "申报方向：典型应用场景" in text
            assert "请于 2026年7月7日17:00 前将纸质材料（申报书一式二份" in text and "213 室" in text
            assert "逾期" not in text
        elif name == "incomplete":
            assert app.status == "incomplete"
            assert "检查结果：材料不全或有误" in text
            codes = {p["code"] for p in app.problems}
            assert {"missing_license", "missing_field", "missing_evidence"} <= codes, app.problems
            assert "需要补正：" in text
            assert "缺少营业执照副本复印件" in text
            assert "申报书中“负责人姓名”一栏未填写" in text
            assert "请核对：" in text and "未发现证明材料" in text
            assert "申报方向：行业模型和智能体" in text
            assert "逾期" not in text
        else:
            assert app.status == "late"
            assert "检查结果：逾期" in text and "三、逾期提醒" in text
            assert "材料在截止时间（2026年7月7日17:00）之后收到" in text
            assert "前将纸质材料" not in text

    # The CLI shows the same: list, show, preview.
    env = child_env(mailbox)
    listed = json.loads(ok(run_intake("acks", "--format", "json", config=config, env=env)).stdout)
    assert sorted(x["status"] for x in listed) == ["sent", "sent", "sent", "suppressed", "suppressed"]
    assert all(x["reason"] for x in listed if x["status"] == "suppressed")
    sent = [x for x in listed if x["status"] == "sent"]
    shown = ok(run_intake("acks", "show", str(sent[0]["id"]), config=config, env=env)).stdout
    assert "status: sent" in shown and "回执编号：" in shown and "Subject: 回执：" in shown
    receipt = sent[0]["receipt_nos"][0]
    preview = ok(run_intake("acks", "preview", receipt, config=config, env=env))
    assert f"回执编号：{receipt}" in preview.stdout and "is sent" in preview.stderr
    assert len(smtps.messages) == 3  # previews send nothing
    # The export's `ack` section says the same.
    exported = json.loads(ok(run_intake("export", "--format", "json", config=config, env=env)).stdout)
    assert len(exported) == 3
    sender_of = {
        a.receipt_no: b.applicant.sender
        for b in built.values()
        for a in apps
        if a.credit_code == b.applicant.credit_code
    }
    assert sorted(item["receipt_no"] for item in exported) == sorted(sender_of)
    for item in exported:
        ack = item["ack"]
        assert ack["status"] == "sent" and ack["sent_at"].endswith("+08:00"), ack
        assert [(a["status"], a["to"]) for a in ack["acks"]] == [("sent", sender_of[item["receipt_no"]])]


# -- killed at each step ------------------------------------------------------------------------------------


def _one_pending(tmp_path: Path, db_url: str, smtps: SmtpServer, **kw: Any) -> tuple[Path, int]:
    config = config_file(tmp_path, db_url, smtps, **kw)
    eml = tmp_path / "in.eml"
    eml.write_bytes(mail("applicant@example.cn", "申报材料"))
    ok(run_intake("ingest", str(eml), config=config, env=child_env(kw.get("mailbox"))))
    rows = outbox(db_url)
    assert [r.status for r in rows] == ["pending"]
    return config, rows[0].id or 0


def test_daemon_killed_between_outbox_row_and_send_sends_exactly_one_after_restart(
    db_url: str, smtps: SmtpServer, tmp_path: Path
) -> None:
    config, ack_id = _one_pending(tmp_path, db_url, smtps, ack={"send_interval": "1s"})
    log = tmp_path / "daemon.log"
    crashed = start_intake("run", config=config, env=child_env(INTAKE_FAULT="ack.claimed"), log=log)
    assert crashed.wait(timeout=60) == -signal.SIGKILL, log.read_text()
    [row] = outbox(db_url)
    assert row.status == "sending" and row.data_started_at is None and smtps.messages == []
    daemon = start_intake("run", config=config, env=child_env(), log=log)
    try:
        wait_for(lambda: len(smtps.messages) >= 1, what="the ack after the restart")
        time.sleep(2.5)  # a few more runs of the job
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, log.read_text()
    assert len(smtps.messages) == 1
    [row] = outbox(db_url)
    assert row.id == ack_id and row.status == "sent"
    assert [h["what"] for h in row.history] == ["requeued"]


def test_killed_while_queueing_the_ack_queues_it_once(db_url: str, smtps: SmtpServer, tmp_path: Path) -> None:
    config = config_file(tmp_path, db_url, smtps)
    eml = tmp_path / "in.eml"
    eml.write_bytes(mail("applicant@example.cn", "申报材料"))
    crashed = run_intake("ingest", str(eml), config=config, env=child_env(INTAKE_FAULT="stage.enqueue_ack"))
    assert crashed.returncode == -signal.SIGKILL
    assert outbox(db_url) == []  # rolled back with the message's processing
    ok(run_intake("ingest", str(eml), config=config, env=child_env()))
    assert [r.status for r in outbox(db_url)] == ["pending"]
    ok(run_intake("acks", "send", config=config, env=child_env()))
    ok(run_intake("acks", "send", config=config, env=child_env()))
    assert len(smtps.wait_for(1)) == 1
    time.sleep(0.5)
    assert len(smtps.messages) == 1


def test_killed_before_data_or_after_handing_over_is_never_resent_blindly(
    db_url: str, smtps: SmtpServer, tmp_path: Path
) -> None:
    config, ack_id = _one_pending(tmp_path, db_url, smtps)
    # Killed after the server accepted the message, before the answer was recorded.
    crashed = run_intake("acks", "send", config=config, env=child_env(INTAKE_FAULT="ack.after_data"))
    assert crashed.returncode == -signal.SIGKILL
    assert len(smtps.wait_for(1)) == 1
    [row] = outbox(db_url)
    assert row.status == "sending" and row.data_started_at is not None
    # No Sent folder to look in: it becomes unknown, for staff; nothing is sent again.
    res = run_intake("acks", "send", config=config, env=child_env())
    assert res.returncode == 1 and "1 unknown" in res.stderr, res.stderr
    ok(run_intake("acks", "send", config=config, env=child_env()))
    assert len(smtps.messages) == 1
    unknown = json.loads(ok(run_intake("acks", "--status", "unknown", "--format", "json", config=config)).stdout)
    assert [x["id"] for x in unknown] == [ack_id]
    assert "may or may not have been delivered" in unknown[0]["reason"]
    # Staff find it in 已发送 and say so.
    ok(run_intake("acks", "mark-sent", str(ack_id), "--note", "在已发送中找到", config=config))
    [row] = outbox(db_url)
    assert (
        row.status == "sent" and row.history[-1]["what"] == "mark-sent" and row.history[-1]["note"] == "在已发送中找到"
    )
    assert len(smtps.messages) == 1


def test_killed_just_before_data_is_unknown_and_a_retry_sends_it_once(
    db_url: str, smtps: SmtpServer, tmp_path: Path
) -> None:
    config, ack_id = _one_pending(tmp_path, db_url, smtps)
    crashed = run_intake("acks", "send", config=config, env=child_env(INTAKE_FAULT="ack.before_data"))
    assert crashed.returncode == -signal.SIGKILL
    assert smtps.messages == []
    # From the outside, this looks like the case above: the conservative answer is the same.
    assert run_intake("acks", "send", config=config, env=child_env()).returncode == 1
    assert outbox(db_url)[0].status == "unknown" and smtps.messages == []
    ok(run_intake("acks", "retry", str(ack_id), "--now", config=config, env=child_env()))
    got = smtps.wait_for(1)
    assert len(got) == 1 and decoded(got[0].data)["Message-ID"] == outbox(db_url)[0].ack_message_id
    res = run_intake("acks", "retry", str(ack_id), config=config, env=child_env())
    assert res.returncode == 1 and "--force" in res.stderr


def test_killed_after_handing_over_is_settled_from_the_sent_folder(
    mailbox: Any, db_url: str, smtps: SmtpServer, tmp_path: Path
) -> None:
    config, _ = _one_pending(tmp_path, db_url, smtps, mailbox=mailbox, ack={"sent_check_folder": "Sent"})
    crashed = run_intake("acks", "send", config=config, env=child_env(mailbox, INTAKE_FAULT="ack.after_data"))
    assert crashed.returncode == -signal.SIGKILL
    [accepted] = smtps.wait_for(1)
    # The provider files what it accepted in the account's Sent folder (126.com's "save sent mail").
    mailbox.append(accepted.data, folder="Sent")
    ok(run_intake("acks", "send", config=config, env=child_env(mailbox)))
    [row] = outbox(db_url)
    assert row.status == "sent" and row.history[-1]["what"] == "confirmed"
    assert "found in Sent" in (row.smtp_reply or "")
    assert len(smtps.messages) == 1


# -- the IMAP side, in process --------------------------------------------------------------------------------


@pytest.fixture
def imap_env(
    mailbox: Any, env_factory: Callable[..., Env], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Env]:
    """env_factory with the test mailbox configured: `imap_env(**ack)`."""
    monkeypatch.setenv(PASSWORD_ENV, mailbox.password)
    return lambda **ack: env_factory(mailbox=mailbox, ack=ack)


def test_each_sent_ack_is_copied_to_the_sent_folder_once(mailbox: Any, imap_env: Callable[..., Env]) -> None:
    env = imap_env(sent_folder="Sent")
    a = env.receive(mail("a@example.cn", "申报材料"))
    b = env.receive(mail("b@example.cn", "申报材料"))
    report = env.send()
    assert report.sent == 2 and report.copied == 2
    assert env.send().copied == 0
    stored = mailbox.server.fetch_all(mailbox.user, "Sent")
    ids = sorted(decoded(m.raw)["Message-ID"] for m in stored)
    assert ids == sorted([a.ack_message_id, b.ack_message_id])
    assert all(b"\\Seen" in m.flags for m in stored)  # filed as read, like a sent message
    assert all(env.row(r.id or 0).copied_at is not None for r in (a, b))


def _dead_owner() -> str:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return f"{socket.gethostname()}:{p.pid}"


def test_interrupted_ack_absent_from_the_sent_folder_is_sent_again_after_a_grace_period(
    mailbox: Any, imap_env: Callable[..., Env]
) -> None:
    env = imap_env(sent_check_folder="Sent")
    mailbox.append(mail("someone-else@example.cn", "unrelated"), folder="Sent")
    row = env.receive(mail("c@example.cn", "申报材料"))
    dead = _dead_owner()
    assert not os.path.exists(f"/proc/{dead.rsplit(':', 1)[1]}")
    with Session(env.services.engine) as s:
        s.exec(
            update(AckOutbox)
            .where(col(AckOutbox.id) == row.id)
            .values(
                status="sending",
                lease_owner=dead,
                lease_until=env.now[0] + timedelta(minutes=10),
                data_started_at=env.now[0],
                attempts=1,
            )
        )
        s.commit()
    first = env.send()
    assert first.sent == 0 and env.row(row.id or 0).status == "sending"  # the server may still be filing it
    env.tick(minutes=3)
    second = env.send()
    assert second.requeued == 1 and second.sent == 1
    got = env.server.wait_for(1) if env.server else []
    assert len(got) == 1 and decoded(got[0].data)["Message-ID"] == row.ack_message_id
    assert env.row(row.id or 0).status == "sent"
