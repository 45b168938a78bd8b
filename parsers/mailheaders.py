"""Decode mail headers, parameters, filenames, addresses and dates the way Chinese clients write them."""

from __future__ import annotations

import binascii
import codecs
import email.utils
import re
import unicodedata
import urllib.parse
from datetime import UTC, datetime

# GB2312 and GBK labels are routinely put on text holding GBK-only or GB18030 characters (镕, 喆,
# 堃 ...). GB18030 is a strict superset of both, so decoding with it never loses what the narrower
# codec would have read. The other aliases map labels Python does not know, or knows too narrowly,
# to the superset that real clients mean.
_CHARSET_ALIASES: dict[str, str] = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "windows-936": "gb18030",
    "x-cp936": "gb18030",
    "euc-cn": "gb18030",
    "x-euc-cn": "gb18030",
    "csgb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "gb_2312": "gb18030",
    "chinese": "gb18030",
    "iso-ir-58": "gb18030",
    "gb18030": "gb18030",
    "gb-18030": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "x-windows-949": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    # Mail labelled Latin-1 is in practice Windows-1252 (the WHATWG rule browsers follow).
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "ansi_x3.4-1968": "utf-8",
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
}
# Labels that say "I do not know": treat as undeclared and guess.
_UNKNOWN_CHARSETS = frozenset(
    {"", "unknown-8bit", "x-unknown", "unknown", "8bit", "default", "none", "x-user-defined"}
)
# When a declared charset fails (or none was declared), these are tried in order: UTF-8 first because
# it almost never decodes non-UTF-8 text by accident, then GB18030 for this mailbox's audience.
_GUESSES = ("utf-8", "gb18030")


def normalize_charset(label: str | None) -> str | None:
    """Map a MIME charset label to the Python codec that should decode it, or None when unknown."""
    if label is None:
        return None
    cs = label.strip().strip("\"'").lower()
    cs = cs.split("*", 1)[0]  # RFC 2231 language suffix: "gb2312*zh"
    if cs in _UNKNOWN_CHARSETS:
        return None
    if cs in _CHARSET_ALIASES:
        return _CHARSET_ALIASES[cs]
    try:
        info = codecs.lookup(cs)
    except (LookupError, ValueError):
        return None
    # rot13, base64, zlib ... are codecs too, but not text encodings: bytes.decode refuses them.
    if not getattr(info, "_is_text_encoding", True):
        return None
    return cs


def decode_bytes(
    data: bytes, charset: str | None, *, what: str, defects: list[str], hint: str | None = None
) -> str:
    """Decode `data` declared as `charset`, never dropping characters silently.

    Tries the declared charset (normalised), then UTF-8, then `hint` (the charset the message's
    text declares, for undeclared header bytes), then GB18030; only if all fail decodes with U+FFFD
    replacement characters and says so in `defects`.
    """
    declared = normalize_charset(charset)
    tried: list[str] = []
    for codec in (declared, _GUESSES[0], normalize_charset(hint), *_GUESSES[1:]):
        if codec is None or codec in tried:
            continue
        tried.append(codec)
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        if declared is not None and codec != declared:
            defects.append(f"{what}: not valid {charset}; decoded as {codec}")
        elif declared is None and charset and charset.strip().lower() not in _UNKNOWN_CHARSETS:
            defects.append(f"{what}: unknown charset {charset!r}; decoded as {codec}")
        return text
    codec = declared or "utf-8"
    defects.append(f"{what}: bytes valid in none of {', '.join(tried)}; undecodable bytes shown as U+FFFD")
    return data.decode(codec, errors="replace")


def raw_to_bytes(value: str) -> bytes:
    """The original octets of a header value the stdlib parser kept as str with surrogate escapes."""
    return value.encode("utf-8", "surrogateescape")


def unfold(value: str) -> str:
    """RFC 5322 unfolding: a line break followed by white space is removed, the white space kept."""
    if "\n" not in value and "\r" not in value:
        return value
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", "")


def decode_raw_text(value: str, *, what: str, defects: list[str], hint: str | None = None) -> str:
    """Decode header text that may hold raw 8-bit octets (no encoded words)."""
    if value.isascii():
        return value
    return decode_bytes(raw_to_bytes(value), None, what=what, defects=defects, hint=hint)


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")


