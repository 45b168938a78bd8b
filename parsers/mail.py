"""Parse one raw email (bytes) into a ParsedMessage: headers, bodies, attachments, cloud links, class.

Design notes (the contract other modules rely on):

* mail-parser (`MailParser.from_bytes`) does the MIME parse; everything Chinese mail gets wrong in
  it (header and filename charsets, GBK text labelled GB2312, RFC 2047 inside quoted parameters,
  silent `errors="ignore"` decoding) is read again from its stdlib `.message` tree and the part
  bytes, never by parsing the message a second time.
* `Attachment.container` is the IMAP section number (RFC 3501) of the message/rfc822 part that
  holds the attachment: "" for the top message, "2" for parts of a message attached as part 2,
  "2.3" for a message attached inside that one.
* An attached message (message/rfc822, message/global) is a container, not an attachment: its
  files come out as attachments with its container path, its bodies are scanned for cloud links
  but not added to `text`/`html`. The .eml itself is not listed, because the raw message is
  archived byte for byte anyway and a forwarded submission is about the files inside it.
* Every leaf part that is a file is listed, including nameless inline images (named
  `part-<section>.<ext>`); only parts with a sender-given name or `Content-Disposition:
  attachment` (and no signatures) make a message a `submission`.
* `MessageParseError` is raised only for input that is not a message at all (empty, binary
  formats, nothing header-like) or that nests deeper than the parser can follow. Everything else
  comes back as a ParsedMessage whose `defects` say what was wrong.
"""

from __future__ import annotations

import binascii
import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.message import Message

import mailparser
from mailparser.exceptions import MailParserRecursionError

from parsers.cloudlinks import find_cloud_links
from parsers.mailheaders import (
    bare_cst,
    decode_bytes,
    decode_header_value,
    ensure_aware,
    normalize_charset,
    param_text,
    parse_addresses,
    parse_date,
    parse_msg_ids,
    parse_params,
    parse_return_path,
    sanitize_filename,
    unfold,
)
from parsers.types import Attachment, CloudLink, MessageClass, ParsedMessage

# mail-parser logs a warning or error for every unusual part ("Email content 'gif' not handled",
# "Failed decoding header part"), i.e. for most Chinese mail; this module reports the same facts
# in ParsedMessage.defects, so its log lines would only flood an unattended daemon's log.
logging.getLogger("mailparser").setLevel(logging.CRITICAL)

__all__ = ["MessageParseError", "auto_generated_signals", "parse_message"]

MAX_DEPTH = 40  # MIME nesting levels followed; real mail rarely exceeds 6
MAX_DEFECTS = 200
MAX_HEADER_VALUE = 32_768  # characters kept per header value in ParsedMessage.headers
MAX_HEADERS = 1_000
# More "=?" than this on one line and mail-parser's header decoding would be quadratic (see _parse_tree).
MAX_ENCODED_WORDS_PER_LINE = 2_000


