"""Tests of parsers.mail on generated messages: decoding, attachments, classes, times, cloud links."""

from __future__ import annotations

import email.parser
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import mailparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.cloudlinks import classify_url, find_cloud_links
from parsers.mail import MessageParseError, auto_generated_signals, parse_message
from parsers.mailheaders import (
    decode_bytes,
    decode_header_value,
    normalize_charset,
    param_text,
    parse_params,
    sanitize_filename,
)
from parsers.types import MessageClass, ParsedMessage
from tests import mailgen

CORPUS = mailgen.corpus()
CST = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def parsed() -> dict[str, ParsedMessage]:
    return {name: parse_message(raw) for name, raw, _ in CORPUS}


@pytest.mark.parametrize("name,raw,expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_generated_message(
    name: str, raw: bytes, expected: dict[str, Any], parsed: dict[str, ParsedMessage]
) -> None:
    msg = parsed[name]
    assert msg.msg_class == MessageClass(expected["class"]), msg.class_reasons
    assert msg.class_reasons, "every class carries a reason"
    if "filenames" in expected:
        assert [a.filename for a in msg.attachments] == expected["filenames"]
    if "containers" in expected:
        assert [a.container for a in msg.attachments] == expected["containers"]
    for key in ("subject", "from_addr", "from_name", "received_source"):
        if key in expected:
            assert getattr(msg, key) == expected[key], key
    for sub in expected.get("text_contains", []):
        assert sub in msg.text
    for sub in expected.get("html_contains", []):
        assert sub in msg.html
    if "cloud" in expected:
        assert len(msg.cloud_links) == len(expected["cloud"]), msg.cloud_links
        for link, want in zip(msg.cloud_links, expected["cloud"], strict=True):
            for field in ("provider", "filename", "size_text", "expires_text", "url"):
                if field in want:
                    assert getattr(link, field) == want[field], (field, link)
            if "url_contains" in want:
                assert want["url_contains"] in link.url
    signals = auto_generated_signals(msg)
    for sub in expected.get("signals_contain", []):
        assert any(sub in s for s in signals), (sub, signals)
    if expected.get("no_signals"):
        assert signals == []
    for sub in expected.get("defects_contain", []):
        assert any(sub in d for d in msg.defects), (sub, msg.defects)
    # Invariants every message keeps.
    for att in msg.attachments:
        assert att.size == len(att.data)
        assert att.sha256 == hashlib.sha256(att.data).hexdigest()
        assert att.filename and "/" not in att.filename and "\\" not in att.filename
    for when in (msg.sent_at, msg.received_at):
        assert when is None or when.tzinfo is not None


@pytest.mark.parametrize("name,raw,reason", mailgen.hopeless(), ids=[h[0] for h in mailgen.hopeless()])
def test_hopeless_input_raises_parse_error(name: str, raw: bytes, reason: str) -> None:
    with pytest.raises(MessageParseError) as info:
        parse_message(raw)
    assert reason in info.value.reason


# --- exact decoding ---------------------------------------------------------------------------------


def test_gbk_only_characters_survive_gb2312_labels(parsed: dict[str, ParsedMessage]) -> None:
    msg = parsed["gbk_in_gb2312"]
    for ch in "镕喆堃":
        assert ch in msg.subject + msg.text + (msg.from_name or "")
    assert not any("\ufffd" in s for s in (msg.subject, msg.text, msg.from_name or ""))
    # mail-parser on its own loses them: this is the bug the module exists to avoid.
    mp = mailparser.parse_from_bytes(mailgen.gbk_in_gb2312()[0])
    assert "镕" not in "".join(mp.text_plain)


def test_attachment_bytes_are_the_sent_bytes(parsed: dict[str, ParsedMessage]) -> None:
    big = parsed["big_attachment"].attachments[0]
    data = mailgen.big_attachment_data()
    assert big.size == mailgen.BIG_SIZE
    assert big.sha256 == hashlib.sha256(data).hexdigest()
    assert big.content_type == "application/pdf"
    assert big.disposition == "attachment"
    docx = parsed["gbk_in_gb2312"].attachments[0]
    assert docx.data == mailgen.fake_file("docx", 4000, 1)


