"""Build tricky raw email messages (bytes) the way Chinese clients and mail systems really write them.

Used as `from tests.mailgen import corpus, hopeless`. Messages are assembled by hand, byte by byte,
because the stdlib email package would "fix" exactly the habits under test: RFC 2047 words inside
quoted parameters (QQ Mail, Foxmail), one character's bytes split across two encoded words, GBK-only
characters in GB2312-labelled text, raw 8-bit header bytes, broken MIME.

The conventions reproduced here come from real messages described in
shared/realworld/cn_mail_conventions/NOTES.md (QQ auto-replies without Auto-Submitted, the `+auto_=`
envelope sender, `自动回复` subjects, Exchange's `答复:` prefix, the 超大附件 text block) and from
public parsers of QQ / NetEase webmail HTML (QQ's `bigatt_bt` title with 文件大小 / 到期时间 lines,
NetEase's `<a download filename=...>` followed by `(size, date到期)`). No third-party message text
is copied; names, addresses and links are invented.

`corpus()` returns `(name, raw bytes, expected)` triples; `expected` keys (all optional but `class`):
    class             MessageClass value
    filenames         attachment filenames, in order
    containers        Attachment.container values, in order
    subject, from_addr, from_name, received_source
    text_contains / html_contains       substrings of the decoded bodies
    cloud             list of {provider, filename, size_text, expires_text, url_contains}
    signals_contain   substrings each found in some auto_generated_signals() entry
    no_signals        True when auto_generated_signals() must be empty
    defects_contain   substrings each found in some defect note
`hopeless()` returns `(name, raw bytes, reason substring)` for input that must raise MessageParseError.
"""

from __future__ import annotations

import base64
import random
from typing import Any

CRLF = b"\r\n"

# GB2312 lacks these; GBK / GB18030 have them. Real names and company names use them.
GBK_ONLY = "镕喆堃玥"


def b64lines(data: bytes, width: int = 76) -> bytes:
    """Base64 in lines of `width` characters, as mailers write it."""
    enc = base64.b64encode(data)
    return CRLF.join(enc[i : i + width] for i in range(0, len(enc), width))


def ew(text: str, charset: str = "utf-8", codec: str | None = None) -> str:
    """One RFC 2047 B-encoded word: `=?charset?B?...?=` (bytes encoded with `codec` or `charset`)."""
    data = text.encode(codec or charset)
    return f"=?{charset}?B?{base64.b64encode(data).decode('ascii')}?="


def ew_split(text: str, charset: str, codec: str, cut: int) -> str:
    """Two encoded words splitting the encoded bytes at byte `cut` (mid-character if odd), folded."""
    data = text.encode(codec)
    a, b = data[:cut], data[cut:]
    return (
        f"=?{charset}?B?{base64.b64encode(a).decode('ascii')}?=\r\n\t"
        f"=?{charset}?B?{base64.b64encode(b).decode('ascii')}?="
    )


def pct(text: str, codec: str) -> str:
    """RFC 2231 percent-encoding of `text` in `codec`."""
    return "".join(f"%{b:02X}" for b in text.encode(codec))


def fake_file(kind: str, size: int, seed: int) -> bytes:
    """Deterministic bytes that start like a file of `kind` (docx, pdf, jpg, zip, doc)."""
    magic = {
        "docx": b"PK\x03\x04\x14\x00\x06\x00",
        "zip": b"PK\x03\x04\x14\x00\x00\x00",
        "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
        "png": b"\x89PNG\r\n\x1a\n",
        "gif": b"GIF89a",
        "doc": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
    }[kind]
    rng = random.Random(seed)
    return magic + rng.randbytes(max(0, size - len(magic)))


def headers(*pairs: tuple[str, str | bytes]) -> bytes:
    out = []
    for name, value in pairs:
        v = value if isinstance(value, bytes) else value.encode("utf-8")
        out.append(name.encode("ascii") + b": " + v)
    return CRLF.join(out) + CRLF


def part(hdrs: list[tuple[str, str | bytes]], body: bytes) -> bytes:
    return headers(*hdrs) + CRLF + body


def multipart(boundary: str, parts: list[bytes], *, close: bool = True) -> bytes:
    b = boundary.encode("ascii")
    out = b"This is a multi-part message in MIME format." + CRLF
    for p in parts:
        out += CRLF + b"--" + b + CRLF + p
    if close:
        out += CRLF + b"--" + b + b"--" + CRLF
    return out


def message(hdrs: list[tuple[str, str | bytes]], body: bytes) -> bytes:
    return headers(*hdrs) + CRLF + body


def text_part(text: str, charset: str = "utf-8", subtype: str = "plain", codec: str | None = None) -> bytes:
    return part(
        [
            ("Content-Type", f'text/{subtype}; charset="{charset}"'),
            ("Content-Transfer-Encoding", "base64"),
        ],
        b64lines(text.encode(codec or charset)),
    )


def file_part(
    data: bytes,
    ctype: str,
    *,
    ct_name: str | bytes | None = None,
    disposition: str | bytes | None = "attachment",
) -> bytes:
    ct: str | bytes = ctype
    if ct_name is not None:
        ct = (ctype + ";\r\n\tname=").encode("ascii") + (
            ct_name if isinstance(ct_name, bytes) else ct_name.encode("utf-8")
        )
    hdrs: list[tuple[str, str | bytes]] = [("Content-Type", ct), ("Content-Transfer-Encoding", "base64")]
    if disposition is not None:
        hdrs.append(("Content-Disposition", disposition))
    return part(hdrs, b64lines(data))


