"""parse_message over real third-party mail: shared/realworld read in place, and copies in tests/data/eml.

The realworld directory is INTAKE_REALWORLD, else /work/shared/realworld, else `shared/realworld`
beside the checkout (where CI lays it). Its absence is a failure, not a skip: the corpus is the
evidence that the parser survives real mail.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest

from parsers.mail import MessageParseError, auto_generated_signals, parse_message
from parsers.types import MessageClass, ParsedMessage

HERE = Path(__file__).resolve().parent
LOCAL = HERE / "data" / "eml"


def realworld_dir() -> Path:
    env = os.environ.get("INTAKE_REALWORLD")
    if env:
        return Path(env)
    for candidate in (Path("/work/shared/realworld"), HERE.parent.parent / "shared" / "realworld"):
        if candidate.is_dir():
            return candidate
    return Path("/work/shared/realworld")


def require_realworld() -> Path:
    root = realworld_dir()
    if not (root / "eml").is_dir():
        pytest.fail(
            f"real-world mail corpus not found at {root} (expected {root}/eml/): set INTAKE_REALWORLD "
            "to the realworld directory of shared/"
        )
    return root


def corpus_files(root: Path) -> list[Path]:
    files = [p for p in sorted((root / "eml").rglob("*")) if p.is_file()]
    files += sorted((root / "cn_mail_conventions").glob("*.eml"))
    return files


# Files that are not messages at all: the only ones allowed to raise MessageParseError.
NOT_MESSAGES = {
    "eml/spamscope_mailparser/mail_outlook_1.msg": "OLE2",
    **{
        f"eml/mimekit_tnef/{n}.winmail.dat": "TNEF"
        for n in (
            "body",
            "data-before-name",
            "garbage-at-end",
            "long-filename",
            "missing-filenames",
            "panic",
            "two-files",
            "unicode-mapi-attr-name",
            "unicode-mapi-attr",
            "winmail",
        )
    },
}

B, A, L, S, OTHER = "bounce", "auto_reply", "list", "submission", "other"
# Hand-checked classes (path relative to the realworld directory).
EXPECTED_CLASS: dict[str, str] = {
    # sisimai: bounces from many MTAs, RFC 3834 auto-replies, look-alikes that are not bounces
    **{
        f"eml/sisimai_bounces/bounce__{n}.eml": B
        for n in (
            "dos__rhost-tencentqq-01",
            "lhost-amazonses-01",
            "lhost-biglobe-01",
            "lhost-domino-02",
            "lhost-exchange2003-01",
            "lhost-exchange2007-01",
            "lhost-exchange2007-04",
            "lhost-exim-01",
            "lhost-ezweb-01",
            "lhost-gmail-01",
            "lhost-gmx-01",
            "lhost-googlegroups-01",
            "lhost-kddi-01",
            "lhost-mcafee-01",
            "lhost-notes-01",
            "lhost-office365-01",
            "lhost-office365-04",
            "lhost-outlook-01",
            "lhost-postfix-01",
            "lhost-postfix-56",
            "lhost-qmail-01",
            "lhost-sendgrid-01",
            "lhost-sendmail-01",
            "lhost-yahoo-01",
            "lhost-yandex-01",
            "mac__rhost-tencent-01",
            "rfc3464-01",
            "rhost-google-01",
            "rhost-tencent-01",
            "rhost-tencent-02",
            "rhost-tencent-03",
        )
    },
    # fml's "Loop Alert" comes from a mailing-list manager (X-MLServer), not from an MTA
    "eml/sisimai_bounces/bounce__lhost-fml-03.eml": L,
    **{f"eml/sisimai_bounces/autoreply__rfc3834-0{i}.eml": A for i in range(1, 7)},
    "eml/sisimai_bounces/not_bounce__is-not-bounce-01.eml": OTHER,
    "eml/sisimai_bounces/not_bounce__is-not-bounce-02.eml": OTHER,  # a bounce forwarded as .eml
    "eml/sisimai_bounces/not_bounce__rb-issue-368-bug.eml": B,  # postmaster, <>, "bounce notification"
    "eml/sisimai_bounces/report__arf-01.eml": B,
    "eml/sisimai_bounces/report__arf-14.eml": B,
    # flanker
    **{
        f"eml/flanker/bounce__{n}.eml": B
        for n in (
            "broken-mime",
            "delayed-broken",
            "delayed",
            "gmail-invalid-address",
            "gmail-no-dns",
            "mailbox-full",
            "no-mx",
            "office365",
            "zed",
        )
    },
    "eml/flanker/complaints__aol.eml": B,
    "eml/flanker/complaints__yahoo.eml": B,
    "eml/flanker/disposition-notification.eml": A,
    # mimekit, enmime, cpython, mikel, webklex, spamscope
    "eml/mimekit/bounce.eml": B,
    "eml/mimekit/delivery-status.eml": B,
    "eml/mimekit/delivery-status2.eml": B,
    "eml/mimekit/delivery-status-no-blank-line.eml": B,
    "eml/mimekit/delivery-status-multiple-blank-lines.eml": B,
    "eml/mimekit/feedback-report.eml": B,
    "eml/mimekit/disposition-notification.eml": A,
    **{
        f"eml/enmime/dsn__{n}.eml": B
        for n in (
            "delayed_dsn",
            "dsn_with_multipart_alternative",
            "multi_recipient_dsn",
            "simple_dsn",
            "simple_dsn_with_html",
        )
    },
    "eml/enmime/mail__multipart-wo-boundary.eml": B,
    "eml/cpython_test_email/msg_05.eml": B,
    "eml/cpython_test_email/msg_16.eml": B,
    "eml/cpython_test_email/msg_25.eml": B,
    "eml/cpython_test_email/msg_43.eml": B,
    "eml/cpython_test_email/msg_32.eml": L,
    "eml/mikel_mail/multipart_report_emails__multi_address_bounce1.eml": B,
    "eml/mikel_mail/multipart_report_emails__multi_address_bounce2.eml": B,
    "eml/mikel_mail/multipart_report_emails__multipart_report_multiple_status.eml": B,
    "eml/mikel_mail/multipart_report_emails__report_422.eml": B,
    "eml/mikel_mail/multipart_report_emails__report_530.eml": B,
    "eml/mikel_mail/mime_emails__raw_email_with_mimepart_without_content_type.eml": B,
    "eml/webklex_php_imap/example_bounce.eml": B,
    "eml/webklex_php_imap/undefined_charset_header.eml": OTHER,  # X-Autogenerated: Mirror is no reply
    "eml/spamscope_mailparser/mail_malformed_2.eml": B,
    "eml/spamscope_mailparser/mail_test_13.eml": L,
    "eml/spamscope_mailparser/mail_test_16.eml": L,
    "eml/spamscope_mailparser/mail_test_5.eml": L,
    "eml/spamscope_mailparser/mail_test_6.eml": L,
    "eml/spamscope_mailparser/mail_test_9.eml": OTHER,
    "eml/enmime/mail__mime-bad-8bit-filename.eml": S,
    "eml/webklex_php_imap/attachment_long_filename.eml": S,
    "eml/webklex_php_imap/embedded_email.eml": S,
    "eml/mikel_mail/multi_charset__japanese_attachment.eml": S,
    "eml/flanker/russian-attachment-yahoo.eml": S,
    # Chinese conventions (no licence: read in place only)
    "cn_mail_conventions/qq_autoreply_X-QQ-AUTO-REPLY_qemu-devel.eml": A,
    "cn_mail_conventions/qq_holidayreply_X-QQ-HolidayReply_gbk_from_blog.eml": A,
    "cn_mail_conventions/exchange_zh-CN_reply_dafu_gb2312_baidu_kvm.eml": L,  # 答复 via a list
    "eml/public_archives_nolicense/osst_01ab7683.eml": B,  # Chinese Postfix bounce
}

EXPECTED_FILENAMES: dict[str, list[str]] = {
    "eml/enmime/mail__mime-bad-8bit-filename.eml": ["管理.doc"],
    "eml/mikel_mail/multi_charset__japanese_attachment.eml": ["てすと.txt"],
    "eml/mime4j/mimetools__russian.eml": ["Список.doc"],
    "eml/webklex_php_imap/attachment_long_filename.eml": [
        "Buchungsbestätigung- Rechnung-Geschäftsbedingungen-Nr.B123-45 - XXXXX xxxxxxxxxxxxxxxxx XxxX,"
        " Lüxxxxxxxxxx - VM Klaus XXXXXX - xxxxxxxx.pdf",
        "01_A€àä????@Z-0123456789-qwertyuiopasdfghjklzxcvbnmopqrstuvz-0123456789-qwertyuiopasdfghjklzxcvbnm"
        "opqrstuvz-0123456789-qwertyuiopasdfghjklzxcvbnmopqrstuvz.txt",
        "02_A€àäąбيد@Z-0123456789-qwertyuiopasdfghjklzxcvbnmopqrstuvz-0123456789-qwertyuiopasdfghjklzxcvbnm"
        "opqrstuvz-0123456789-qwertyuiopasdfghjklzxcvbnmopqrstuvz.txt",
    ],
    "eml/webklex_php_imap/embedded_email.eml": ["testfile.txt"],
    # Yahoo cut the UTF-8 name mid-character (and its extension): the readable part is kept
    "eml/flanker/russian-attachment-yahoo.eml": [
        "Картинка с очень, очень длинным предлинным именем преименем таким чт"
    ],
}


def local_copy(rel: str) -> Path:
    return LOCAL / rel.removeprefix("eml/")


def check_class(rel: str, msg: ParsedMessage) -> None:
    assert msg.msg_class == MessageClass(EXPECTED_CLASS[rel]), (rel, msg.msg_class, msg.class_reasons)
    if msg.msg_class in (MessageClass.bounce, MessageClass.auto_reply, MessageClass.list):
        assert auto_generated_signals(msg), rel  # never acknowledged
    if rel in EXPECTED_FILENAMES:
        assert [a.filename for a in msg.attachments] == EXPECTED_FILENAMES[rel]


# --- the whole corpus, in place -------------------------------------------------------------------------


def test_every_realworld_file_parses_or_is_rejected_with_a_reason() -> None:
    root = require_realworld()
    files = corpus_files(root)
    assert len(files) > 300, f"only {len(files)} files under {root}"
    parsed, rejected, crashed = 0, {}, []
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:
            msg = parse_message(path.read_bytes())
        except MessageParseError as exc:
            assert exc.reason, rel
            rejected[rel] = exc.reason
            continue
        except Exception as exc:  # the assertion below lists every such file at once
            crashed.append(f"{rel}: {type(exc).__name__}: {exc}")
            continue
        parsed += 1
        assert isinstance(msg.subject, str) and msg.class_reasons, rel
        for when in (msg.sent_at, msg.received_at):
            assert when is None or when.tzinfo is not None, rel
        for att in msg.attachments:
            assert att.size == len(att.data) and att.filename, rel
    assert crashed == []
    assert set(rejected) == set(NOT_MESSAGES), rejected
    for rel, reason in rejected.items():
        assert NOT_MESSAGES[rel] in reason, (rel, reason)
    assert parsed == len(files) - len(NOT_MESSAGES)


@pytest.mark.parametrize("rel", sorted(EXPECTED_CLASS))
def test_realworld_class(rel: str) -> None:
    root = require_realworld()
    check_class(rel, parse_message((root / rel).read_bytes()))


def _gb2312_subject_bytes(raw: bytes) -> bytes:
    header = re.search(rb"^Subject:(.*?)\r?\n(?![ \t])", raw, re.MULTILINE | re.DOTALL)
    assert header is not None
    words = re.findall(rb"=\?gb2312\?B\?([^?]*)\?=", header.group(1), re.IGNORECASE)
    return b"".join(base64.b64decode(w + b"=" * (-len(w) % 4)) for w in words)


def test_mail_test_9_subject_is_gb18030(tmp_path: Path) -> None:
    """Subject labelled gb2312 holding GBK-only bytes (0x8C 0xC2): read as GB18030, nothing lost."""
    for path in (
        require_realworld() / "eml/spamscope_mailparser/mail_test_9.eml",
        LOCAL / "spamscope_mailparser/mail_test_9.eml",
    ):
        raw = path.read_bytes()
        expected = _gb2312_subject_bytes(raw).decode("gb18030")
        with pytest.raises(UnicodeDecodeError):
            _gb2312_subject_bytes(raw).decode("gb2312")
        msg = parse_message(raw)
        assert msg.subject == expected
        assert "\ufffd" not in msg.subject and "镜头" in msg.subject


def test_qq_auto_replies_and_exchange_reply_in_place() -> None:
    root = require_realworld() / "cn_mail_conventions"
    qq = parse_message((root / "qq_autoreply_X-QQ-AUTO-REPLY_qemu-devel.eml").read_bytes())
    assert qq.subject.startswith("自动回复: ")
    assert "X-QQ-AUTO-REPLY: true" in qq.class_reasons
    holiday = parse_message((root / "qq_holidayreply_X-QQ-HolidayReply_gbk_from_blog.eml").read_bytes())
    assert holiday.subject == "自动回复:hello world"
    assert holiday.from_name == "chenzaofeng"
    assert "您的邮件我已经收到了" in holiday.html
    assert "X-QQ-HolidayReply: true" in holiday.class_reasons
    assert any("+auto_=" in r for r in holiday.class_reasons)
    dafu = parse_message((root / "exchange_zh-CN_reply_dafu_gb2312_baidu_kvm.eml").read_bytes())
    assert dafu.subject.startswith("答复: ")
    assert "[????]" in dafu.subject  # already lost upstream: kept as it arrived, not "fixed"
    assert dafu.msg_class != MessageClass.auto_reply
    assert not any(s.startswith("auto-reply subject") for s in auto_generated_signals(dafu))


# --- the permissively licensed copies (work without shared/) ----------------------------------------------

LOCAL_FILES = sorted(p.relative_to(LOCAL).as_posix() for p in LOCAL.rglob("*.eml"))


def test_local_copies_are_attributed() -> None:
    attribution = (LOCAL / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert len(LOCAL_FILES) >= 40
    for rel in LOCAL_FILES:
        assert f"| `{rel}` |" in attribution, rel
        assert "nolicense" not in rel and "cn_mail_conventions" not in rel


@pytest.mark.parametrize("rel", LOCAL_FILES)
def test_local_copy(rel: str) -> None:
    msg = parse_message((LOCAL / rel).read_bytes())
    full = f"eml/{rel}"
    if full in EXPECTED_CLASS:
        check_class(full, msg)
    else:
        assert msg.class_reasons


def test_local_copies_cover_the_key_cases() -> None:
    for rel in (
        "eml/spamscope_mailparser/mail_test_9.eml",
        "eml/sisimai_bounces/bounce__lhost-sendgrid-01.eml",  # mail-parser 4.8 crashes on it
        "eml/dovecot_malformed/malformed_013.eml",  # and on this one
        "eml/mimekit/stack-overflow.eml",  # 135 KB To: header
        "eml/mimekit/feedback-report.eml",  # leading byte-order mark
    ):
        assert local_copy(rel).is_file(), rel
    crash = parse_message(local_copy("eml/sisimai_bounces/bounce__lhost-sendgrid-01.eml").read_bytes())
    assert any(d.startswith("mail-parser failed") for d in crash.defects)
    huge = parse_message(local_copy("eml/mimekit/stack-overflow.eml").read_bytes())
    assert (huge.subject, huge.to) == ("Message Subject", ["test@test.com"])
    assert len(huge.headers["to"][0]) == 32_768  # kept, but capped
    bom = parse_message(local_copy("eml/mimekit/feedback-report.eml").read_bytes())
    assert bom.from_addr == "abusedesk@example.com"