def test_headers_and_threading_fields(parsed: dict[str, ParsedMessage]) -> None:
    msg = parsed["exchange_dafu"]
    assert msg.message_id == "<2b3c4d5e6f@EXCH01.corp.example.cn>"
    assert msg.in_reply_to == "<ack-3@126.com>"
    assert msg.references == ["<orig-3@corp.example.cn>", "<ack-3@126.com>"]
    assert msg.to == ["whaicj@126.com"]
    assert msg.headers["thread-topic"] == ["关于申报材料格式的问题"]
    assert msg.headers["accept-language"] == ["zh-CN, en-US"]
    assert msg.sent_at == datetime(2026, 7, 6, 10, 15, tzinfo=CST)
    qq = parsed["qq_auto_reply"]
    assert qq.headers["x-qq-auto-reply"] == ["true"]
    assert qq.headers["sender"] == ["12345678+auto_=whaicj=126.com@qq.com"]
    assert qq.return_path is None
    bounce = parsed["bounce_dsn"]
    assert bounce.return_path == ""
    assert bounce.subject == "系统退信"
    assert bounce.headers["content-type"][0].startswith("multipart/report")


def test_received_at_sources() -> None:
    raw, _ = mailgen.gbk_in_gb2312()
    # Files: the newest Received header (the 126.com MX), which is later than Date.
    msg = parse_message(raw)
    assert msg.received_source == "received"
    assert msg.received_at == datetime(2026, 7, 6, 10, 15, 4, tzinfo=CST)
    assert msg.sent_at == datetime(2026, 7, 6, 10, 15, 0, tzinfo=CST)
    # Mailbox: INTERNALDATE wins over every header.
    internal = datetime(2026, 7, 7, 9, 0, 1, tzinfo=UTC)
    msg = parse_message(raw, internaldate=internal)
    assert (msg.received_source, msg.received_at) == ("internaldate", internal)
    # A naive INTERNALDATE (imapclient's normalised form) is read as local time, and noted.
    msg = parse_message(raw, internaldate=datetime(2026, 7, 7, 17, 0, 0))
    assert msg.received_at is not None and msg.received_at.tzinfo is not None
    assert any("internaldate had no time zone" in d for d in msg.defects)
    # No Received header: Date. Neither: None.
    raw2, _ = mailgen.out_of_office()
    assert parse_message(raw2).received_source == "date"
    assert parse_message(raw2.replace(b"Date: ", b"X-Old-Date: ")).received_source is None


def test_unreadable_newest_received_falls_back_to_older(parsed: dict[str, ParsedMessage]) -> None:
    msg = parsed["malformed_headers"]
    assert msg.received_at == datetime(2026, 7, 7, 16, 58, 2, tzinfo=CST)
    assert msg.sent_at is None


def test_bare_cst_is_reported() -> None:
    raw = b"From: a@b.cn\r\nDate: Tue, 07 Jul 2026 16:59:00 CST\r\nSubject: x\r\n\r\nbody\r\n"
    msg = parse_message(raw)
    assert msg.sent_at == datetime(2026, 7, 7, 22, 59, tzinfo=UTC)  # RFC 5322: CST is UTC-6
    assert any("'CST'" in d for d in msg.defects)


def test_deep_nesting_is_cut_not_fatal() -> None:
    msg = parse_message(mailgen.deep_nesting(60))
    assert msg.attachments == []
    assert any("nesting deeper than" in d for d in msg.defects)
    shallow = parse_message(mailgen.deep_nesting(20))
    assert [a.filename for a in shallow.attachments] == ["deep.pdf"]


def test_mail_parser_crash_falls_back_to_stdlib() -> None:
    # mail-parser 4.8 raises AttributeError in its epilogue recovery when a nested multipart reuses
    # its parent's boundary and never starts (Dovecot's malformed_013); the message is readable.
    raw = (
        b'From: a@example.com\r\nSubject: reused boundary\r\nContent-Type: multipart/mixed; boundary="1"\r\n'
        b"\r\n--1\r\nContent-Type: text/plain\r\n\r\nhello, world\r\n--1\r\n"
        b'Content-Type: multipart/mixed; boundary="1"\r\n'
    )
    with pytest.raises(AttributeError):
        mailparser.parse_from_bytes(raw)
    msg = parse_message(raw)
    assert msg.subject == "reused boundary"
    assert "hello, world" in msg.text
    assert any(d.startswith("mail-parser failed (AttributeError") for d in msg.defects)


def test_person_asking_about_a_bounce_is_acknowledged() -> None:
    raw = (
        f"From: a@example.com\r\nSubject: {mailgen.ew('关于退信的问题')}\r\nDate: {mailgen.BASE_DATE}\r\n\r\n"
        "我的邮件被退信了，请问怎么办？\r\n"
    ).encode()
    msg = parse_message(raw)
    assert msg.subject == "关于退信的问题"
    assert msg.msg_class == MessageClass.other
    assert auto_generated_signals(msg) == []