def _decode_word_payload(enc: str, text: str) -> bytes:
    if enc in "bB":
        text = re.sub(r"[^A-Za-z0-9+/]", "", text)
        if len(text) % 4 == 1:  # a stray last character cannot be decoded; drop it
            text = text[:-1]
        text += "=" * (-len(text) % 4)
        return binascii.a2b_base64(text)
    return binascii.a2b_qp(text.encode("ascii", "surrogateescape"), header=True)


def decode_rfc2047(value: str, *, what: str, defects: list[str], hint: str | None = None) -> str:
    """Decode RFC 2047 encoded words anywhere in `value`, also where RFC 2047 forbids them.

    Chinese clients put encoded words inside quoted strings and split one character's bytes across
    two adjacent words; adjacent words in the same charset are therefore joined as bytes before
    decoding. Text between words that is only white space is dropped (RFC 2047 section 6.2); other
    text, including raw 8-bit octets, is decoded on its own.
    """
    value = unfold(value)
    if "=?" not in value:
        return decode_raw_text(value, what=what, defects=defects, hint=hint)
    pieces: list[str] = []
    run_charset: str | None = None
    run_label = ""
    run_bytes = bytearray()
    pos = 0

    def flush() -> None:
        nonlocal run_charset, run_label
        if run_label:
            pieces.append(decode_bytes(bytes(run_bytes), run_label, what=what, defects=defects))
        run_bytes.clear()
        run_charset = None
        run_label = ""

    for m in _ENCODED_WORD.finditer(value):
        between = value[pos : m.start()]
        if between and not (run_label and between.strip(" \t") == ""):
            flush()
            pieces.append(decode_raw_text(between, what=what, defects=defects, hint=hint))
        label, enc, payload = m.group(1), m.group(2), m.group(3)
        try:
            data = _decode_word_payload(enc, payload)
        except (binascii.Error, ValueError) as exc:
            flush()
            defects.append(f"{what}: undecodable encoded word {m.group(0)[:60]!r} ({exc})")
            pieces.append(m.group(0))
            pos = m.end()
            continue
        codec = normalize_charset(label) or label.lower()
        if run_label and codec != run_charset:
            flush()
        if not run_label:
            run_charset = codec
            run_label = label
        run_bytes.extend(data)
        pos = m.end()
    flush()
    tail = value[pos:]
    if tail:
        pieces.append(decode_raw_text(tail, what=what, defects=defects, hint=hint))
    return "".join(pieces)


def decode_header_value(value: str, *, what: str, defects: list[str], hint: str | None = None) -> str:
    """A header's raw value (as kept by the stdlib parser) decoded to display text, one line."""
    text = decode_rfc2047(value, what=what, defects=defects, hint=hint)
    if "\r" in text or "\n" in text:
        text = text.replace("\r", " ").replace("\n", " ")
    return text.strip()


# --- addresses ---------------------------------------------------------------------------------

MAX_ADDRESS_HEADER = 16_384
_ADDR_FALLBACK = re.compile(r"[^\s<>,;:\"()\[\]]+@[^\s<>,;:\"()\[\]]+")


def parse_addresses(
    value: str | None, *, what: str, defects: list[str], hint: str | None = None
) -> list[tuple[str, str]]:
    """(decoded display name, address) pairs of an address header's raw value.

    The raw value is split before encoded words are decoded, so a comma inside a decoded name cannot
    split an address. Addresses are lower-cased: every mailbox provider this intake meets treats
    them case-insensitively, and per-sender rate limits need one spelling.
    """
    if not value:
        return []
    raw = unfold(value)
    pairs: list[tuple[str, str]] = []
    if len(raw) > MAX_ADDRESS_HEADER:
        # The stdlib address parser recurses once per address: a hostile header of thousands of
        # entries exhausts the stack. Past this size only the bare addresses are picked out.
        defects.append(f"{what}: {len(raw)} characters; addresses picked out without display names")
    else:
        try:
            pairs = email.utils.getaddresses([raw])
        except (ValueError, TypeError, IndexError, RecursionError) as exc:
            defects.append(f"{what}: address list not parseable ({type(exc).__name__})")
    if not any(addr for _, addr in pairs):
        found = _ADDR_FALLBACK.findall(raw)
        if found:
            pairs = [("", a) for a in found]
        elif raw.strip() and "@" not in raw and "<" not in raw and raw.strip().count(" ") == 0:
            # A bare local part such as "MAILER-DAEMON": still worth keeping for bounce detection.
            pairs = [("", raw.strip())]
    out: list[tuple[str, str]] = []
    for name, addr in pairs:
        if not addr and not name:
            continue
        dname = decode_header_value(name, what=what, defects=defects, hint=hint) if name else ""
        daddr = decode_raw_text(addr.strip(), what=what, defects=defects).lower()
        out.append((dname, daddr))
    return out