MAILBOX = "whaicj@126.com"
BASE_DATE = "Mon, 06 Jul 2026 10:15:00 +0800"
RECEIVED_126 = (
    "from smtp.qq.com (unknown [113.96.223.68])\r\n\tby mx5 (Coremail) with SMTP id abc;\r\n"
    "\tMon, 06 Jul 2026 10:15:04 +0800 (CST)"
)

# --- the corpus -----------------------------------------------------------------------------------


def gbk_in_gb2312() -> tuple[bytes, dict[str, Any]]:
    """Foxmail: GB2312 labels on GBK-only characters in From, Subject and body; gb18030 filename."""
    name = "王喆"
    subject = "关于申报“人工智能+社会治理”项目的材料（镕智科技、李堃）"
    body = "您好！\r\n申报单位：武汉市镕智科技有限公司\r\n联系人：王喆 13800000000\r\n附件为申报书，请查收。"
    fname = "附件1 典型应用场景案例申报书（镕智科技）.docx"
    docx = fake_file("docx", 4000, 1)
    raw = message(
        [
            ("Received", RECEIVED_126),
            ("From", f"{ew(name, 'gb2312', 'gbk')} <wangzhe@163.com>"),
            ("To", MAILBOX),
            ("Subject", ew(subject, "GB2312", "gbk")),
            ("Date", BASE_DATE),
            ("Message-ID", "<202607061015000001@163.com>"),
            ("X-Mailer", "Foxmail 7.2.25.228[cn]"),
            ("MIME-Version", "1.0"),
            ("Content-Type", 'multipart/mixed; boundary="----=_NextPart_5F8A_0001"'),
        ],
        multipart(
            "----=_NextPart_5F8A_0001",
            [
                text_part(body, "gb2312", codec="gbk"),
                file_part(
                    docx,
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    ct_name=f'"{ew(fname, "gb18030")}"',
                    disposition=f'attachment;\r\n\tfilename="{ew(fname, "gb18030")}"',
                ),
            ],
        ),
    )
    return raw, {
        "class": "submission",
        "subject": subject,
        "from_name": name,
        "from_addr": "wangzhe@163.com",
        "filenames": [fname],
        "containers": [""],
        "text_contains": ["武汉市镕智科技有限公司", "王喆"],
        "received_source": "received",
        "no_signals": True,
    }


def qq_split_encoded_words() -> tuple[bytes, dict[str, Any]]:
    """QQ Mail: quoted encoded-word display name, filename split mid-character across two words."""
    fname = "附件2 社会治理行业模型和智能体项目申报书（盖章扫描件）.pdf"
    data = fname.encode("gb18030")
    cut = 13  # inside the 7th two-byte character
    assert data[:cut].decode("gb18030", "replace") != data[:cut].decode("gb18030", "ignore")
    pdf = fake_file("pdf", 6000, 2)
    raw = message(
        [
            ("From", f'"{ew("武汉智算", "gb18030")}" <12345678@qq.com>'),
            ("To", f'"{ew("申报邮箱", "gb18030")}" <{MAILBOX}>'),
            ("Subject", ew("附件2申报材料（武汉智算）", "gb18030")),
            ("Mime-Version", "1.0"),
            ("Content-Type", 'multipart/mixed;\r\n\tboundary="----=_NextPart_6553B2E1_0A1B"'),
            ("Date", BASE_DATE),
            ("X-Priority", "3"),
            ("Message-ID", "<tencent_0A1B2C3D4E5F60718293A4B5@qq.com>"),
            ("X-QQ-MIME", "TCMime 1.0 by Tencent"),
            ("X-Mailer", "QQMail 2.x"),
            ("X-QQ-Mailer", "QQMail 2.x"),
        ],
        multipart(
            "----=_NextPart_6553B2E1_0A1B",
            [
                text_part("<div>附件是申报书扫描件。</div>", "gb18030", subtype="html"),
                file_part(
                    pdf,
                    "application/octet-stream",
                    ct_name=f'"{ew_split(fname, "gb18030", "gb18030", cut)}"',
                    disposition=f'attachment; filename="{ew_split(fname, "gb18030", "gb18030", cut)}"',
                ),
            ],
        ),
    )
    return raw, {
        "class": "submission",
        "subject": "附件2申报材料（武汉智算）",
        "from_name": "武汉智算",
        "filenames": [fname],
        "html_contains": ["附件是申报书扫描件"],
        "received_source": "date",
    }