def test_auto_generated_signals_own_address(parsed: dict[str, ParsedMessage]) -> None:
    msg = parsed["gbk_in_gb2312"]
    assert auto_generated_signals(msg) == []
    assert auto_generated_signals(msg, own_addresses=["WangZhe@163.com"]) == [
        "sent by the intake mailbox itself (wangzhe@163.com)"
    ]


def test_class_reasons_are_readable(parsed: dict[str, ParsedMessage]) -> None:
    assert "Auto-Submitted: auto-replied" in parsed["out_of_office"].class_reasons
    assert parsed["qq_auto_reply"].class_reasons[0] == "X-QQ-AUTO-REPLY: true"
    assert parsed["bounce_dsn"].class_reasons[0] == "multipart/report; report-type=delivery-status"
    assert parsed["ses_relayed_qq_autoreply"].class_reasons == [
        "auto-reply subject: （自动回复）Re：申报材料已收到"
    ]
    assert parsed["gbk_in_gb2312"].class_reasons == [
        f"1 attachment(s): {mailgen.gbk_in_gb2312()[1]['filenames'][0]}"
    ]


@pytest.mark.parametrize(
    "subject,auto",
    [
        ("自动回复: 您好", True),
        ("自动回复:hello", True),
        ("（自动回复）Re：申报", True),
        ("Automatic reply: x", True),
        ("Auto: x", True),
        ("Out of Office: x", True),
        ("答复: 申报材料", False),
        ("回复：申报材料", False),
        ("Re: 自动回复: x", False),
        ("关于自动回复功能的咨询", False),
    ],
)
def test_auto_reply_subjects(subject: str, auto: bool) -> None:
    raw = f"From: p@example.com\r\nSubject: {subject}\r\nDate: {mailgen.BASE_DATE}\r\n\r\nhi\r\n".encode()
    msg = parse_message(raw)
    assert (msg.msg_class == MessageClass.auto_reply) is auto


# --- helpers -----------------------------------------------------------------------------------------


def test_normalize_charset() -> None:
    assert normalize_charset("GB2312") == "gb18030"
    assert normalize_charset('"x-gbk"') == "gb18030"
    assert normalize_charset("gb2312*zh-cn") == "gb18030"
    assert normalize_charset("ks_c_5601-1987") == "cp949"
    assert normalize_charset("unknown-8bit") is None
    assert normalize_charset("no-such-charset") is None
    assert normalize_charset("rot13") is None  # a codec, but not a text encoding


def test_decode_bytes_never_drops_silently() -> None:
    defects: list[str] = []
    assert decode_bytes("镕".encode("gbk"), "gb2312", what="t", defects=defects) == "镕"
    assert defects == []
    assert decode_bytes("申报".encode("gbk"), "utf-8", what="t", defects=defects) == "申报"
    assert defects == ["t: not valid utf-8; decoded as gb18030"]
    defects.clear()
    out = decode_bytes(b"ab\xffcd", "utf-8", what="t", defects=defects)
    assert out == "ab\ufffdcd" and "U+FFFD" in defects[0]


def test_encoded_words_split_mid_character_and_in_quotes() -> None:
    value = '"' + mailgen.ew_split("申报书（盖章）.pdf", "gb18030", "gb18030", 3) + '"'
    assert decode_header_value(value, what="t", defects=[]) == '"申报书（盖章）.pdf"'
    _, params = parse_params("attachment; filename=" + value)
    assert param_text(params, "filename", what="t", defects=[]) == "申报书（盖章）.pdf"


def test_parse_params_quirks() -> None:
    main, params = parse_params('Attachment; filename="a;b,c.pdf"; size=3; name=unquoted name.doc')
    assert main == "attachment"
    assert params == [("filename", "a;b,c.pdf"), ("size", "3"), ("name", "unquoted name.doc")]
    _, params = parse_params('inline; filename="never closed.txt')
    assert params == [("filename", "never closed.txt")]


def test_sanitize_filename() -> None:
    assert sanitize_filename("C:\\Users\\张三\\Desktop\\附件1.docx") == "附件1.docx"
    assert sanitize_filename("../../etc/passwd") == "passwd"
    assert sanitize_filename("申报\u202e书\x00.docx") == "申报书.docx"
    assert sanitize_filename("  多余   空格 .pdf ") == "多余 空格 .pdf"
    assert sanitize_filename("..") is None
    long = "长" * 300 + ".docx"
    out = sanitize_filename(long)
    assert out is not None and len(out) == 200 and out.endswith(".docx")


