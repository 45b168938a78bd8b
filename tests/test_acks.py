"""Acknowledgements: who gets one, the per-sender limit, what it says, retries, exactly once (SQLite, PostgreSQL)."""

from __future__ import annotations

import email
import threading
from collections.abc import Callable
from datetime import timedelta
from email.header import decode_header, make_header
from pathlib import Path

from sqlalchemy import update
from sqlmodel import Session, col, select

from intake.acks.outbox import AckSender, retry
from intake.pipeline import replay
from store.acks_models import AckOutbox
from store.models import Application, DocumentRow, Message
from tests import mailgen
from tests.test_acks_helpers import (  # env_factory: a fixture
    OUR_ADDRESS,
    Env,
    body_of,
    decoded,
    header_block,
    mail,
)

ACK_DOMAIN = "intake.whaicj.126.com"


# -- who gets none ------------------------------------------------------------------------------------------


def _suppression_cases() -> list[tuple[str, bytes, str]]:
    """(name, message, a substring of the recorded reason): every SPEC 8 / issue 6 signal."""
    own = f"<ack-7-0011223344556677@{ACK_DOMAIN}>"
    read_receipt = mailgen.message(
        [
            ("From", "reader@example.cn"),
            ("To", OUR_ADDRESS),
            ("Subject", "Read: 申报材料"),
            ("Date", mailgen.BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", 'multipart/report; report-type=disposition-notification; boundary="r"'),
        ],
        mailgen.multipart(
            "r",
            [
                mailgen.text_part("已读"),
                mailgen.part([("Content-Type", "message/disposition-notification")], b"Disposition: manual-action\r\n"),
            ],
        ),
    )
    cases = [
        ("auto-submitted", mail(headers=[("Auto-Submitted", "auto-generated")]), "Auto-Submitted: auto-generated"),
        ("auto-replied", mail(files=0, headers=[("Auto-Submitted", "auto-replied")]), "Auto-Submitted: auto-replied"),
        # A bulk mailer's "submission" with files: kept as a submission, never answered (a forged sender).
        ("precedence-bulk", mail("news@bulk.example.cn", headers=[("Precedence", "bulk")]), "Precedence: bulk"),
        ("precedence-junk", mail(headers=[("Precedence", "junk")]), "Precedence: junk"),
        ("precedence-list", mail(files=0, headers=[("Precedence", "list")]), "Precedence: list"),
        ("precedence-auto_reply", mail(files=0, headers=[("Precedence", "auto_reply")]), "Precedence: auto_reply"),
        ("list-unsubscribe", mail(headers=[("List-Unsubscribe", "<mailto:u@lists.example.cn>")]), "List-Unsubscribe"),
        ("list-id", mail(files=0, headers=[("List-Id", "<ai.lists.example.cn>")]), "List-Id"),
        ("x-auto-response-suppress", mail(headers=[("X-Auto-Response-Suppress", "All")]), "X-Auto-Response-Suppress"),
        ("x-autoreply", mail(files=0, headers=[("X-Autoreply", "yes")]), "X-Autoreply"),
        ("x-autorespond", mail(files=0, headers=[("X-Autorespond", "Out of office")]), "X-Autorespond"),
        (
            "qq-auto-reply-header",
            mail("1234@qq.com", files=0, headers=[("X-QQ-AUTO-REPLY", "true")]),
            "X-QQ-AUTO-REPLY",
        ),
        ("qq-holiday", mail("5678@qq.com", files=0, headers=[("X-QQ-HolidayReply", "true")]), "X-QQ-HolidayReply"),
        (
            "qq-auto-envelope",
            mail("4321@qq.com", files=0, headers=[("Return-Path", "<4321+auto_=whaicj=126.com@qq.com>")]),
            "+auto_=",
        ),
        ("qq-subject", mail("8765@qq.com", "自动回复: 申报材料", files=0), "auto-reply subject"),
        ("qq-subject-brackets", mail("8766@qq.com", "（自动回复）Re：申报材料", files=0), "auto-reply subject"),
        ("empty-return-path", mail(headers=[("Return-Path", "<>")]), "empty Return-Path"),
        ("mailer-daemon", mail("MAILER-DAEMON@mx.example.cn", "Undelivered Mail", files=0), "MAILER-DAEMON"),
        ("postmaster", mail("postmaster@example.cn", files=0), "postmaster"),
        ("noreply", mail("noreply@oa.example.gov.cn"), "no-reply"),
        ("no-reply", mail("no-reply@notify.example.cn", files=0), "no-reply"),
        ("reply-to-noreply", mail(headers=[("Reply-To", "do-not-reply@example.cn")]), "no-reply address"),
        ("own-mailbox", mail(OUR_ADDRESS), "intake mailbox itself"),
        ("own-message-id-back", mail("someone@example.cn", message_id=own), "our own acknowledgement came back"),
        (
            "reply-to-our-ack",
            mail("someone@example.cn", "Re: 回执：申报材料", files=0, headers=[("In-Reply-To", own)]),
            "a reply to our acknowledgement",
        ),
        (
            "references-our-ack",
            mail("someone@example.cn", "答复: 回执", files=0, headers=[("References", f"<a@b.cn> {own}")]),
            "a reply to our acknowledgement",
        ),
        ("read-receipt", read_receipt, "disposition-notification"),
    ]
    corpus = {name: raw for name, raw, _ in mailgen.corpus()}
    cases += [
        ("mailgen-bounce", corpus["bounce_dsn"], "multipart/report"),
        ("mailgen-out-of-office", corpus["out_of_office"], "Auto-Submitted"),
        ("mailgen-qq-auto-reply", corpus["qq_auto_reply"], "X-QQ-AUTO-REPLY"),
        ("mailgen-qq-holiday", corpus["qq_holiday_gbk"], "X-QQ-HolidayReply"),
        ("mailgen-ses-relayed-qq", corpus["ses_relayed_qq_autoreply"], "自动回复"),
        ("mailgen-list", corpus["list_mail"], "List-Id"),
        ("mailgen-suppress-header", corpus["suppress_header_only"], "X-Auto-Response-Suppress"),
        ("mailgen-noreply", corpus["noreply_sender"], "no-reply"),
        ("mailgen-headerless", corpus["headerless_text"], "no usable address"),
    ]
    return cases


def test_every_suppression_signal_gets_no_ack_and_records_why(env_factory: Callable[..., Env]) -> None:
    env = env_factory()
    cases = _suppression_cases()
    rows = {}
    for name, raw, _reason in cases:
        rows[name] = env.receive(raw)
    for name, _raw, reason in cases:
        row = rows[name]
        assert row.status == "suppressed", f"{name}: {row.status} to {row.recipient}"
        assert row.kind == "none" and row.raw is None and row.ack_message_id is None, name
        assert reason.lower() in (row.reason or "").lower(), f"{name}: {row.reason!r} lacks {reason!r}"
    report = env.send()
    assert report.sent == 0
    assert env.server is not None and env.server.messages == []


def test_people_do_get_one_exchange_dafu_and_replies_with_files(env_factory: Callable[..., Env]) -> None:
    env = env_factory()
    corpus = {name: raw for name, raw, _ in mailgen.corpus()}
    own = f"<ack-9-8899aabbccddeeff@{ACK_DOMAIN}>"
    question = env.receive(corpus["exchange_dafu"])  # 答复: is a person's reply, not an auto-reply
    resubmission = env.receive(corpus["exchange_dafu_with_attachment"])
    reply_with_files = env.receive(mail("fix@example.cn", "Re: 回执：申报材料（更正）", headers=[("In-Reply-To", own)]))
    explicit_no = env.receive(mail("person@example.cn", headers=[("Auto-Submitted", "no")]))
    reply_to = env.receive(mail("secretary@example.cn", headers=[("Reply-To", "Boss <Boss@Example.CN>")]))
    assert (question.status, question.kind, question.recipient) == ("pending", "question", "liu@corp.example.cn")
    assert (resubmission.status, resubmission.kind) == ("pending", "receipt")
    assert (reply_with_files.status, reply_with_files.kind) == ("pending", "receipt")
    assert (explicit_no.status, explicit_no.kind) == ("pending", "receipt")
    assert reply_to.recipient == "boss@example.cn"  # Reply-To, not From
    report = env.send()
    assert report.sent == 5
    assert env.server is not None
    got = env.server.wait_for(5)
    assert sorted(m.rcpt_tos[0] for m in got) == sorted(
        ["liu@corp.example.cn", "liu@corp.example.cn", "fix@example.cn", "person@example.cn", "boss@example.cn"]
    )
    answer = [m for m in got if decoded(m.data)["Message-ID"] == question.ack_message_id]
    assert len(answer) == 1 and "用于接收" in body_of(answer[0].data)


def test_questions_get_a_short_note_which_can_be_switched_off(env_factory: Callable[..., Env]) -> None:
    on = env_factory()
    row = on.receive(mail("asker@example.cn", "请问纸质材料可以邮寄吗", files=0))
    assert (row.status, row.kind) == ("pending", "question")
    assert row.raw is not None
    text = body_of(row.raw)
    assert f"本邮箱（{OUR_ADDRESS}）用于接收" in text
    assert "市经信局 市公安局关于联合开展“人工智能+社会治理”创新应用征集的通知" in text
    assert "市人工智能专班 彭沐喆 027-85317173" in text
    assert decoded(row.raw)["Subject"] == "回执：请问纸质材料可以邮寄吗"
    off = env_factory(ack={"questions": False})
    row = off.receive(mail("asker2@example.cn", "请问截止时间", files=0))
    assert row.status == "suppressed" and "questions = false" in (row.reason or "")


# -- the per-sender limit -----------------------------------------------------------------------------------


def test_rate_limit_then_one_notice_then_nothing_until_the_window_has_passed(env_factory: Callable[..., Env]) -> None:
    env = env_factory()
    sender = "busy@district.example.cn"
    rows = []
    for i in range(12):
        rows.append(env.receive(mail(sender, f"申报材料 {i + 1}")))
        env.tick(minutes=10)
    other = env.receive(mail("calm@example.cn", "申报材料"))
    assert [r.kind for r in rows[:10]] == ["receipt"] * 10
    assert all(r.status == "pending" for r in rows[:11])
    assert rows[10].kind == "limit_notice"
    assert rows[11].status == "suppressed" and "per-sender limit" in (rows[11].reason or "")
    assert other.kind == "receipt" and other.status == "pending"
    report = env.send()
    assert report.sent == 12
    assert env.server is not None
    to_busy = [m for m in env.server.wait_for(12) if m.rcpt_tos == (sender,)]
    assert len(to_busy) == 11
    notice = body_of(to_busy[-1].data)
    assert "24 小时内本邮箱已向您的地址发送了 10 封自动回执" in notice
    assert "不再向该地址发送自动回执" in notice
    # A day after the first of them, the window has room again.
    env.tick(hours=24)
    again = env.receive(mail(sender, "申报材料 13"))
    assert (again.kind, again.status) == ("receipt", "pending")


# -- exactly once -------------------------------------------------------------------------------------------


def test_reprocessing_and_replay_never_send_a_second_ack(env_factory: Callable[..., Env]) -> None:
    env = env_factory()
    raw = mail("once@example.cn", "申报材料")
    row = env.receive(raw)
    first_id = row.ack_message_id
    assert env.send().sent == 1
    assert replay(env.services, row.message_pk, env.stages) == "processed"
    assert replay(env.services, row.message_pk, env.stages) == "processed"
    rows = env.rows()
    assert len(rows) == 1 and rows[0].status == "sent" and rows[0].ack_message_id == first_id
    assert env.send().sent == 0
    assert env.server is not None
    env.server.wait_for(1)
    assert len(env.server.messages) == 1
    # The same bytes ingested again are the same message: nothing new either.
    assert env.ingest(raw) == row.message_pk
    env.process()
    assert env.send().sent == 0
    assert len(env.rows()) == 1 and len(env.server.messages) == 1


def test_a_pending_ack_is_recomposed_by_a_replay_under_the_same_message_id(env_factory: Callable[..., Env]) -> None:
    env = env_factory(ack={"subject_prefix": "收到："})
    row = env.receive(mail("later@example.cn", "申报材料"))
    assert row.raw is not None
    env.tick(hours=1)
    assert replay(env.services, row.message_pk, env.stages) == "processed"
    again = env.row(row.id or 0)
    assert again.status == "pending" and again.ack_message_id == row.ack_message_id
    assert again.raw is not None and again.raw != row.raw
    assert decoded(again.raw)["Date"].datetime == env.now[0]  # composed anew, now
    assert decoded(again.raw)["Subject"] == "收到：申报材料"
    assert len(env.rows()) == 1


def test_two_senders_at_once_send_each_ack_exactly_once(env_factory: Callable[..., Env]) -> None:
    env = env_factory()
    for i in range(16):
        env.ingest(mail(f"u{i}@example.cn", f"申报 {i}"))
    env.process()
    a, b = AckSender(env.services), AckSender(env.services)
    b.owner = "other-host:1"
    reports = []
    threads = [threading.Thread(target=lambda s=s: reports.append(s.run())) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.sent for r in reports) == 16
    assert env.server is not None
    got = env.server.wait_for(16)
    assert sorted(m.rcpt_tos[0] for m in got) == sorted(f"u{i}@example.cn" for i in range(16))
    assert all(r.status == "sent" for r in env.rows())


# -- what it looks like on the wire -------------------------------------------------------------------------


def test_subject_header_injection_is_stripped(env_factory: Callable[..., Env]) -> None:
    env = env_factory()
    evil = "申报材料\r\nBcc: victim@example.org\r\nX-Injected: yes\n\tContent-Type: text/html"
    row = env.receive(mail("attacker@example.cn", evil))
    assert row.status == "pending"
    env.send()
    assert env.server is not None
    got = env.server.wait_for(1)[0]
    assert got.rcpt_tos == ("attacker@example.cn",)
    head = header_block(got.data)
    names = [line.split(b":", 1)[0].lower() for line in head.split(b"\r\n") if line and not line[:1].isspace()]
    assert b"bcc" not in names and b"x-injected" not in names
    assert names.count(b"content-type") == 1 and names.count(b"subject") == 1
    m = decoded(got.data)
    assert m["Subject"] == "回执：申报材料 Bcc: victim@example.org X-Injected: yes Content-Type: text/html"
    assert m.get_content_type() == "text/plain"


def test_headers_and_encoding_on_the_wire(env_factory: Callable[..., Env]) -> None:
    env = env_factory()
    row = env.receive(
        mail(
            "王工 <wang@example.cn>",
            "关于申报“人工智能+社会治理”项目的材料",
            message_id="<orig-1@mail.example.cn>",
            headers=[("References", "<root@mail.example.cn>"), ("In-Reply-To", "<root@mail.example.cn>")],
        )
    )
    env.send()
    assert env.server is not None
    got = env.server.wait_for(1)[0]
    assert got.mail_from == OUR_ADDRESS and got.rcpt_tos == ("wang@example.cn",) and got.tls
    head = header_block(got.data).decode("ascii")  # 7-bit: Chinese only as RFC 2047 encoded words
    assert "=?utf-8?" in head
    m = decoded(got.data)
    assert m["Subject"] == "回执：关于申报“人工智能+社会治理”项目的材料"
    assert m["Auto-Submitted"] == "auto-replied"
    assert m["X-Auto-Response-Suppress"] == "All"
    assert m["In-Reply-To"] == "<orig-1@mail.example.cn>"
    assert m["References"] == "<root@mail.example.cn> <orig-1@mail.example.cn>"
    assert m["Message-ID"] == row.ack_message_id and str(row.ack_message_id).endswith(f"@{ACK_DOMAIN}>")
    assert m["From"].addresses[0].addr_spec == OUR_ADDRESS
    # Python's own address parser puts a space between two encoded words of a display name; decode_header
    # follows RFC 2047 6.2 (whitespace between adjacent encoded words is dropped), as mail clients do.
    from_header = email.message_from_bytes(got.data)["From"]
    assert str(make_header(decode_header(from_header))) == f"武汉市“人工智能+社会治理”创新应用征集 <{OUR_ADDRESS}>"
    assert m["To"] == "wang@example.cn"
    assert m.get_content_charset() == "utf-8" and m["Content-Transfer-Encoding"] == "base64"
    # What was stored is what was sent.
    stored = env.row(row.id or 0)
    assert stored.raw is not None and stored.raw.replace(b"\r\n", b"\n") == got.data.replace(b"\r\n", b"\n")
    assert stored.status == "sent" and stored.smtp_reply and stored.smtp_reply.startswith("250")


def _add_application(env: Env, message_pk: int, *, status: str, problems: list[dict[str, str]]) -> str:
    """Documents and an application for a message, as grouping and checks would write them."""
    with Session(env.services.engine) as s:
        app = Application(
            call_code="AI2026",
            form_type="scenario",
            receipt_no="AI2026-S-0042",
            org_key="k",
            org_name="武汉镕智科技有限公司",
            credit_code="91420100MA4K2X1234",
            project_name="城市内涝智能预警",
            status=status,
            late=status == "late",
            problems=problems,
            fields={"scenario_type": "AI+市政设施"},
        )
        s.add(app)
        s.flush()
        docs = [
            ("附件1 申报书.docx", "form_scenario", "docx", app.id, []),
            ("承诺书.pdf", "commitment", "pdf_scan", app.id, []),
            ("材料.zip", "other", "archive", None, []),
            (
                "证明/检测报告.pdf",
                "evidence",
                "pdf_text",
                app.id,
                [{"code": "unreadable_attachment", "severity": "error", "detail": "检测报告.pdf：文件已加密"}],
            ),
        ]
        parent = None
        for seq, (name, kind, fmt, app_id, probs) in enumerate(docs):
            d = DocumentRow(
                message_pk=message_pk,
                seq=seq,
                filename=name.rsplit("/", 1)[-1],
                member_path=name if parent else "",
                parent_pk=parent,
                sha256=f"{seq:064d}",
                size=100,
                kind=kind,
                format=fmt,
                problems=probs,
                application_pk=app_id,
            )
            s.add(d)
            s.flush()
            if fmt == "archive":
                parent = d.id
        s.commit()
    return "AI2026-S-0042"


def test_the_receipt_says_what_was_received_and_what_to_fix_in_plain_chinese(env_factory: Callable[..., Env]) -> None:
    env = env_factory(stages=["parse_message", "store_attachments"])
    mid = env.ingest(
        mail("applicant@example.cn", "申报材料", date="Sat, 04 Jul 2026 09:30:00 +0800"),
    )
    env.process()
    receipt = _add_application(
        env,
        mid,
        status="incomplete",
        problems=[
            {"code": "missing_pdf", "severity": "error", "detail": "未收到申报书 PDF 盖章扫描件"},
            {"code": "missing_license", "severity": "error", "detail": "未收到营业执照"},
            {"code": "missing_field", "severity": "error", "detail": "必填项为空：联系人电话（contact_phone）"},
            {"code": "invalid_credit_code", "severity": "error", "detail": "统一社会信用代码 … 校验位应为 X"},
            {
                "code": "unreadable_attachment",
                "severity": "error",
                "detail": "检测报告.pdf：文件已加密",
            },
            {
                "code": "cloud_attachment",
                "severity": "warning",
                "detail": "邮件《申报》含QQ 邮箱云附件，文件 视频.mp4；请在链接过期前下载并存档",
            },
            {"code": "paper_missing", "severity": "warning", "detail": "未登记纸质材料"},
            {"code": "check_failed", "severity": "error", "detail": "检查规则 x 出错"},
        ],
    )
    with Session(env.services.engine) as s:
        msg = s.get(Message, mid)
        assert msg is not None
        from intake.acks.outbox import enqueue

        row = enqueue(s, env.config, msg, env.now[0])
        s.commit()
        raw = row.raw
    assert raw is not None
    text = body_of(raw)
    assert f"回执编号：{receipt}" in text
    assert "2026-07-04 09:30" in text
    # Each file with the kind it was recognised as (archive members under their archive).
    assert "1. 附件1 申报书.docx —— 申报书（附件1 典型应用场景）Word 版" in text
    assert "2. 承诺书.pdf —— 承诺书" in text
    assert "3. 材料.zip —— 压缩包" in text
    assert "└ 证明/检测报告.pdf —— 证明材料（无法打开：文件已加密）" in text
    # The application as read from the form.
    assert "【AI2026-S-0042】附件1 典型应用场景" in text
    assert "申报单位：武汉镕智科技有限公司" in text
    assert "项目名称：城市内涝智能预警" in text
    assert "申报方向：典型应用场景（AI+市政设施）" in text
    # What is missing or wrong, in the applicant's words.
    assert "缺少申报书 PDF 盖章扫描件" in text
    assert "缺少营业执照副本复印件" in text
    assert "申报书中“联系人电话”一栏未填写" in text
    assert "统一社会信用代码“91420100MA4K2X1234”未通过校验" in text
    assert "文件无法打开或读取：检测报告.pdf：文件已加密" in text
    assert "云附件" in text and "请将文件直接作为附件发送" in text
    for staff_only in ("contact_phone", "请在链接过期前下载并存档", "检查规则", "未登记纸质材料", "校验位应为"):
        assert staff_only not in text
    # Paper copies and contacts.
    assert "请于 2026年7月7日17:00 前将纸质材料（申报书一式二份，推荐意见一式一份）报送至市经信局 213 室" in text
    assert "市经信局 饶丽君 027-85316992" in text
    assert "逾期" not in text


def test_a_late_receipt_says_so_instead_of_the_paper_reminder(env_factory: Callable[..., Env]) -> None:
    env = env_factory(stages=["parse_message", "store_attachments"])
    mid = env.ingest(mail("slow@example.cn", "申报材料", date="Tue, 07 Jul 2026 17:00:01 +0800"))
    env.process()
    _add_application(
        env,
        mid,
        status="late",
        problems=[{"code": "late", "severity": "error", "detail": "申报书 Word 版 17:00:01 送达"}],
    )
    with Session(env.services.engine) as s:
        msg = s.get(Message, mid)
        assert msg is not None
        from intake.acks.outbox import enqueue

        raw = enqueue(s, env.config, msg, env.now[0]).raw
        s.commit()
    assert raw is not None
    text = body_of(raw)
    assert "检查结果：逾期（在截止时间之后收到）" in text
    assert "材料在截止时间（2026年7月7日17:00）之后收到" in text
    assert "三、逾期提醒" in text
    assert "前将纸质材料" not in text


# -- sending fails, then works --------------------------------------------------------------------------------


def test_smtp_down_retries_with_backoff_then_sent_once(env_factory: Callable[..., Env]) -> None:
    env = env_factory(smtp={"timeout": "1s"})
    server = env.server
    assert server is not None
    row = env.receive(mail("patient@example.cn", "申报材料"))
    # 1. The server answers 451 to MAIL FROM: a temporary refusal of this message.
    server.refuse(451)
    r1 = env.send()
    assert r1.deferred == 1 and r1.sent == 0
    after = env.row(row.id or 0)
    assert after.status == "pending" and after.attempts == 1 and "451" in (after.last_error or "")
    assert after.next_attempt_at == env.now[0] + timedelta(seconds=1)
    assert env.send().deferred == 0  # not due yet
    # 2. The server stops answering at all: nothing is counted against the message, the sender pauses.
    server.recover()
    server.hang("CONNECT")
    env.tick(seconds=2)
    r2 = env.send()
    assert r2.error and "timed out" in r2.error
    hung = env.row(row.id or 0)
    assert hung.status == "pending" and hung.attempts == 1 and "timed out" in (hung.last_error or "")
    assert env.sender is not None and env.sender.pause_until is not None
    assert env.sender.run_job().skipped  # the daemon's job waits out the pause
    # 3. Back: sent, once.
    server.recover()
    env.tick(seconds=5)
    r3 = env.sender.run_job()
    assert r3.sent == 1
    assert env.send().sent == 0
    got = server.wait_for(1)
    assert len(got) == 1 and got[0].rcpt_tos == ("patient@example.cn",)
    done = env.row(row.id or 0)
    assert done.status == "sent" and done.attempts == 2 and done.sent_at == env.now[0]


def test_after_max_attempts_it_is_failed_and_a_5xx_fails_at_once(env_factory: Callable[..., Env]) -> None:
    env = env_factory(ack={"max_attempts": 3})
    server = env.server
    assert server is not None
    row = env.receive(mail("greylisted@example.cn", "申报材料"))
    server.refuse(450, at="RCPT")
    for _ in range(3):
        env.send()
        env.tick(seconds=10)
    failed = env.row(row.id or 0)
    assert failed.status == "failed" and failed.attempts == 3
    assert "gave up after 3 tries" in (failed.reason or "") and "450" in (failed.reason or "")
    server.refuse(550, at="RCPT", message="5.1.1 Mailbox not found")
    gone = env.receive(mail("gone@example.cn", "申报材料"))
    assert env.send().failed == 1
    assert env.row(gone.id or 0).status == "failed"
    assert "Mailbox not found" in (env.row(gone.id or 0).reason or "")
    server.recover()
    assert server.messages == []
    # Staff queue the first one again: it goes out once.
    retry(env.services, failed.id or 0)
    assert env.send().sent == 1
    assert [m.rcpt_tos for m in server.wait_for(1)] == [("greylisted@example.cn",)]


def test_no_answer_after_the_message_is_unknown_for_staff_not_resent(env_factory: Callable[..., Env]) -> None:
    env = env_factory(smtp={"timeout": "1s"})
    server = env.server
    assert server is not None
    row = env.receive(mail("maybe@example.cn", "申报材料"))
    server.hang("DATA")
    report = env.send()
    assert report.unknown == 1 and report.sent == 0
    unknown = env.row(row.id or 0)
    assert unknown.status == "unknown" and "may or may not have been delivered" in (unknown.reason or "")
    assert unknown.data_started_at is not None
    server.recover()
    env.tick(minutes=30)
    assert env.send().sent == 0  # never resent on its own
    assert server.messages == []
    # Staff looked in the Sent folder and did not find it: send it.
    assert retry(env.services, unknown.id or 0).status == "pending"
    assert env.send().sent == 1
    got = server.wait_for(1)
    assert len(got) == 1
    # Resent under the same Message-ID: a client that did get the first one shows one message.
    assert decoded(got[0].data)["Message-ID"] == unknown.ack_message_id


def test_dry_run_stores_the_rendered_message_and_sends_nothing(env_factory: Callable[..., Env]) -> None:
    env = env_factory(ack={"dry_run": True})
    row = env.receive(mail("demo@example.cn", "申报材料"))
    assert row.status == "dry_run" and row.raw is not None
    assert "收到的文件" in body_of(row.raw)
    report = env.send()
    assert report.skipped and "dry_run" in report.skipped and report.sent == 0
    assert env.server is not None and env.server.messages == []
    from intake.acks import ack_job

    assert ack_job(env.services) is None  # no sending job in the daemon either


def test_a_custom_template_changes_the_wording_and_a_broken_one_does_not_stop_processing(
    env_factory: Callable[..., Env], tmp_path: Path
) -> None:
    tdir = tmp_path / "wording"
    tdir.mkdir()
    (tdir / "receipt.txt.j2").write_text("下一期征集：已收到“{{ subject }}”。{{ contacts | join('；') }}\n", "utf-8")
    env = env_factory(ack={"templates_dir": str(tdir)})
    row = env.receive(mail("a@example.cn", "申报"))
    assert row.raw is not None and body_of(row.raw).startswith("下一期征集：已收到“申报”。市人工智能专班")
    question = env.receive(mail("b@example.cn", "咨询", files=0))
    assert question.raw is not None and "用于接收" in body_of(question.raw)  # the built-in one
    from intake.acks.render import _environment

    (tdir / "receipt.txt.j2").write_text("{{ no_such_variable }}\n", "utf-8")
    _environment.cache_clear()
    broken = env_factory(ack={"templates_dir": str(tdir)})
    bad = broken.receive(mail("c@example.cn", "申报"))
    assert (
        bad.status == "failed"
        and "could not compose" in (bad.reason or "")
        and "no_such_variable" in (bad.reason or "")
    )
    with Session(broken.services.engine) as s:
        assert s.get(Message, bad.message_pk).state == "processed"  # type: ignore[union-attr]
    (tdir / "receipt.txt.j2").write_text("已修复：{{ subject }}\n", "utf-8")
    _environment.cache_clear()
    fixed = retry(broken.services, bad.id or 0)
    assert fixed.status == "pending" and fixed.raw is not None and body_of(fixed.raw).startswith("已修复：申报")


def test_rows_that_are_not_due_or_not_ours_are_left_alone(env_factory: Callable[..., Env]) -> None:
    env = env_factory()
    row = env.receive(mail("x@example.cn", "申报"))
    with Session(env.services.engine) as s:
        s.exec(
            update(AckOutbox)
            .where(col(AckOutbox.id) == row.id)
            .values(status="sending", lease_owner="elsewhere:1", lease_until=env.now[0] + timedelta(minutes=5))
        )
        s.commit()
    assert env.send().sent == 0  # another host's live lease
    env.tick(minutes=6)
    report = env.send()  # expired, never reached DATA: queued again and sent
    assert report.requeued == 1 and report.sent == 1
    history = env.row(row.id or 0).history
    assert history[-1]["what"] == "requeued" and history[-1]["owner"] == "elsewhere:1"
    with Session(env.services.engine) as s:
        assert len(list(s.exec(select(AckOutbox)))) == 1