_ANGLE_ID = re.compile(r"<[^<>\s]*>")


def parse_msg_ids(value: str | None) -> list[str]:
    """Message-ID tokens (`<...>`) of an In-Reply-To / References / Message-ID value."""
    if not value:
        return []
    raw = unfold(value)
    ids = _ANGLE_ID.findall(raw)
    if ids:
        return ids
    bare = raw.strip()
    return [bare] if bare and " " not in bare else []


def parse_return_path(value: str | None) -> str | None:
    """The Return-Path address: None when absent, "" when present but empty (`<>`): a bounce mark."""
    if value is None:
        return None
    raw = unfold(value).strip()
    m = re.search(r"<([^<>]*)>", raw)
    addr = m.group(1) if m else raw
    return addr.strip().lower()


# --- MIME parameters and filenames -------------------------------------------------------------


def parse_params(value: str) -> tuple[str, list[tuple[str, str]]]:
    """Split a Content-Type / Content-Disposition raw value into its main value and parameters.

    Hand-written rather than the stdlib's because real messages carry unterminated quotes, unquoted
    values with spaces and raw 8-bit bytes; values keep their surrogate-escaped octets.
    """
    value = unfold(value)
    n = len(value)
    items: list[str] = []
    buf: list[str] = []
    i = 0
    in_quote = False
    while i < n:
        ch = value[i]
        if in_quote:
            if ch == "\\" and i + 1 < n and value[i + 1] in '"\\':
                buf.append(ch)
                buf.append(value[i + 1])
                i += 2
                continue
            if ch == '"':
                in_quote = False
            buf.append(ch)
        elif ch == '"':
            in_quote = True
            buf.append(ch)
        elif ch == ";":
            items.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    items.append("".join(buf))
    main = items[0].strip().lower()
    params: list[tuple[str, str]] = []
    for item in items[1:]:
        if "=" not in item:
            continue
        name, _, val = item.partition("=")
        name = name.strip().lower()
        val = val.strip()
        if val.startswith('"'):
            val = val[1:]
            if val.endswith('"') and not val.endswith('\\"'):
                val = val[:-1]
            val = re.sub(r'\\(["\\])', r"\1", val)
        if name:
            params.append((name, val))
    return main, params


_RFC2231_NAME = re.compile(r"^([^*]+)\*(?:(\d+)\*?)?$")


def _rfc2231_value(params: list[tuple[str, str]], key: str, *, what: str, defects: list[str]) -> str | None:
    """Collect and decode RFC 2231 `key*` / `key*0*` ... segments; None when there are none."""
    segments: dict[int, tuple[bool, str]] = {}
    for name, val in params:
        m = _RFC2231_NAME.match(name)
        if not m or m.group(1) != key:
            continue
        num = int(m.group(2)) if m.group(2) is not None else 0
        encoded = name.endswith("*")
        segments.setdefault(num, (encoded, val))
    if not segments:
        return None
    charset: str | None = None
    data = bytearray()
    for idx, num in enumerate(sorted(segments)):
        encoded, val = segments[num]
        if idx == 0 and encoded and val.count("'") >= 2:
            charset, _lang, val = val.split("'", 2)
        if encoded:
            data.extend(urllib.parse.unquote_to_bytes(val.encode("utf-8", "surrogateescape")))
        else:
            data.extend(raw_to_bytes(val))
    text = decode_bytes(bytes(data), charset or None, what=what, defects=defects)
    if "=?" in text:  # some clients put RFC 2047 words inside RFC 2231 values too
        text = decode_rfc2047(text, what=what, defects=defects)
    return text