def test_classify_url() -> None:
    assert classify_url("https://mail.qq.com/cgi-bin/ftnExs_download?k=1") == "qq"
    assert classify_url("https://iwx.mail.qq.com/ftn/download?func=4&k=1") == "qq"
    assert classify_url("https://exmail.qq.com/cgi-bin/ftnExs_download?k=1") == "qq"
    assert classify_url("https://fs.mail.163.com/x?p=X-NETEASE-HUGE-ATTACHMENT") == "163"
    assert classify_url("https://dashi.163.com/attach/preview?id=1") == "163"
    assert classify_url("https://pan.baidu.com/s/1abc") == "other"
    assert classify_url("https://mail.qq.com/") is None
    assert classify_url("https://mail.163.com/dashi/dlpro.html?from=mail81") is None
    assert classify_url("https://www.qq.com/ftn") is None
    assert classify_url("https://www.163.com/news/article/1.html") is None


def test_marker_block_link_of_unknown_shape() -> None:
    text = "从QQ邮箱发来的超大附件\n\n方案.pdf (2M, 2026年7月30日 到期)进入下载页面：https://mail.qq.com/newshape?id=1\n"
    links = find_cloud_links(text, "")
    assert [(c.provider, c.filename, c.size_text, c.expires_text) for c in links] == [
        ("qq", "方案.pdf", "2M", "2026年7月30日")
    ]


def test_a_message_is_parsed_once() -> None:
    """The issue's benchmark needs parsing to stay a modest multiple of mail-parser's own parse."""
    raw = mailgen.message(
        [
            ("From", "a@example.com"),
            ("Subject", "perf"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/mixed; boundary=p"),
        ],
        mailgen.multipart(
            "p",
            [
                mailgen.text_part("正文" * 50),
                mailgen.file_part(
                    mailgen.fake_file("docx", 60_000, 30),
                    "application/msword",
                    disposition='attachment; filename="a.docx"',
                ),
                mailgen.file_part(
                    mailgen.fake_file("pdf", 65_000, 31),
                    "application/pdf",
                    disposition='attachment; filename="a.pdf"',
                ),
            ],
        ),
    )
    assert 150_000 < len(raw) < 200_000

    # One MIME parse, not two: mail-parser's tree is reused for filenames and bodies (the speed itself is
    # measured against bare mail-parser in bench/bench_poll.py, not asserted here).
    calls = {"n": 0}
    real = email.parser.BytesParser.parsebytes

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        return real(self, *args, **kwargs)

    email.parser.BytesParser.parsebytes = counting  # type: ignore[method-assign]
    try:
        parsed = parse_message(raw)
    finally:
        email.parser.BytesParser.parsebytes = real  # type: ignore[method-assign]
    assert calls["n"] == 1
    assert [a.filename for a in parsed.attachments] == ["a.docx", "a.pdf"]


# --- robustness ----------------------------------------------------------------------------------------

_SMALL = [(name, raw) for name, raw, _ in CORPUS if len(raw) < 100_000]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pick=st.integers(min_value=0, max_value=len(_SMALL) - 1),
    cuts=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 40), st.binary(max_size=12)), max_size=6),
)
def test_mangled_messages_never_crash(pick: int, cuts: list[tuple[float, int, bytes]]) -> None:
    """Truncated, spliced and corrupted variants of the corpus parse or raise MessageParseError."""
    raw = bytearray(_SMALL[pick][1])
    for where, drop, insert in cuts:
        at = int(where * len(raw))
        raw[at : at + drop] = insert
    try:
        msg = parse_message(bytes(raw))
    except MessageParseError as exc:
        assert exc.reason
        return
    assert isinstance(msg.msg_class, MessageClass) and msg.class_reasons
    for att in msg.attachments:
        assert att.size == len(att.data) and att.filename


def test_bulk_precedence_with_files_stays_a_submission_but_is_never_acknowledged() -> None:
    """An OA system adding Precedence: bulk must not make us drop a real application."""
    from email.message import EmailMessage

    m = EmailMessage()
    m["From"] = "oa@district.example.gov.cn"
    m["To"] = "whaicj@126.com"
    m["Subject"] = "江汉区推荐材料"
    m["Precedence"] = "bulk"
    m.set_content("见附件")
    m.add_attachment(b"PK\x03\x04 docx", maintype="application", subtype="octet-stream", filename="附件1 申报书.docx")
    parsed = parse_message(bytes(m))
    assert parsed.msg_class == MessageClass.submission
    assert any("Precedence: bulk" in r for r in parsed.class_reasons)
    assert any("Precedence" in s for s in auto_generated_signals(parsed))

    # A list manager's own headers still make it list mail, files or not.
    del m["Precedence"]
    m["List-Id"] = "<news.example.com>"
    parsed = parse_message(bytes(m))
    assert parsed.msg_class == MessageClass.list