class MessageParseError(Exception):
    """The bytes are not a message that can be parsed at all; `reason` says why (for quarantine)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- not-a-message detection ---------------------------------------------------------------------

_BINARY_MAGIC: list[tuple[bytes, str]] = [
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an OLE2 compound file (Outlook .msg, .doc, .xls), not a MIME message",
    ),
    (b"\x78\x9f\x3e\x22", "a TNEF (winmail.dat) blob, not a MIME message"),
    (b"%PDF-", "a PDF file, not a MIME message"),
    (b"PK\x03\x04", "a ZIP/Office Open XML file, not a MIME message"),
    (b"Rar!\x1a\x07", "a RAR archive, not a MIME message"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive, not a MIME message"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image, not a MIME message"),
    (b"\xff\xd8\xff", "a JPEG image, not a MIME message"),
    (b"GIF8", "a GIF image, not a MIME message"),
]
_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,76}[ \t]*:", re.MULTILINE)
_LEADING_BLANK = re.compile(rb"\A(?:[ \t]*\r?\n)+")


def _prepare(raw: bytes, defects: list[str]) -> bytes:
    """Check the input is a message at all; strip what makes the stdlib parser miss every header."""
    if not raw or not raw.strip():
        raise MessageParseError("empty message")
    data = raw
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        defects.append("leading UTF-8 byte-order mark removed before parsing")
    m = _LEADING_BLANK.match(data)
    if m:
        data = data[m.end() :]
        defects.append("blank lines before the first header removed before parsing")
    for magic, what in _BINARY_MAGIC:
        if data.startswith(magic):
            raise MessageParseError(f"not an email message: {what}")
    head = data[:4096]
    if b"\x00" in head and not _HEADER_LINE.search(head):
        raise MessageParseError("not an email message: binary data with no header lines")
    return data


def _max_encoded_words_per_line(data: bytes) -> int:
    if data.count(b"=?") <= MAX_ENCODED_WORDS_PER_LINE:
        return 0  # the common case: one pass in C, no split
    return max(line.count(b"=?") for line in data.split(b"\n"))


def _parse_tree(data: bytes, defects: list[str]) -> Message:
    words = _max_encoded_words_per_line(data)
    if words > MAX_ENCODED_WORDS_PER_LINE:
        # mail-parser decodes every header with email.header.decode_header, which is quadratic in the encoded
        # words of one line (list.pop(0)): 100,000 of them in a 1.7 MB Subject took 76 s. Its tree is the
        # stdlib's, built here directly; this module decodes the headers itself, in linear time.
        defects.append(f"{words} encoded words on one line: mail-parser skipped, parsed with the stdlib email package")
        try:
            return message_from_bytes(data)
        except RecursionError as exc:
            raise MessageParseError("MIME structure nested too deeply to parse (recursion bomb)") from exc
    try:
        parsed = mailparser.MailParser.from_bytes(data)
    except (MailParserRecursionError, RecursionError) as exc:
        raise MessageParseError("MIME structure nested too deeply to parse (recursion bomb)") from exc
    except Exception as exc:
        # mail-parser 4.8 crashes on some real messages (AttributeError in its epilogue recovery);
        # the stdlib tree it would have wrapped is all this module needs, so build that instead.
        defects.append(
            f"mail-parser failed ({type(exc).__name__}: {exc}); parsed with the stdlib email package"
        )
        try:
            return message_from_bytes(data)
        except RecursionError as exc2:
            raise MessageParseError("MIME structure nested too deeply to parse (recursion bomb)") from exc2
    msg = parsed.message
    if msg is None:
        raise MessageParseError("mail-parser returned no message")
    return msg


# --- per-message working state ----------------------------------------------------------------------


@dataclass
class _State:
    defects: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    nested_bodies: list[tuple[str, str]] = field(default_factory=list)  # (text, html) of enclosures
    attachments: list[Attachment] = field(default_factory=list)
    substantive: int = 0  # attachments that make a message a submission
    report_types: list[str] = field(default_factory=list)  # multipart/report types outside enclosures
    delivery_status: bool = False  # a message/delivery-status part outside enclosures
    encloses_message: bool = False
    hint: str | None = None  # charset the message's text declares: best guess for raw 8-bit headers
    substantive_names: list[str] = field(default_factory=list)

    def defect(self, note: str) -> None:
        if len(self.defects) < MAX_DEFECTS:
            self.defects.append(note)
        elif len(self.defects) == MAX_DEFECTS:
            self.defects.append("further defects omitted")


def _charset_hint(msg: Message) -> str | None:
    """The first non-UTF-8 charset a text part declares: how the sender's client writes text."""
    for i, part in enumerate(msg.walk()):
        if i > 50:
            break
        if part.get_content_maintype() != "text":
            continue
        cs = part.get_content_charset()
        if cs and normalize_charset(cs) not in (None, "utf-8"):
            return cs
    return None


def _first_raw(part: Message, name: str) -> str | None:
    for key, value in part.raw_items():
        if key.lower() == name:
            return str(value)
    return None