_PERCENT_UTF8 = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def decode_param_text(val: str, *, what: str, defects: list[str], hint: str | None = None) -> str:
    """Decode a plain (non-RFC 2231) parameter value: encoded words, raw octets, URL escapes."""
    if "=?" in val:
        return decode_rfc2047(val, what=what, defects=defects, hint=hint)
    if not val.isascii():
        return decode_bytes(raw_to_bytes(val), None, what=what, defects=defects, hint=hint)
    if "%" in val and re.search(r"%[89A-Fa-f][0-9A-Fa-f]", val):
        # Some web mailers percent-encode UTF-8 names without RFC 2231 marking.
        try:
            decoded = urllib.parse.unquote_to_bytes(val).decode("utf-8")
        except UnicodeDecodeError:
            return val
        if not decoded.isascii():
            return decoded
    return val


def param_text(
    params: list[tuple[str, str]], key: str, *, what: str, defects: list[str], hint: str | None = None
) -> str | None:
    """Decoded value of parameter `key`: RFC 2231 form preferred (RFC 6266), else the plain form."""
    star = _rfc2231_value(params, key, what=what, defects=defects)
    if star is not None:
        return star
    for name, val in params:
        if name == key:
            return decode_param_text(val, what=what, defects=defects, hint=hint)
    return None


# Bidirectional overrides can disguise an extension ("申报书\u202excod.exe"); zero-width marks
# only hide differences between names staff compare.
_INVISIBLE = frozenset(
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)
MAX_FILENAME_CHARS = 200


def sanitize_filename(name: str) -> str | None:
    """A display/storage-safe file name: last path component, no control or bidi characters, NFC.

    Chinese and other letters are kept. Returns None when nothing usable is left.
    """
    name = unicodedata.normalize("NFC", name)
    name = "".join(
        " " if ch in "\t\r\n" else ch
        for ch in name
        if ch in "\t\r\n" or (unicodedata.category(ch) != "Cc" and ch not in _INVISIBLE)
    )
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"\s+", " ", name).strip().lstrip(".").strip()
    if not name or name in {".", ".."}:
        return None
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: MAX_FILENAME_CHARS - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_FILENAME_CHARS]
    return name


# --- dates ---------------------------------------------------------------------------------------


def parse_date(value: str | None) -> datetime | None:
    """A tz-aware datetime from an RFC 5322 date (lenient), or None when it cannot be read.

    Dates without a usable zone (`-0000`, none at all) are taken as UTC, as RFC 5322 says `-0000`
    means: the time is UTC and the sender's local offset is unknown.
    """
    if not value:
        return None
    text = unfold(value).strip()
    if not text.isascii():
        text = text.encode("ascii", "ignore").decode("ascii")
    dt: datetime | None
    try:
        dt = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        dt = None
    if dt is None:
        iso = re.sub(r"\s*\([^)]*\)\s*$", "", text).replace("/", "-")
        try:
            dt = datetime.fromisoformat(iso)
        except ValueError:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    # Years outside this window are typos or attacks, not mail: treat as unreadable.
    if not 1980 <= dt.year <= 2200:
        return None
    return dt


def bare_cst(value: str | None) -> bool:
    """True when a date names its zone only as `CST` (RFC 5322: US Central; Chinese servers mean +0800)."""
    return bool(value) and re.search(r"\d\d:\d\d(?::\d\d)?\s+CST\b", value or "") is not None


def ensure_aware(dt: datetime) -> tuple[datetime, bool]:
    """(aware datetime, was_naive). A naive value is read as the machine's local time, the way
    imapclient's normalised INTERNALDATE values are produced."""
    if dt.tzinfo is not None and dt.tzinfo.utcoffset(dt) is not None:
        return dt, False
    return dt.astimezone(), True


__all__ = [
    "bare_cst",
    "decode_bytes",
    "decode_header_value",
    "decode_param_text",
    "decode_raw_text",
    "decode_rfc2047",
    "ensure_aware",
    "normalize_charset",
    "param_text",
    "parse_addresses",
    "parse_date",
    "parse_msg_ids",
    "parse_params",
    "parse_return_path",
    "sanitize_filename",
    "unfold",
]