def rfc2231_continuations() -> tuple[bytes, dict[str, Any]]:
    """RFC 2231: `filename*0*=utf-8''...` continuations with a plain last segment; a GBK `filename*=`."""
    f1 = "附件5 区（单位）创新应用项目申报信息汇总表.xlsx"
    enc = pct(f1[:-5], "utf-8")
    third = len(enc) // 3
    third -= third % 3  # whole %XX triples per segment
    seg0, seg1, seg2 = enc[:third], enc[third : 2 * third], enc[2 * third :]
    disp1 = (
        f"attachment;\r\n filename*0*=utf-8''{seg0};\r\n filename*1*={seg1};\r\n"
        f' filename*2*={seg2};\r\n filename*3=".xlsx"'
    )
    f2 = "承诺书.pdf"
    disp2 = f"attachment; filename*=gbk'zh-cn'{pct(f2, 'gbk')}"
    raw = message(
        [
            ("From", "Qu Office <office@jianghan.gov.cn>"),
            ("To", MAILBOX),
            ("Subject", ew("江汉区汇总表及承诺书")),
            ("Date", "Tue, 07 Jul 2026 09:00:00 +0800"),
            ("Message-ID", "<rfc2231.1@jianghan.gov.cn>"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/mixed; boundary=zzz"),
        ],
        multipart(
            "zzz",
            [
                text_part("见附件。"),
                file_part(fake_file("zip", 3000, 3), "application/vnd.ms-excel", disposition=disp1),
                file_part(fake_file("pdf", 2000, 4), "application/pdf", disposition=disp2),
            ],
        ),
    )
    return raw, {"class": "submission", "filenames": [f1, f2], "subject": "江汉区汇总表及承诺书"}


def octet_stream_parts() -> tuple[bytes, dict[str, Any]]:
    """application/octet-stream named only in Content-Type, and one with no name at all."""
    raw = message(
        [
            ("From", "applicant@example.com"),
            ("To", MAILBOX),
            ("Subject", "licence"),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/mixed; boundary=b1"),
        ],
        multipart(
            "b1",
            [
                text_part("licence copy attached"),
                file_part(
                    fake_file("jpg", 1500, 5),
                    "application/octet-stream",
                    ct_name=f'"{ew("营业执照.jpg")}"',
                    disposition=None,
                ),
                file_part(fake_file("pdf", 900, 6), "application/octet-stream", disposition=None),
            ],
        ),
    )
    return raw, {
        "class": "submission",
        "filenames": ["营业执照.jpg", "part-3.bin"],
        "containers": ["", ""],
    }


def raw_8bit_filenames() -> tuple[bytes, dict[str, Any]]:
    """Raw UTF-8 and raw GBK bytes in quoted filename parameters (no encoding at all)."""
    f1 = "附件4 社会治理行业智能终端产品申报书.docx"
    f2 = "检测报告（第三方）.pdf"
    raw = message(
        [
            ("From", "someone@example.cn"),
            ("To", MAILBOX),
            ("Subject", "raw 8bit names"),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/mixed; boundary=b2"),
        ],
        multipart(
            "b2",
            [
                text_part("见附件", "gb2312", codec="gbk"),
                file_part(
                    fake_file("docx", 800, 7),
                    "application/msword",
                    disposition=b'attachment; filename="' + f1.encode("utf-8") + b'"',
                ),
                file_part(
                    fake_file("pdf", 800, 8),
                    "application/pdf",
                    disposition=b'attachment; filename="' + f2.encode("gbk") + b'"',
                ),
            ],
        ),
    )
    return raw, {"class": "submission", "filenames": [f1, f2]}


def nested_forward() -> tuple[bytes, dict[str, Any]]:
    """A submission forwarded as an attachment, itself holding a forwarded message; plus a top file."""
    inner2 = message(
        [
            ("From", "boss@example.cn"),
            ("Subject", "licence"),
            ("Date", "Fri, 03 Jul 2026 08:00:00 +0800"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/mixed; boundary=in2"),
        ],
        multipart(
            "in2",
            [
                text_part("license"),
                file_part(
                    fake_file("pdf", 700, 9),
                    "application/pdf",
                    disposition=f'attachment; filename="{ew("营业执照副本.pdf")}"',
                ),
            ],
        ),
    )
    inner1 = message(
        [
            ("From", "colleague@example.cn"),
            ("Subject", ew("附件3 申报材料")),
            ("Date", "Sat, 04 Jul 2026 08:00:00 +0800"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/mixed; boundary=in1"),
        ],
        multipart(
            "in1",
            [
                text_part("内层正文：https://pan.baidu.com/s/1InnerLink 提取码: ab12"),
                file_part(
                    fake_file("docx", 1200, 10),
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    disposition=f'attachment; filename="{ew("附件3 公共服务平台申报书.docx")}"',
                ),
                file_part(
                    fake_file("pdf", 1300, 11),
                    "application/pdf",
                    disposition=f'attachment; filename="{ew("附件3 公共服务平台申报书.pdf")}"',
                ),
                part([("Content-Type", "message/rfc822")], inner2),
            ],
        ),
    )
    raw = message(
        [
            ("From", "forwarder@example.cn"),
            ("To", MAILBOX),
            ("Subject", ew("转发：附件3 申报材料")),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/mixed; boundary=outer"),
        ],
        multipart(
            "outer",
            [
                text_part("转发申报材料，请查收。"),
                part(
                    [
                        ("Content-Type", 'message/rfc822; name="fwd.eml"'),
                        ("Content-Disposition", 'attachment; filename="fwd.eml"'),
                    ],
                    inner1,
                ),
                file_part(
                    fake_file("pdf", 500, 12),
                    "application/pdf",
                    disposition=f'attachment; filename="{ew("推荐意见.pdf")}"',
                ),
            ],
        ),
    )
    return raw, {
        "class": "submission",
        "filenames": [
            "附件3 公共服务平台申报书.docx",
            "附件3 公共服务平台申报书.pdf",
            "营业执照副本.pdf",
            "推荐意见.pdf",
        ],
        "containers": ["2", "2", "2.4", ""],
        "text_contains": ["转发申报材料"],
        "cloud": [{"provider": "other", "url_contains": "pan.baidu.com/s/1InnerLink"}],
    }


def inline_parts() -> tuple[bytes, dict[str, Any]]:
    """Outlook-style related HTML: a named inline image, a nameless CID image, a named HTML body."""
    html = '<html><body><p>申报材料见附件</p><img src="cid:image001.png@01DAB"></body></html>'
    alt = multipart(
        "alt",
        [
            text_part("申报材料见附件"),
            part(
                [
                    ("Content-Type", 'text/html; charset="utf-8"; name="message.html"'),
                    ("Content-Disposition", 'inline; filename="message.html"'),
                    ("Content-Transfer-Encoding", "base64"),
                ],
                b64lines(html.encode("utf-8")),
            ),
        ],
    )
    raw = message(
        [
            ("From", "=?utf-8?Q?=E5=BC=A0=E4=B8=89?= <zhangsan@example.com>"),
            ("To", MAILBOX),
            ("Subject", "inline"),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", 'multipart/related; boundary="rel"; type="multipart/alternative"'),
        ],
        multipart(
            "rel",
            [
                part([("Content-Type", 'multipart/alternative; boundary="alt"')], alt),
                part(
                    [
                        ("Content-Type", 'image/png; name="image001.png"'),
                        ("Content-Disposition", 'inline; filename="image001.png"'),
                        ("Content-ID", "<image001.png@01DAB>"),
                        ("Content-Transfer-Encoding", "base64"),
                    ],
                    b64lines(fake_file("png", 300, 13)),
                ),
                part(
                    [
                        ("Content-Type", "image/gif"),
                        ("Content-ID", "<logo@01DAB>"),
                        ("Content-Transfer-Encoding", "base64"),
                    ],
                    b64lines(fake_file("gif", 120, 14)),
                ),
            ],
        ),
    )
    return raw, {
        "class": "submission",
        "from_name": "张三",
        "filenames": ["image001.png", "part-3.gif"],
        "text_contains": ["申报材料见附件"],
        "html_contains": ["<p>申报材料见附件</p>"],
    }


def named_inline_text() -> tuple[bytes, dict[str, Any]]:
    """A named inline text/plain part is both read as body text and kept as a file."""
    note = "备注：纸质材料已于7月6日送213室。"
    raw = message(
        [
            ("From", "a@example.com"),
            ("To", MAILBOX),
            ("Subject", "note"),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/mixed; boundary=nt"),
        ],
        multipart(
            "nt",
            [
                text_part("正文"),
                part(
                    [
                        ("Content-Type", f'text/plain; charset=utf-8; name="{ew("备注.txt")}"'),
                        ("Content-Disposition", f'inline; filename="{ew("备注.txt")}"'),
                        ("Content-Transfer-Encoding", "base64"),
                    ],
                    b64lines(note.encode("utf-8")),
                ),
            ],
        ),
    )
    return raw, {"class": "submission", "filenames": ["备注.txt"], "text_contains": ["正文", "纸质材料已于"]}


def malformed_headers() -> tuple[bytes, dict[str, Any]]:
    """Raw UTF-8 in From/Subject, an unreadable Date, no Message-ID, and a header line without a colon."""
    raw = (
        b"Received: from mx.example (mx [192.0.2.1]) by mx5.126.com with SMTP;\r\n"
        b"\tTue, 07 Jul 2026 16:58:02 +0800 (CST)\r\n"
        b"Received: from laptop by mx.example; garbage date here\r\n"
        + "From: 张三 <zhangsan@example.com>\r\n".encode()
        + "Subject: 申报材料（补充）\r\n".encode()
        + b"Date: yesterday afternoon\r\n"
        b"To: whaicj@126.com\r\n"
        b"This line has no colon and ends the header block for strict parsers\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"\r\n" + "补充材料稍后发送。".encode() + b"\r\n"
    )
    return raw, {
        "class": "other",
        "subject": "申报材料（补充）",
        "from_name": "张三",
        "from_addr": "zhangsan@example.com",
        "received_source": "received",
        "defects_contain": ["Date header not readable"],
    }


BIG_SIZE = 8 * 1024 * 1024


def big_attachment_data() -> bytes:
    return fake_file("pdf", BIG_SIZE, 15)


def big_attachment() -> tuple[bytes, dict[str, Any]]:
    """One 8 MB attachment (what a scanned stamped form set weighs)."""
    raw = message(
        [
            ("From", "big@example.com"),
            ("To", MAILBOX),
            ("Subject", ew("证明材料（大文件）")),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/mixed; boundary=big"),
        ],
        multipart(
            "big",
            [
                text_part("大文件"),
                file_part(
                    big_attachment_data(),
                    "application/pdf",
                    disposition=f'attachment; filename="{ew("证明材料合集.pdf")}"',
                ),
            ],
        ),
    )
    return raw, {"class": "submission", "filenames": ["证明材料合集.pdf"]}


def bounce_dsn() -> tuple[bytes, dict[str, Any]]:
    """Coremail-style DSN: multipart/report with delivery-status and the returned original."""
    original = message(
        [
            ("From", MAILBOX),
            ("To", "gone@example.cn"),
            ("Subject", ew("申报材料接收回执")),
            ("Auto-Submitted", "auto-replied"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/mixed; boundary=orig"),
        ],
        multipart(
            "orig",
            [
                text_part("您的申报材料已收到。"),
                file_part(
                    fake_file("pdf", 400, 16),
                    "application/pdf",
                    disposition=f'attachment; filename="{ew("回执.pdf")}"',
                ),
            ],
        ),
    )
    status = (
        b"Reporting-MTA: dns; mx5.126.com\r\n\r\n"
        b"Final-Recipient: rfc822; gone@example.cn\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    )
    raw = message(
        [
            ("Return-Path", "<>"),
            ("From", "MAILER-DAEMON@126.com"),
            ("To", MAILBOX),
            ("Subject", ew("系统退信")),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", 'multipart/report; report-type=delivery-status; boundary="dsn"'),
        ],
        multipart(
            "dsn",
            [
                text_part("很抱歉，您的邮件无法投递到 gone@example.cn"),
                part([("Content-Type", "message/delivery-status")], status),
                part([("Content-Type", "message/rfc822")], original),
            ],
        ),
    )
    return raw, {
        "class": "bounce",
        "filenames": ["回执.pdf"],
        "containers": ["3"],
        "signals_contain": ["multipart/report", "empty Return-Path", "MAILER-DAEMON"],
    }


def out_of_office() -> tuple[bytes, dict[str, Any]]:
    """RFC 3834 out-of-office reply from Exchange."""
    raw = message(
        [
            ("From", "Li Si <lisi@example.com>"),
            ("To", MAILBOX),
            ("Subject", f"Automatic reply: {ew('申报材料')}"),
            ("Date", BASE_DATE),
            ("Auto-Submitted", "auto-replied"),
            ("X-Auto-Response-Suppress", "All"),
            ("In-Reply-To", "<ack-1@126.com>"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=utf-8"),
        ],
        b"I am out of the office until 10 July.",
    )
    return raw, {
        "class": "auto_reply",
        "subject": "Automatic reply: 申报材料",
        "signals_contain": ["Auto-Submitted: auto-replied", "X-Auto-Response-Suppress: All"],
    }


def qq_auto_reply() -> tuple[bytes, dict[str, Any]]:
    """QQ Mail auto-reply: X-QQ-AUTO-REPLY and a +auto_= Sender, no Auto-Submitted."""
    html = "这是来自QQ邮箱的假期自动回复邮件。<br  /><br  />你好，我最近正在休假中，无法亲自回复你的邮件。"
    raw = message(
        [
            ("From", f'"{ew("12345678")}" <12345678@qq.com>'),
            ("To", f'"whaicj" <{MAILBOX}>'),
            ("Subject", ew("自动回复: 关于申报材料的确认")),
            ("Mime-Version", "1.0"),
            ("Content-Type", 'text/html;\r\n\tcharset="utf-8"'),
            ("Content-Transfer-Encoding", "base64"),
            ("Date", BASE_DATE),
            ("X-QQ-AUTO-REPLY", "true"),
            ("Message-ID", "<tencent_52ADA4817628A99F27EB0000@qq.com>"),
            ("X-QQ-MIME", "TCMime 1.0 by Tencent"),
            ("X-Mailer", "QQMail 2.x"),
            ("In-Reply-To", "<ack-2@126.com>"),
            ("Sender", "12345678+auto_=whaicj=126.com@qq.com"),
        ],
        b64lines(html.encode("utf-8")),
    )
    return raw, {
        "class": "auto_reply",
        "subject": "自动回复: 关于申报材料的确认",
        "html_contains": ["假期自动回复"],
        "signals_contain": ["X-QQ-AUTO-REPLY: true", "+auto_="],
    }


def qq_holiday_gbk() -> tuple[bytes, dict[str, Any]]:
    """QQ holiday reply: X-QQ-HolidayReply, GBK subject without a space after the colon."""
    raw = message(
        [
            ("From", f'"{ew("陈某", "gb18030")}" <87654321@qq.com>'),
            ("To", MAILBOX),
            ("Subject", ew("自动回复:申报材料", "gbk")),
            ("Mime-Version", "1.0"),
            ("Content-Type", 'text/html;\r\n\tcharset="gbk"'),
            ("Content-Transfer-Encoding", "base64"),
            ("Date", BASE_DATE),
            ("X-QQ-HolidayReply", "true"),
            ("Sender", "87654321+auto_=whaicj=126.com@qq.com"),
        ],
        b64lines("您的邮件我已经收到了，谢谢！".encode("gbk")),
    )
    return raw, {
        "class": "auto_reply",
        "subject": "自动回复:申报材料",
        "from_name": "陈某",
        "html_contains": ["您的邮件我已经收到了"],
        "signals_contain": ["X-QQ-HolidayReply: true"],
    }


def ses_relayed_qq_autoreply() -> tuple[bytes, dict[str, Any]]:
    """A QQ auto-reply relayed by a mail service's MAILER-DAEMON with no auto-reply header at all."""
    body = "您好，邮件已收到。\r\n\r\n------------------ 来自 12345678@qq.com 的自动回复"
    raw = message(
        [
            ("From", "MAILER-DAEMON@email-bounces.example.com"),
            ("To", MAILBOX),
            ("Subject", ew("（自动回复）Re：申报材料已收到")),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=utf-8"),
        ],
        body.encode("utf-8"),
    )
    return raw, {"class": "auto_reply", "subject": "（自动回复）Re：申报材料已收到"}


def exchange_reply(with_attachment: bool) -> tuple[bytes, dict[str, Any]]:
    """zh-CN Exchange: `答复:` is an ordinary human reply, not an auto-reply."""
    subject = "答复: 关于申报材料格式的问题"
    hdrs: list[tuple[str, str | bytes]] = [
        ("From", f"{ew('刘某', 'gb2312', 'gbk')} <liu@corp.example.cn>"),
        ("To", MAILBOX),
        ("Subject", ew(subject, "gb2312", "gbk")),
        ("Thread-Topic", ew("关于申报材料格式的问题", "gb2312", "gbk")),
        ("Thread-Index", "AQHaT0abcdEFGH=="),
        ("Date", BASE_DATE),
        ("Message-ID", "<2b3c4d5e6f@EXCH01.corp.example.cn>"),
        ("In-Reply-To", "<ack-3@126.com>"),
        ("References", "<orig-3@corp.example.cn> <ack-3@126.com>"),
        ("Accept-Language", "zh-CN, en-US"),
        ("Content-Language", "zh-CN"),
        ("X-MS-Has-Attach", "yes" if with_attachment else ""),
        ("MIME-Version", "1.0"),
    ]
    text = text_part("好的，我们会按要求重新提交。", "gb2312", codec="gbk")
    fixed = "附件1 申报书（更正）.docx"
    expected: dict[str, Any] = {"subject": subject, "from_name": "刘某", "no_signals": True}
    if with_attachment:
        hdrs.append(("Content-Type", 'multipart/mixed; boundary="_002_"'))
        body = multipart(
            "_002_",
            [
                text,
                file_part(
                    fake_file("docx", 900, 17),
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    ct_name=f'"{ew(fixed, "gb2312", "gbk")}"',
                    disposition=f'attachment;\r\n\tfilename="{ew(fixed, "gb2312", "gbk")}"',
                ),
            ],
        )
        expected.update({"class": "submission", "filenames": ["附件1 申报书（更正）.docx"]})
    else:
        hdrs.extend(
            [("Content-Type", 'text/plain; charset="gb2312"'), ("Content-Transfer-Encoding", "base64")]
        )
        body = b64lines("好的，我们会按要求重新提交。".encode("gbk"))
        expected.update({"class": "other", "filenames": []})
    return message(hdrs, body), expected


def list_mail() -> tuple[bytes, dict[str, Any]]:
    raw = message(
        [
            ("From", "news@lists.example.org"),
            ("To", MAILBOX),
            ("Subject", "[ai-news] weekly digest"),
            ("Date", BASE_DATE),
            ("List-Id", "AI news <ai-news.lists.example.org>"),
            ("List-Unsubscribe", "<mailto:ai-news-leave@lists.example.org>"),
            ("Precedence", "list"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=us-ascii"),
        ],
        b"weekly news",
    )
    return raw, {"class": "list", "signals_contain": ["List-Id", "List-Unsubscribe", "Precedence: list"]}


def qq_cloud() -> tuple[bytes, dict[str, Any]]:
    """QQ 超大附件: the text rendering and the HTML rendering (title attribute, &amp; in the href)."""
    name = "附件1 申报书（视频材料）.mp4"
    text = (
        "申报视频见超大附件。\r\n\r\n从QQ邮箱发来的超大附件\r\n\r\n"
        f"{name} (512.35M, 2026年08月06日 16:20 到期)进入下载页面："
        "http://mail.qq.com/cgi-bin/ftnExs_download?t=exs_ftn_download&k=3a6b1c0e&code=7684decd\r\n"
    )
    html = (
        "<div>申报视频见超大附件。</div><div>从QQ邮箱发来的超大附件</div>"
        f'<div class="bigatt_bt" title="{name}&#10;文件大小：512.35M&#10;到期时间：2026年08月06日 16:20">'
        '<a href="https://wx.mail.qq.com/ftn/download?func=3&amp;key=9f8e7d6c&amp;code=ab12&amp;k=77aa">'
        "下载</a></div>"
    )
    raw = message(
        [
            ("From", "12345678@qq.com"),
            ("To", MAILBOX),
            ("Subject", ew("申报视频")),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", 'multipart/alternative; boundary="qqalt"'),
        ],
        multipart("qqalt", [text_part(text, "gb18030"), text_part(html, "gb18030", subtype="html")]),
    )
    return raw, {
        "class": "submission",
        "filenames": [],
        "cloud": [
            {
                "provider": "qq",
                "filename": name,
                "size_text": "512.35M",
                "expires_text": "2026年08月06日 16:20",
                "url": "http://mail.qq.com/cgi-bin/ftnExs_download?t=exs_ftn_download&k=3a6b1c0e&code=7684decd",
            },
            {
                "provider": "qq",
                "filename": name,
                "size_text": "512.35M",
                "expires_text": "2026年08月06日 16:20",
                "url": "https://wx.mail.qq.com/ftn/download?func=3&key=9f8e7d6c&code=ab12&k=77aa",
            },
        ],
    }


def netease_cloud() -> tuple[bytes, dict[str, Any]]:
    """NetEase 126 / 163 超大附件 in HTML: `<a download filename=...>` then `(size, date到期)`."""
    f1 = "武汉某某公司-证明材料.zip"
    f2 = "项目演示视频.mp4"
    html = (
        "<div>材料较大，使用超大附件发送。</div>"
        '<div style="font-size:14px">从网易126邮箱发来的超大附件</div>'
        '<div style="clear:both;height:36px;padding:6px 4px;">'
        f'<a download="" filename="{f1}" '
        'href="https://fs.mail.126.com/attach/preview?p=X-NETEASE-HUGE-ATTACHMENT&amp;file=K2x0abc&amp;t=1">'
        f"{f1}</a>"
        '<span style="color:#bbb">(1.2G, 2026年7月22日 10:00到期)</span></div>'
        '<div style="clear:both;height:36px;padding:6px 4px;">'
        f'<a download="" filename="{f2}" '
        'href="https://mail.163.com/large-attachment-download/index.html?p=X-NETEASE-HUGE-ATTACHMENT&amp;file=Zz9">'
        f"{f2}</a>"
        '<span style="color:#bbb">(300.5M, 2026年7月23日 9:30到期)</span></div>'
        '<div>发自<a href="https://mail.163.com/dashi/dlpro.html?from=mail81">网易邮箱大师</a></div>'
    )
    raw = message(
        [
            ("From", f"{ew('赵某', 'GBK')} <zhao@126.com>"),
            ("To", MAILBOX),
            ("Subject", ew("证明材料（超大附件）", "GBK")),
            ("Date", BASE_DATE),
            (
                "X-Mailer",
                "Coremail Webmail Server Version XT5.0.14 build 20230109(dcb5de15)\r\n"
                " Copyright (c) 2002-2026 www.mailtech.cn 126com",
            ),
            ("X-Coremail-Locale", "zh_CN"),
            ("MIME-Version", "1.0"),
            ("Content-Type", 'text/html; charset="GBK"'),
            ("Content-Transfer-Encoding", "base64"),
        ],
        b64lines(html.encode("gbk")),
    )
    return raw, {
        "class": "submission",
        "from_name": "赵某",
        "cloud": [
            {
                "provider": "126",
                "filename": f1,
                "size_text": "1.2G",
                "expires_text": "2026年7月22日 10:00",
                "url": "https://fs.mail.126.com/attach/preview?p=X-NETEASE-HUGE-ATTACHMENT&file=K2x0abc&t=1",
            },
            {
                "provider": "126",
                "filename": f2,
                "size_text": "300.5M",
                "expires_text": "2026年7月23日 9:30",
                "url_contains": "large-attachment-download",
            },
        ],
    }


def netease163_text_cloud() -> tuple[bytes, dict[str, Any]]:
    """163 超大附件 in a plain-text body."""
    text = (
        "从网易163邮箱发来的超大附件\r\n\r\n"
        "专利证书扫描件.pdf (88.1M, 2026年07月30日 12:00 到期)\r\n"
        "下载：https://mail.163.com/large-attachment-download/index.html?p=X-NETEASE-HUGE-ATTACHMENT&file=Ab1\r\n"
    )
    raw = message(
        [
            ("From", "qian@163.com"),
            ("To", MAILBOX),
            ("Subject", "patent"),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=utf-8"),
        ],
        text.encode("utf-8"),
    )
    return raw, {
        "class": "submission",
        "cloud": [
            {
                "provider": "163",
                "filename": "专利证书扫描件.pdf",
                "size_text": "88.1M",
                "expires_text": "2026年07月30日 12:00",
                "url_contains": "file=Ab1",
            }
        ],
    }


def ordinary_links() -> tuple[bytes, dict[str, Any]]:
    """Ordinary web links and NetEase/QQ signature links are not cloud attachments."""
    html = (
        '<p>请问申报通知见 <a href="https://www.wuhan.gov.cn/zwgk/tzgg/202606/t2026_1.shtml">这里</a>，'
        '模板在 <a href="https://github.com/example/templates">这里</a>。</p>'
        '<p>发自<a href="https://mail.163.com/dashi/dlpro.html?from=mail81">网易邮箱大师</a></p>'
        '<p><a href="https://mail.qq.com/">QQ邮箱</a> <a href="https://wx.mail.qq.com/">微信</a></p>'
    )
    raw = message(
        [
            ("From", "question@163.com"),
            ("To", MAILBOX),
            ("Subject", ew("咨询：申报截止时间")),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", 'text/html; charset="utf-8"'),
        ],
        html.encode("utf-8"),
    )
    return raw, {"class": "other", "cloud": [], "filenames": [], "no_signals": True}


def netdisk_link() -> tuple[bytes, dict[str, Any]]:
    raw = message(
        [
            ("From", "pan@example.com"),
            ("To", MAILBOX),
            ("Subject", ew("证明材料网盘链接")),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=utf-8"),
        ],
        "证明材料太大，放在百度网盘：链接: https://pan.baidu.com/s/1AbCdEfGh 提取码: x1y2".encode(),
    )
    return raw, {
        "class": "submission",
        "cloud": [{"provider": "other", "url": "https://pan.baidu.com/s/1AbCdEfGh"}],
    }


def broken_message() -> tuple[bytes, dict[str, Any]]:
    """Missing close boundary, junk header bytes, invalid base64, a Q-encoded filename."""
    raw = (
        b"From: broken@example.com\r\n"
        b"To: whaicj@126.com\r\n"
        b"Subject: =?utf-8?Q?=E7=94=B3=E6=8A=A5=E4=B9=A6?= (broken)\r\n"
        b"X-Junk: \xff\xfe\x00\x01 binary\r\n"
        b"Date: Mon, 06 Jul 2026 10:15:00 +0800\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="brk"\r\n'
        b"\r\n"
        b"--brk\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"\r\n" + "正文".encode() + b"\r\n"
        b"--brk\r\n"
        b"Content-Type: application/msword;\r\n"
        b' name="=?utf-8?Q?=E9=99=84=E4=BB=B64_=E6=99=BA=E8=83=BD=E7=BB=88?=\r\n'
        b' =?utf-8?Q?=E7=AB=AF=E4=BA=A7=E5=93=81=E7=94=B3=E6=8A=A5=E4=B9=A6.doc?="\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment\r\n"
        b"\r\n"
        b"0M8R4KGxGuEAAAAA!!!not*base64$$$\r\nAAAAAAAAPgADAP7/CQ\r\n"
    )
    return raw, {
        "class": "submission",
        "subject": "申报书 (broken)",
        "filenames": ["附件4 智能终端产品申报书.doc"],
        "defects_contain": ["CloseBoundaryNotFoundDefect"],
    }


def undecodable_filename() -> tuple[bytes, dict[str, Any]]:
    raw = message(
        [
            ("From", "x@example.com"),
            ("To", MAILBOX),
            ("Subject", "bad name"),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/mixed; boundary=u"),
        ],
        multipart(
            "u",
            [
                text_part("x"),
                file_part(
                    fake_file("docx", 300, 18),
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    disposition=b'attachment; filename="\xff\xfe\xfa\xfb\xff.docx"',
                ),
            ],
        ),
    )
    return raw, {
        "class": "submission",
        "filenames": ["part-2.docx"],
        "defects_contain": ["could not be decoded"],
    }


def traversal_filename() -> tuple[bytes, dict[str, Any]]:
    hostile = "..\\..\\Windows\\System32\\\x01申报\u202e书.docx"
    raw = message(
        [
            ("From", "x@example.com"),
            ("To", MAILBOX),
            ("Subject", "path"),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/mixed; boundary=t"),
        ],
        multipart(
            "t",
            [
                text_part("x"),
                file_part(
                    fake_file("docx", 300, 19),
                    "application/octet-stream",
                    disposition=f'attachment; filename="{ew(hostile)}"',
                ),
                file_part(
                    fake_file("pdf", 300, 20),
                    "application/pdf",
                    disposition='attachment; filename="../../etc/passwd"',
                ),
            ],
        ),
    )
    return raw, {
        "class": "submission",
        "filenames": ["申报书.docx", "passwd"],
        "defects_contain": ["sanitised"],
    }


def gbk_html_meta() -> tuple[bytes, dict[str, Any]]:
    """HTML part with no charset parameter; only `<meta charset=gbk>` says how to read it."""
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gbk"></head>'
        "<body>镕智科技 王喆</body></html>"
    )
    raw = message(
        [
            ("From", "m@example.com"),
            ("To", MAILBOX),
            ("Subject", "meta"),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/html"),
            ("Content-Transfer-Encoding", "8bit"),
        ],
        html.encode("gbk"),
    )
    return raw, {"class": "other", "html_contains": ["镕智科技 王喆"]}


def suppress_header_only() -> tuple[bytes, dict[str, Any]]:
    """X-Auto-Response-Suppress alone does not make a reply automatic, but suppresses the ack."""
    raw = message(
        [
            ("From", "Applicant <app@example.com>"),
            ("To", MAILBOX),
            ("Subject", "submission"),
            ("Date", BASE_DATE),
            ("X-Auto-Response-Suppress", "OOF, AutoReply"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/mixed; boundary=s"),
        ],
        multipart(
            "s",
            [
                text_part("see file"),
                file_part(
                    fake_file("pdf", 300, 21),
                    "application/pdf",
                    disposition='attachment; filename="form.pdf"',
                ),
            ],
        ),
    )
    return raw, {
        "class": "submission",
        "filenames": ["form.pdf"],
        "signals_contain": ["X-Auto-Response-Suppress: OOF, AutoReply"],
    }


def noreply_sender() -> tuple[bytes, dict[str, Any]]:
    raw = message(
        [
            ("From", "noreply@oa.example.gov.cn"),
            ("To", MAILBOX),
            ("Subject", "OA"),
            ("Date", BASE_DATE),
            ("MIME-Version", "1.0"),
            ("Content-Type", "multipart/mixed; boundary=n"),
        ],
        multipart(
            "n",
            [
                text_part("OA 转发"),
                file_part(
                    fake_file("pdf", 300, 22), "application/pdf", disposition='attachment; filename="a.pdf"'
                ),
            ],
        ),
    )
    return raw, {"class": "submission", "signals_contain": ["no-reply sender"]}


def headerless_text() -> tuple[bytes, dict[str, Any]]:
    """No header at all: still a message (a body), reported as such."""
    return "申报材料请见附件（没有邮件头）。\r\n".encode(), {
        "class": "other",
        "text_contains": ["没有邮件头"],
        "defects_contain": ["no header fields"],
    }


def deep_nesting(levels: int = 60) -> bytes:
    """`levels` nested multiparts with a file at the bottom."""
    body = (
        b"Content-Type: application/pdf; name=deep.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + b64lines(fake_file("pdf", 50, 23))
        + CRLF
    )
    for i in range(levels):
        b = b"lvl%d" % i
        body = (
            b"Content-Type: multipart/mixed; boundary="
            + b
            + CRLF
            + CRLF
            + b"--"
            + b
            + CRLF
            + body
            + CRLF
            + b"--"
            + b
            + b"--"
            + CRLF
        )
    return b"From: deep@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n" + body


def corpus() -> list[tuple[str, bytes, dict[str, Any]]]:
    """Every generated message with what parsing it must produce (see the module docstring)."""
    builders = [
        ("gbk_in_gb2312", gbk_in_gb2312),
        ("qq_split_encoded_words", qq_split_encoded_words),
        ("rfc2231_continuations", rfc2231_continuations),
        ("octet_stream_parts", octet_stream_parts),
        ("raw_8bit_filenames", raw_8bit_filenames),
        ("nested_forward", nested_forward),
        ("inline_parts", inline_parts),
        ("named_inline_text", named_inline_text),
        ("malformed_headers", malformed_headers),
        ("big_attachment", big_attachment),
        ("bounce_dsn", bounce_dsn),
        ("out_of_office", out_of_office),
        ("qq_auto_reply", qq_auto_reply),
        ("qq_holiday_gbk", qq_holiday_gbk),
        ("ses_relayed_qq_autoreply", ses_relayed_qq_autoreply),
        ("exchange_dafu", lambda: exchange_reply(False)),
        ("exchange_dafu_with_attachment", lambda: exchange_reply(True)),
        ("list_mail", list_mail),
        ("qq_cloud", qq_cloud),
        ("netease_cloud", netease_cloud),
        ("netease163_text_cloud", netease163_text_cloud),
        ("ordinary_links", ordinary_links),
        ("netdisk_link", netdisk_link),
        ("broken_message", broken_message),
        ("undecodable_filename", undecodable_filename),
        ("traversal_filename", traversal_filename),
        ("gbk_html_meta", gbk_html_meta),
        ("suppress_header_only", suppress_header_only),
        ("noreply_sender", noreply_sender),
        ("headerless_text", headerless_text),
    ]
    out = []
    for name, build in builders:
        raw, expected = build()
        out.append((name, raw, expected))
    return out


def hopeless() -> list[tuple[str, bytes, str]]:
    """Input that is not a message at all, with a substring of the MessageParseError reason."""
    return [
        ("empty", b"", "empty"),
        ("whitespace", b" \r\n\t\r\n", "empty"),
        ("outlook_msg", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "OLE2"),
        ("tnef_blob", b"\x78\x9f\x3e\x22\x01\x00" + bytes(100), "TNEF"),
        ("pdf_file", b"%PDF-1.7\n" + bytes(50), "PDF"),
        ("binary_noise", bytes(range(256)) * 8, "binary"),
        ("recursion_bomb", deep_nesting(1500), "nested too deeply"),
    ]