_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/zip": ".zip",
    "application/x-zip-compressed": ".zip",
    "application/x-rar-compressed": ".rar",
    "application/vnd.rar": ".rar",
    "application/x-7z-compressed": ".7z",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/tiff": ".tif",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/csv": ".csv",
    "text/calendar": ".ics",
    "message/rfc822": ".eml",
}
_SIGNATURE_TYPES = frozenset(
    {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
)
_REPORT_PARTS = frozenset(
    {
        "message/delivery-status",
        "message/global-delivery-status",
        "message/disposition-notification",
        "message/global-disposition-notification",
        "message/feedback-report",
        "text/rfc822-headers",
        "message/global-headers",
    }
)


def _fallback_name(section: str, ctype: str, hint: str | None = None) -> str:
    ext = _EXTENSIONS.get(ctype, ".bin")
    if hint:
        m = re.search(r"(\.[A-Za-z0-9]{1,8})$", hint)
        if m:
            ext = m.group(1).lower()
    return f"part-{section or '1'}{ext}"


def _part_filename(part: Message, section: str, st: _State) -> tuple[str | None, bool]:
    """(decoded safe filename, whether the sender gave one) of a leaf part."""
    what = f"part {section or '1'} filename"
    raw_name: str | None = None
    local: list[str] = []
    for header, key in (("content-disposition", "filename"), ("content-type", "name")):
        value = _first_raw(part, header)
        if value is None:
            continue
        _, params = parse_params(value)
        raw_name = param_text(params, key, what=what, defects=local, hint=st.hint)
        if raw_name:
            break
    if not raw_name:
        return None, False
    ctype = part.get_content_type()
    for note in local:
        st.defect(note)
    if "\ufffd" in raw_name:
        kept = raw_name.replace("\ufffd", "")
        if raw_name.count("\ufffd") * 5 > len(kept) or not sanitize_filename(kept):
            # Mostly unreadable: the lossy text stays in the defect for staff, the file gets a
            # clean name that keeps its extension.
            name = _fallback_name(section, ctype, raw_name)
            st.defect(f"{what}: could not be decoded ({raw_name!r}); named {name}")
            return name, True
        st.defect(f"{what}: undecodable bytes dropped from {raw_name!r}")
        raw_name = kept
    safe = sanitize_filename(raw_name)
    if safe is None:
        name = _fallback_name(section, ctype, raw_name)
        st.defect(f"{what}: {raw_name!r} is not a usable file name; named {name}")
        return name, True
    if safe != raw_name:
        st.defect(f"{what}: {raw_name!r} sanitised to {safe!r}")
    return safe, True


def _payload_bytes(part: Message, section: str, st: _State) -> bytes:
    payload = getattr(part, "_payload", None)  # the stdlib keeps the undecoded wire text here
    cte = str(part.get("content-transfer-encoding") or "").strip().lower()
    if isinstance(payload, str) and cte == "base64":
        # Fast path: one C call instead of the stdlib's split/join/validate round trip; anything
        # irregular falls through to the stdlib's lenient decoder, which also notes the defect.
        try:
            return binascii.a2b_base64(payload)
        except (binascii.Error, ValueError):
            pass
    before = len(part.defects)
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:  # the stdlib's decoders raise assorted errors on hostile payloads
        st.defect(f"part {section}: payload could not be decoded ({type(exc).__name__}: {exc})")
        return b""
    for d in part.defects[before:]:
        st.defect(f"part {section}: {type(d).__name__}")
    if isinstance(data, bytes):
        return data
    return b""


def _decode_text_part(part: Message, section: str, st: _State) -> str:
    data = _payload_bytes(part, section, st)
    charset = part.get_param("charset")
    label = charset if isinstance(charset, str) else None
    if label is None and part.get_content_subtype() == "html":
        m = re.search(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", data[:4096], re.IGNORECASE)
        if m:
            label = m.group(1).decode("ascii")
    return decode_bytes(
        data, label, what=f"part {section or '1'} {part.get_content_type()}", defects=st.defects
    )


def _add_attachment(
    part: Message, section: str, container: str, filename: str | None, explicit: bool, st: _State
) -> None:
    ctype = part.get_content_type()
    disposition = part.get_content_disposition()
    data = _payload_bytes(part, section, st)
    name = filename or _fallback_name(section, ctype)
    st.attachments.append(
        Attachment(
            filename=name,
            content_type=ctype,
            data=data,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            disposition=disposition,
            container=container,
        )
    )
    if (explicit or disposition == "attachment") and ctype not in _SIGNATURE_TYPES:
        st.substantive += 1
        st.substantive_names.append(name)


def _join(prefix: str, n: int) -> str:
    return f"{prefix}.{n}" if prefix else str(n)


def _leaf(
    part: Message,
    section: str,
    container: str,
    parent_subtype: str | None,
    st: _State,
    bodies: tuple[list[str], list[str]],
) -> None:
    ctype = part.get_content_type()
    maintype = part.get_content_maintype()
    if ctype in _REPORT_PARTS:
        if not container and ctype.endswith("delivery-status"):
            st.delivery_status = True
        return
    if ctype in ("message/partial", "message/external-body"):
        st.defect(f"part {section}: {ctype} part not reassembled or fetched")
        return
    disposition = part.get_content_disposition()
    filename, explicit = _part_filename(part, section, st)
    if ctype in ("text/plain", "text/html") or (maintype == "multipart" and not part.is_multipart()):
        is_html = ctype == "text/html"
        as_body = (
            parent_subtype == "alternative"
            or (not filename and disposition != "attachment")
            or (disposition == "inline" and filename is not None)
            or (maintype == "multipart")
        )
        if maintype == "multipart":
            st.defect(f"part {section or '1'}: {ctype} without usable boundary; read as text")
        if as_body:
            body = _decode_text_part(part, section, st)
            (bodies[1] if is_html else bodies[0]).append(body)
            # A named inline text/plain part is also a file the sender attached (e.g. notes.txt);
            # inline HTML is the message body whatever name it carries.
            if not (disposition == "inline" and filename and not is_html and parent_subtype != "alternative"):
                return
        _add_attachment(part, section, container, filename, explicit, st)
        return
    if maintype == "text" and not filename and disposition != "attachment":
        return  # text/enriched, text/calendar bodies and the like: not files the sender attached
    _add_attachment(part, section, container, filename, explicit, st)


def _walk(msg: Message, st: _State) -> None:
    """Visit every part iteratively (no recursion limit to hit), numbering IMAP sections."""
    # (entity, section, container, depth, parent multipart subtype, is a message root)
    stack: list[tuple[Message, str, str, int, str | None, bool]] = [(msg, "", "", 0, None, True)]
    while stack:
        ent, section, container, depth, parent_subtype, is_root = stack.pop()
        if depth > MAX_DEPTH:
            st.defect(f"part {section}: MIME nesting deeper than {MAX_DEPTH} levels; deeper parts ignored")
            continue
        where = section or "1"
        for d in ent.defects:
            st.defect(f"part {where}: {type(d).__name__}")
        try:
            ctype = ent.get_content_type()
            payload = ent.get_payload()
            if ent.is_multipart() and isinstance(payload, list) and ctype.startswith("multipart/"):
                subtype = ent.get_content_subtype()
                if subtype == "report" and not container:
                    rtype = ent.get_param("report-type")
                    st.report_types.append(rtype.lower() if isinstance(rtype, str) else "")
                children = [p for p in payload if isinstance(p, Message)]
                for i in range(len(children), 0, -1):
                    stack.append((children[i - 1], _join(section, i), container, depth + 1, subtype, False))
                continue
            if (
                not is_root
                and ctype in ("message/rfc822", "message/global")
                and isinstance(payload, list)
                and payload
                and isinstance(payload[0], Message)
            ):
                st.encloses_message = True
                stack.append((payload[0], section, section, depth + 1, None, True))
                continue
            if is_root and ctype in ("message/rfc822", "message/global") and isinstance(payload, list):
                # A message whose whole body is another message: the body is section 1.
                inner = [p for p in payload if isinstance(p, Message)]
                if inner:
                    st.encloses_message = True
                    stack.append((inner[0], _join(section, 1), _join(section, 1), depth + 1, None, True))
                    continue
            leaf_section = _join(section, 1) if is_root else section
            bodies = (st.text, st.html) if not container else ([], [])
            _leaf(ent, leaf_section, container, parent_subtype, st, bodies)
            if container and (bodies[0] or bodies[1]):
                st.nested_bodies.append(("\n".join(bodies[0]), "\n".join(bodies[1])))
        except Exception as exc:
            # One hostile part must not cost the rest of the message; the defect names it.
            st.defect(f"part {where}: skipped after {type(exc).__name__}: {exc}")


# --- headers ----------------------------------------------------------------------------------------


def _collect_headers(msg: Message, st: _State) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for count, (name, value) in enumerate(msg.raw_items(), start=1):
        if count > MAX_HEADERS:
            st.defect(f"more than {MAX_HEADERS} header fields; the rest not kept")
            break
        key = str(name).strip().lower()
        try:
            text = decode_header_value(str(value), what=f"header {key}", defects=st.defects, hint=st.hint)
        except Exception as exc:
            st.defect(f"header {key}: not decodable ({type(exc).__name__})")
            text = unfold(str(value)).encode("utf-8", "replace").decode("utf-8")
        if len(text) > MAX_HEADER_VALUE:
            st.defect(f"header {key}: {len(text)} characters, truncated to {MAX_HEADER_VALUE}")
            text = text[:MAX_HEADER_VALUE]
        headers.setdefault(key, []).append(text)
    return headers


def _newest_received_date(msg: Message, st: _State) -> datetime | None:
    for i, (name, value) in enumerate((k, v) for k, v in msg.raw_items() if k.lower() == "received"):
        del name
        raw = unfold(str(value))
        if ";" not in raw:
            continue
        dt = parse_date(raw.rsplit(";", 1)[1])
        if dt is not None:
            if i:
                st.defect(f"newest {i} Received header(s) carry no readable date; used an older one")
            return dt
    return None


# --- classification -----------------------------------------------------------------------------------

_BOUNCE, _AUTO, _LIST, _SUPPRESS = "bounce", "auto_reply", "list", "suppress"

_AUTO_SUBJECT = re.compile(
    r"^\s*(?:自动回复|[（(【\[]\s*自动回复\s*[)）】\]]|自动答复|自動回覆|自動回復|自动应答|假期自动回复"
    r"|automatic\s+reply|auto(?:matic)?[\s_-]?reply|autoreply|auto[\s-]?respon|autorespons"
    r"|auto\s*:|out\s+of\s+(?:the\s+)?office|abwesenheitsnotiz|réponse\s+automatique"
    r"|respuesta\s+automática|risposta\s+automatica|automatisch\s+antwoord|automatische\s+antwort)",
    re.IGNORECASE,
)
_DSN_SUBJECT = re.compile(
    r"undeliver|undelivered\s+mail|delivery\s+status\s+notification|delivery\s+(?:status|failure|has\s+failed|failed)"
    r"|mail\s+delivery\s+(?:failed|failure|system)|returned\s+mail|failure\s+notice|mail\s+system\s+error"
    r"|non[\s-]?deliver|delayed\s+mail|message\s+not\s+delivered|could\s+not\s+be\s+delivered"
    r"|delivery\s+notification|postmaster\s+notify|系统退信|退信|投递失败|发送失败|无法投递|未能送达|邮件被退回|递送失败|投递延迟|延迟投递",
    re.IGNORECASE,
)
_DSN_BODY = re.compile(
    r"could\s+not\s+be\s+delivered|undeliverable|delivery\s+(?:has\s+)?failed|mailbox\s+(?:is\s+)?full"
    r"|user\s+unknown|no\s+such\s+user|recipient\s+address\s+rejected|退信|无法投递|投递失败|未能成功发送",
    re.IGNORECASE,
)
_DAEMON_LOCALS = frozenset({"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster"})
_NOREPLY_LOCAL = re.compile(r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|noreply)(?:[-_+.].*)?$")
# Vendor auto-reply headers, in their usual spelling for reasons shown to staff. Any value but a
# negative one counts, except X-Autogenerated, which Outlook.com also sets to "Mirror" etc.
_VENDOR_AUTO_HEADERS = {
    "x-autoreply": "X-Autoreply",
    "x-autorespond": "X-Autorespond",
    "x-autoresponder": "X-Autoresponder",
    "x-auto-reply": "X-Auto-Reply",
    "x-autoreply-from": "X-AutoReply-From",
    "x-mail-autoreply": "X-Mail-Autoreply",
    "x-autogenerated": "X-Autogenerated",
    "x-auto-generated": "X-Auto-Generated",
    "x-fc-machinegenerated": "X-FC-MachineGenerated",
    "x-vacation": "X-Vacation",
    "x-qq-auto-reply": "X-QQ-AUTO-REPLY",
    "x-qq-holidayreply": "X-QQ-HolidayReply",
}
_LIST_HEADERS = ("mailing-list", "x-mailing-list", "x-ml-name", "x-mlserver")
_SPELLING = {
    "list-id": "List-Id",
    "list-unsubscribe": "List-Unsubscribe",
    "list-unsubscribe-post": "List-Unsubscribe-Post",
    "x-ml-name": "X-ML-Name",
    "x-mlserver": "X-MLServer",
    "received-spf": "Received-SPF",
    "x-sender": "X-Sender",
}


def _spell(name: str) -> str:
    return _SPELLING.get(name) or "-".join(w.capitalize() for w in name.split("-"))


# Where QQ writes the auto-reply envelope sender (`1234+auto_=...@qq.com`): Sender, Return-Path,
# and the receiving server's SPF / authentication trace of the envelope.
_ENVELOPE_HEADERS = ("sender", "return-path", "x-sender", "received-spf", "authentication-results")


def _local_part(addr: str | None) -> str:
    if not addr:
        return ""
    return addr.rsplit("@", 1)[0].strip().lower() if "@" in addr else addr.strip().lower()


def _short(value: str, limit: int = 120) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


def _header_signals(
    headers: dict[str, list[str]],
    from_addr: str | None,
    return_path: str | None,
    subject: str,
) -> list[tuple[str, str]]:
    """(category, human-readable reason) for every header-level automation signal present."""
    out: list[tuple[str, str]] = []

    def first(name: str) -> str | None:
        vals = headers.get(name)
        return vals[0] if vals else None

    auto_sub = first("auto-submitted")
    if auto_sub is not None:
        token = re.split(r"[;(\s]", auto_sub.strip().lower(), maxsplit=1)[0]
        if token and token != "no":
            out.append((_AUTO, f"Auto-Submitted: {_short(auto_sub)}"))
    for name in ("precedence", "x-precedence"):
        val = first(name)
        if val:
            token = val.strip().lower()
            label = "Precedence" if name == "precedence" else "X-Precedence"
            if token in ("bulk", "junk", "list"):
                out.append((_LIST, f"{label}: {val.strip()}"))
            elif token in ("auto_reply", "auto-reply"):
                out.append((_AUTO, f"{label}: {val.strip()}"))
    for name in sorted(headers):
        if name.startswith("list-") or name in _LIST_HEADERS:
            out.append((_LIST, f"{_spell(name)}: {_short(headers[name][0], 80)}"))
    ars = first("x-auto-response-suppress")
    if ars is not None:
        out.append((_SUPPRESS, f"X-Auto-Response-Suppress: {_short(ars)}"))
    for name, spelling in _VENDOR_AUTO_HEADERS.items():
        val = first(name)
        if val is None or val.strip().lower() in ("no", "false", "0", "off"):
            continue
        if name == "x-autogenerated" and val.strip().lower() != "reply":
            continue
        out.append((_AUTO, f"{spelling}: {_short(val.strip())}"))
    xpost = first("x-post-messageclass")
    if xpost and "autorespond" in xpost.lower():
        out.append((_AUTO, f"X-POST-MessageClass: {_short(xpost)}"))
    for name in _ENVELOPE_HEADERS:
        for val in headers.get(name, []):
            if "+auto_=" in val.lower():
                out.append((_AUTO, f"QQ auto-reply envelope sender (+auto_=) in {_spell(name)}"))
                break
    if _AUTO_SUBJECT.match(subject):
        out.append((_AUTO, f"auto-reply subject: {_short(subject, 60)}"))
    ctype = (first("content-type") or "").strip().lower()
    if ctype.startswith("multipart/report"):
        m = re.search(r"report-type\s*=\s*\"?([\w-]+)", ctype)
        rtype = m.group(1) if m else ""
        cat = _AUTO if rtype == "disposition-notification" else _BOUNCE
        out.append((cat, f"multipart/report; report-type={rtype or '(none)'}"))
    if return_path == "":
        out.append((_SUPPRESS, "empty Return-Path (<>)"))
    local = _local_part(from_addr)
    if local in _DAEMON_LOCALS:
        out.append((_SUPPRESS, f"sender is {local.upper() if local != 'postmaster' else local}"))
    elif _NOREPLY_LOCAL.match(local):
        out.append((_SUPPRESS, f"no-reply sender ({from_addr})"))
    rp_local = _local_part(return_path)
    if rp_local in _DAEMON_LOCALS:
        out.append((_SUPPRESS, f"Return-Path is {return_path}"))
    # A delivery-report subject alone is no signal: a person may well write "关于退信的问题".
    return out


def _classify(
    headers: dict[str, list[str]],
    from_addr: str | None,
    from_name: str | None,
    return_path: str | None,
    subject: str,
    text: str,
    st: _State,
    cloud_links: list[CloudLink],
) -> tuple[MessageClass, list[str]]:
    signals = _header_signals(headers, from_addr, return_path, subject)
    by_cat: dict[str, list[str]] = {}
    for cat, reason in signals:
        by_cat.setdefault(cat, []).append(reason)

    # 1. Structural delivery reports: nothing a person writes looks like this.
    structural: list[str] = []
    for rtype in st.report_types:
        if rtype in ("delivery-status", "feedback-report", "global-delivery-status"):
            structural.append(f"multipart/report; report-type={rtype}")
    if st.delivery_status and not structural:
        structural.append("message/delivery-status part")
    if not structural:
        # A multipart/report whose boundary is broken still says what it is in its header.
        structural = [r for r in by_cat.get(_BOUNCE, [])]
    if structural:
        return MessageClass.bounce, structural + [
            r
            for r in by_cat.get(_SUPPRESS, []) + by_cat.get(_AUTO, [])
            if not r.startswith("multipart/report")
        ]

    auto = list(by_cat.get(_AUTO, []))
    if "disposition-notification" in st.report_types and not any("disposition" in a for a in auto):
        auto.append("multipart/report; report-type=disposition-notification")
    # Auto-Submitted and Precedence only say "a program sent this", which DSNs say too; the
    # others (vendor headers, QQ envelope, auto-reply subjects) say "this is an auto-reply".
    strong_auto = [a for a in auto if not a.startswith(("Auto-Submitted:", "Precedence:", "X-Precedence:"))]

    # 2. Bounces recognised by sender and subject.
    local = _local_part(from_addr)
    name = (from_name or "").lower()
    dsn_subject = bool(_DSN_SUBJECT.search(subject))
    daemonish = local in _DAEMON_LOCALS or "mail delivery" in name
    bounce: list[str] = []
    daemon_sender = local in ("mailer-daemon", "mailerdaemon", "mail-daemon") or "mail delivery s" in name
    postmaster_report = local == "postmaster" and (
        return_path == "" or dsn_subject or "auto-submitted" in headers
    )
    if daemon_sender or postmaster_report:
        bounce.append(f"sender is {from_addr}")
    elif dsn_subject and (return_path == "" or daemonish or _local_part(return_path) in _DAEMON_LOCALS):
        bounce.append(f"delivery-report subject from {from_addr or 'no sender'}")
    elif (daemonish or _NOREPLY_LOCAL.match(local)) and st.encloses_message and _DSN_BODY.search(text[:5000]):
        bounce.append(f"delivery-failure text from {from_addr} enclosing the original message")

    # 3. Auto-replies. A specific auto-reply mark wins over the sender heuristics: Amazon SES
    #    relays a recipient's QQ auto-reply from MAILER-DAEMON with only the subject to tell
    #    (NOTES.md section 1).
    if strong_auto or (auto and not bounce):
        return MessageClass.auto_reply, auto
    if bounce:
        extra = [r for r in by_cat.get(_SUPPRESS, []) + auto if r not in bounce]
        return MessageClass.bounce, bounce + extra

    # 4. Mailing lists and bulk mail. A list manager's List-* headers settle it; a bare Precedence:
    #    bulk/junk on a message carrying files does not — an OA system or a district's mass mailer may
    #    add it to a real submission, and losing an application is worse than parsing a stray
    #    attachment. Acknowledgements stay suppressed by the same header either way.
    list_reasons = by_cat.get(_LIST, [])
    list_manager = any(r.lower().startswith("list-") for r in list_reasons)
    if list_reasons and (list_manager or not st.substantive):
        return MessageClass.list, list_reasons

    # 5. Submissions carry files or cloud links.
    if st.substantive or cloud_links:
        reasons = []
        if st.substantive:
            names = st.substantive_names[:5] + (["…"] if st.substantive > 5 else [])
            reasons.append(f"{st.substantive} attachment(s): {', '.join(names)}")
        if cloud_links:
            providers = ", ".join(sorted({c.provider for c in cloud_links}))
            reasons.append(f"{len(cloud_links)} cloud-attachment link(s) ({providers})")
        reasons += [f"list/bulk signal, kept as a submission for its files: {r}" for r in by_cat.get(_LIST, [])]
        return MessageClass.submission, reasons
    if st.attachments:
        n = len(st.attachments)
        return MessageClass.other, [f"only inline/unnamed parts ({n}), no named attachment or cloud link"]
    return MessageClass.other, ["no attachment or cloud link"]


def auto_generated_signals(msg: ParsedMessage, *, own_addresses: Iterable[str] = ()) -> list[str]:
    """Every SPEC 8 acknowledgement-suppression signal the message shows; empty means "a person wrote it".

    Header signals are read from `msg.headers`; a message classed bounce or auto_reply also lists
    the reasons of that class (e.g. a delivery-status part deep in the MIME tree). Pass the intake
    mailbox's own address(es) as `own_addresses` to catch mail it sent to itself.
    """
    out: list[str] = []
    for _cat, reason in _header_signals(msg.headers, msg.from_addr, msg.return_path, msg.subject):
        if reason not in out:
            out.append(reason)
    if msg.msg_class in (MessageClass.bounce, MessageClass.auto_reply, MessageClass.list):
        for reason in msg.class_reasons:
            if reason not in out:
                out.append(reason)
    own = {a.strip().lower() for a in own_addresses if a}
    if msg.from_addr and msg.from_addr.lower() in own:
        out.append(f"sent by the intake mailbox itself ({msg.from_addr})")
    return out


# --- entry point ------------------------------------------------------------------------------------


def parse_message(raw: bytes, *, internaldate: datetime | None = None) -> ParsedMessage:
    """Parse one raw message. `internaldate` is the IMAP INTERNALDATE when fetched from a mailbox.

    Raises MessageParseError only when the bytes are not a parseable message at all.
    """
    st = _State()
    data = _prepare(raw, st.defects)
    msg = _parse_tree(data, st.defects)
    if not msg.keys():
        if not _HEADER_LINE.search(data[:4096]) and b"\x00" in data[:65536]:
            raise MessageParseError("not an email message: binary data with no header lines")
        st.defect("no header fields could be read; the whole input was taken as the body")

    st.hint = _charset_hint(msg)
    headers = _collect_headers(msg, st)

    def raw1(name: str) -> str | None:
        return _first_raw(msg, name)

    def addresses(name: str, what: str) -> list[tuple[str, str]]:
        return parse_addresses(raw1(name), what=what, defects=st.defects, hint=st.hint)

    froms = addresses("from", "From")
    from_name, from_addr = froms[0] if froms else (None, None)
    reply_to = [a for _, a in addresses("reply-to", "Reply-To")]
    to = [a for _, a in addresses("to", "To")]
    cc = [a for _, a in addresses("cc", "Cc")]
    return_path = parse_return_path(raw1("return-path"))
    subject = headers.get("subject", [""])[0]
    ids = parse_msg_ids(raw1("message-id"))
    message_id = ids[0] if ids else None
    in_reply = parse_msg_ids(raw1("in-reply-to"))
    references = parse_msg_ids(raw1("references"))

    date_raw = raw1("date")
    sent_at = parse_date(date_raw)
    if date_raw is not None and sent_at is None:
        st.defect(f"Date header not readable: {_short(unfold(date_raw).strip(), 80)!r}")
    if bare_cst(date_raw):
        st.defect("Date names its zone only as 'CST' (read as US Central, UTC-6, per RFC 5322)")

    received_at: datetime | None
    received_source: str | None
    if internaldate is not None:
        received_at, naive = ensure_aware(internaldate)
        received_source = "internaldate"
        if naive:
            st.defect("internaldate had no time zone; taken as this machine's local time")
    else:
        received_at = _newest_received_date(msg, st)
        received_source = "received" if received_at is not None else None
        if received_at is None and sent_at is not None:
            received_at, received_source = sent_at, "date"

    _walk(msg, st)
    text = "\n".join(st.text)
    html = "\n".join(st.html)
    try:
        cloud_links = find_cloud_links(text, html)
        for ntext, nhtml in st.nested_bodies:
            known = {c.url for c in cloud_links}
            cloud_links.extend(c for c in find_cloud_links(ntext, nhtml) if c.url not in known)
    except Exception as exc:  # a scan failure must not lose the message; staff see the defect
        st.defect(f"cloud-link scan failed: {type(exc).__name__}: {exc}")
        cloud_links = []

    msg_class, reasons = _classify(headers, from_addr, from_name, return_path, subject, text, st, cloud_links)
    return ParsedMessage(
        message_id=message_id,
        from_addr=from_addr or None,
        from_name=from_name or None,
        reply_to=reply_to,
        return_path=return_path,
        to=to,
        cc=cc,
        subject=subject,
        sent_at=sent_at,
        received_at=received_at,
        received_source=received_source,
        text=text,
        html=html,
        attachments=st.attachments,
        cloud_links=cloud_links,
        msg_class=msg_class,
        class_reasons=reasons,
        headers=headers,
        in_reply_to=in_reply[0] if in_reply else None,
        references=references,
        defects=st.defects,
    )
