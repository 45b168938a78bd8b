"""Hostile input, fuzzed: hypothesis mutates real seeds into the message, document, archive and paper-log parsers."""

# Each property runs a fixed, derandomized set of examples so CI is reproducible and each test stays under
# ~20 s. For a long random run (examples kept in .hypothesis/fuzz, failures replayed first next time):
#
#     INTAKE_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_fuzz_properties.py -p no:cacheprovider
#
# The coverage-guided fuzzers over the same targets are in bench/fuzz/ (README there).

from __future__ import annotations

import base64
import io
import os
import re
import signal
import socket
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from parsers.archives import ArchiveLimits, ArchiveResult, read_archive
from parsers.cloudlinks import html_to_text
from parsers.documents import ParseOptions, parse_document
from parsers.images import ImageError, load_image
from parsers.mail import MessageParseError, parse_message
from parsers.sniff import FileType
from parsers.types import ParsedDocument, ParsedMessage
from parsers.word import WordError, read_docx
from review.paper import HEADINGS, ImportResult, read_log
from tests import formgen, mailgen, scangen

ROOT = Path(__file__).resolve().parents[1]
FUZZ_DATA = Path(__file__).parent / "data" / "fuzz"
TZ = ZoneInfo("Asia/Shanghai")
DEADLINE = datetime(2026, 7, 7, 17, 0, tzinfo=TZ)
LONG = int(os.environ.get("INTAKE_FUZZ_EXAMPLES", "0") or 0)
# In-process parsing without OCR and LibreOffice (the sandbox adds only limits around the same code).
OPTIONS = ParseOptions(soffice=None, ocr=False, seal=True)
# Far below the daemon's per-document limit (120 s): anything slower than this on a small input is a hang.
EXAMPLE_LIMIT_S = 30.0


def fuzz(n: int) -> settings:
    """n derandomized examples in CI; INTAKE_FUZZ_EXAMPLES random ones, with a saved database, for long runs."""
    if LONG:
        return settings(
            max_examples=LONG,
            deadline=None,
            derandomize=False,
            database=DirectoryBasedExampleDatabase(str(ROOT / ".hypothesis" / "fuzz")),
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )
    return settings(
        max_examples=n, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )


class NetworkUsed(BaseException):
    """A parser tried to open a socket (BaseException: parsers catch Exception and would hide it)."""


class Hang(BaseException):
    """One example ran past EXAMPLE_LIMIT_S."""


@pytest.fixture(autouse=True, scope="module")
def no_network() -> Iterator[None]:
    """Socket creation fails for the whole module: nothing here may fetch a DTD, an image or a link."""

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise NetworkUsed("a parser tried to create a socket")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "socket", refuse)
        mp.setattr(socket, "create_connection", refuse)
        mp.setattr(socket, "getaddrinfo", refuse)
        yield


@contextmanager
def time_limit(seconds: float = EXAMPLE_LIMIT_S) -> Iterator[None]:
    """Raise Hang in this (main) thread once `seconds` have passed (checked between Python bytecodes)."""

    def on_alarm(*_: Any) -> None:
        raise Hang(f"example ran longer than {seconds:g} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_the_network_is_really_off_in_this_module() -> None:
    with pytest.raises(NetworkUsed):
        socket.create_connection(("127.0.0.1", 9))
    with pytest.raises(NetworkUsed):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)


# -- contracts checked on every example -------------------------------------------------------------------

_UNSAFE_NAME = set("/\\\x00\r\n")


def check_message(raw: bytes) -> ParsedMessage | None:
    """parse_message returns a ParsedMessage or raises MessageParseError with a reason; nothing else."""
    with time_limit():
        try:
            msg = parse_message(raw)
        except MessageParseError as exc:
            assert exc.reason
            return None
    assert isinstance(msg, ParsedMessage)
    for a in msg.attachments:
        assert a.filename and not (_UNSAFE_NAME & set(a.filename)) and not a.filename.startswith("."), a.filename
        assert a.size == len(a.data)
    assert all(isinstance(d, str) for d in msg.defects)
    return msg


def check_document(
    data: bytes, filename: str, options: ParseOptions = OPTIONS, *, expected_errors_only: bool = True
) -> ParsedDocument:
    """parse_document never raises; every problem is unreadable_attachment and names its file (members too).

    With `expected_errors_only`, no reason may come from the dispatcher's catch-all ("could not be parsed
    (SomeError: …)"): that is a library exception the format's own parser did not expect and word for staff.
    """
    with time_limit():
        doc = parse_document(data, filename, options=options)

    def walk(d: ParsedDocument) -> None:
        assert isinstance(d, ParsedDocument)
        name = d.member_path or d.filename
        for p in d.problems:
            assert p.code == "unreadable_attachment" and name in p.detail, (name, p)
            assert not (expected_errors_only and ": could not be parsed (" in p.detail), p.detail
        for m in d.members:
            assert m.member_path.startswith(d.member_path or ""), (d.member_path, m.member_path)
            walk(m)

    walk(doc)
    return doc


def check_archive(data: bytes, ftype: FileType, limits: ArchiveLimits | None = None) -> ArchiveResult:
    """read_archive never raises, stays within its limits and gives clean relative member paths."""
    limits = limits or ArchiveLimits()
    with time_limit():
        res = read_archive(data, ftype, limits)
    assert isinstance(res, ArchiveResult)
    assert len(res.members) <= limits.max_members
    assert sum(len(m.data or b"") for m in res.members) <= limits.max_total_size
    for m in res.members:
        parts = m.path.split("/")
        assert m.path and ".." not in parts and "" not in parts and "." not in parts, m.path
        assert (m.data is None) != (m.problem is None), m
    return res


def check_docx(data: bytes) -> None:
    """read_docx returns a Layout or raises WordError (with a reason for staff), nothing else."""
    with time_limit():
        try:
            read_docx(data)
        except WordError as exc:
            assert exc.reason


_COLUMN = re.compile(r"[A-Z]{1,3}")


def check_paper(data: bytes, suffix: str, tmp: Path) -> ImportResult:
    """read_log never raises; every rejected cell names its row and column; a file error imports nothing."""
    path = tmp / f"log{suffix}"
    path.write_bytes(data)
    with time_limit():
        res = read_log(path, tz=TZ, deadline=DEADLINE)
    assert isinstance(res, ImportResult)
    for e in res.errors:
        assert e.row >= 1 and _COLUMN.fullmatch(e.column) and e.heading and e.message, e
        assert f"row {e.row}, column {e.column}" in str(e)
    if res.file_error is not None:
        assert not res.entries
    for v in res.entries:
        assert v["received_at"].tzinfo is not None and v["org_name"] and 1 <= v["copies"] <= 99
    return res


# -- byte-level mutation of seeds -------------------------------------------------------------------------

_INTERESTING = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0A, 0x0D, 0x22, 0x3C, 0x3E, 0x2F, 0x3D, 0x3F, 0x25]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes], tokens: list[bytes], max_ops: int = 6) -> bytes:
    """A seed after a few byte flips, sets, truncations, insertions of tokens, deletions and splices."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(("flip", "set", "truncate", "insert", "delete", "splice", "repeat")))
        n = len(data)
        pos = draw(st.integers(0, max(n - 1, 0)))
        if op == "flip" and n:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and n:
            data[pos] = draw(st.sampled_from(_INTERESTING))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.one_of(st.sampled_from(tokens), st.binary(min_size=1, max_size=32)))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 512))]
        elif op == "splice":
            other = draw(st.sampled_from(seeds))
            a = draw(st.integers(0, max(len(other) - 1, 0)))
            data[pos:pos] = other[a : a + draw(st.integers(1, 4096))]
        else:
            k = draw(st.integers(1, 64))
            data[pos:pos] = bytes(data[pos : pos + k]) * draw(st.integers(2, 40))
    return bytes(data)


# == regressions: inputs the fuzzers found, each with the fix it needed =====================================


def _deflated_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return buf.getvalue()


def _corrupt_member_stream(raw: bytes, name: str) -> bytes:
    """The zip with the first bytes of `name`'s compressed stream overwritten (headers and CRC untouched)."""
    out = bytearray(raw)
    i = out.find(b"PK\x03\x04" + raw[4:6])
    while i >= 0:
        nlen, xlen = struct.unpack_from("<HH", out, i + 26)
        if out[i + 30 : i + 30 + nlen] == name.encode():
            start = i + 30 + nlen + xlen
            out[start : start + 4] = b"\xff\xff\xff\xff"  # deflate block type 3: "invalid block type"
            return bytes(out)
        i = out.find(b"PK\x03\x04", i + 4)
    raise AssertionError(f"{name} not in zip")


def test_regression_docx_with_a_damaged_deflate_stream_is_a_word_error() -> None:
    # Found by bench/fuzz archive target: read_docx let zlib.error ("invalid block type", "invalid distance
    # too far back") out of _read_part, so the dispatcher's catch-all reported "could not be parsed (error: …)".
    form = formgen.make_form("form_scenario", 0).data
    parts = {n: zipfile.ZipFile(io.BytesIO(form)).read(n) for n in zipfile.ZipFile(io.BytesIO(form)).namelist()}
    for victim in ("_rels/.rels", "word/document.xml"):
        bad = _corrupt_member_stream(_deflated_zip(parts), victim)
        with pytest.raises(WordError, match=rf"damaged \.docx: cannot unpack {re.escape(victim)}"):
            read_docx(bad)
        doc = check_document(bad, "附件1_申报书.docx")
        assert doc.unreadable and "cannot unpack" in doc.problems[0].detail
        assert "could not be parsed" not in doc.problems[0].detail


def test_regression_docx_whose_directory_asks_for_an_unknown_zip_version_is_a_word_error() -> None:
    # Found by bench/fuzz archive target: zipfile.ZipFile() raises NotImplementedError("zip file version 25.5")
    # for a central directory entry whose "version needed to extract" is above 6.3; read_docx let it out.
    raw = bytearray(formgen.make_form("form_model", 0).data)
    cd = raw.find(b"PK\x01\x02")
    struct.pack_into("<H", raw, cd + 6, 255)  # version needed to extract: 25.5
    with pytest.raises(WordError, match="not a readable ZIP package"):
        read_docx(bytes(raw))
    doc = check_document(bytes(raw), "附件2_申报书.docx")
    assert doc.unreadable and "could not be parsed" not in doc.problems[0].detail


def _paper_xlsx(rows: list[list[Any]], patch: Callable[[bytes], bytes] | None = None) -> bytes:
    """A paper log: the SPEC headings then `rows`; `patch` edits the sheet XML (values openpyxl cannot write)."""
    wb = openpyxl.Workbook()
    ws = wb.worksheets[0]
    ws.append(list(HEADINGS))
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    if patch is None:
        return buf.getvalue()
    src = zipfile.ZipFile(buf)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            body = src.read(info.filename)
            zf.writestr(info.filename, patch(body) if info.filename == "xl/worksheets/sheet1.xml" else body)
    return out.getvalue()


_GOOD_ROW = [
    "2026/7/7 16:30", "武汉光谷智能科技有限公司", "城市内涝智能预警系统", "场景", "申报书", 2, "江岸区", "张敏", "",
]  # fmt: skip


_PLACEHOLDER = 424242


def _raw_value(xml_value: bytes) -> Callable[[bytes], bytes]:
    """A sheet patch putting `xml_value` where the placeholder number was written."""
    return lambda xml: xml.replace(b"<v>%d</v>" % _PLACEHOLDER, b"<v>" + xml_value + b"</v>")


@pytest.mark.parametrize(
    ("cell", "xml_value"),
    [
        ("0001-01-01T00:00+14:00", None),
        ("9999-12-31T23:59-10:00", None),
        ("0001-01-01 00:00", None),
        ("9999年12月31日 23:59", None),
        (_PLACEHOLDER, b"1" + b"0" * 400),  # an integer too large for a float
    ],
    ids=["year1+14", "year9999-10", "year1-naive", "year9999-cn", "int400digits"],
)
def test_regression_paper_dates_at_the_ends_of_the_calendar_are_cell_errors(
    cell: Any, xml_value: bytes | None, tmp_path: Path
) -> None:
    # Found by the paper property below: converting such a 接收时间 between zones raised OverflowError out of
    # read_log (in the deadline check's message, or in the row fingerprint without a deadline), and so did
    # float() of an integer of hundreds of digits.
    data = _paper_xlsx([[cell, *_GOOD_ROW[1:]], _GOOD_ROW], _raw_value(xml_value) if xml_value else None)
    res = check_paper(data, ".xlsx", tmp_path)
    assert [(e.row, e.column, e.heading) for e in res.errors] == [(2, "A", "接收时间")]
    path = tmp_path / "again.xlsx"
    path.write_bytes(data)
    no_deadline = read_log(path, tz=TZ)
    assert [(e.row, e.column) for e in no_deadline.errors] == [(2, "A")], no_deadline.errors


@pytest.mark.parametrize("column", range(len(HEADINGS)), ids=list(HEADINGS))
@pytest.mark.parametrize("xml_value", [b"1E999", b"-1E999"], ids=["inf", "-inf"])
def test_regression_paper_infinite_numbers_in_any_column(column: int, xml_value: bytes, tmp_path: Path) -> None:
    # Found by the paper property below: openpyxl reads <v>1E999</v> as float('inf'); `value == int(value)` in
    # the text columns and `value != int(value)` in 份数 raised OverflowError out of read_log.
    row: list[Any] = list(_GOOD_ROW)
    row[column] = _PLACEHOLDER
    res = check_paper(_paper_xlsx([row], _raw_value(xml_value)), ".xlsx", tmp_path)
    letter = "ABCDEFGHI"[column]
    if HEADINGS[column] in ("接收时间", "份数", "材料类型", "方向"):
        assert [(e.row, e.column, e.heading) for e in res.errors] == [(2, letter, HEADINGS[column])]
    else:
        assert not res.errors and len(res.entries) == 1


def _doctype_sheet(encoding: str, padding: int) -> Callable[[bytes], bytes]:
    """A sheet patch declaring an internal and an external entity (after `padding` bytes of comment) and using
    them in 申报单位, re-encoded in `encoding`."""

    def patch(xml: bytes) -> bytes:
        dtd = (
            b"<!--" + b"x" * padding + b"-->"
            b'<!DOCTYPE worksheet [<!ENTITY e "EXPANDED-ENTITY"><!ENTITY x SYSTEM "file:///etc/hostname">]>'
        )
        body = xml.replace(b"<v>%d</v>" % _PLACEHOLDER, b"<v>1</v>")
        body = body.replace("武汉光谷智能科技有限公司".encode(), b"&e;")
        text = (b'<?xml version="1.0" encoding="%s"?>' % encoding.upper().encode() + dtd + body).decode()
        return text.encode(encoding)

    return patch


@pytest.mark.parametrize(
    ("encoding", "padding"), [("utf-8", 0), ("utf-8", 5000), ("utf-16", 0)], ids=["plain", "after-5KB", "utf-16"]
)
def test_regression_paper_xlsx_entities_are_refused_not_expanded(encoding: str, padding: int, tmp_path: Path) -> None:
    # Found by the entity property below: openpyxl parses sheets with expat and shared strings with lxml, both of
    # which expand internal entities, so "&e;" came back as the 申报单位 "EXPANDED-ENTITY".
    data = _paper_xlsx([_GOOD_ROW], _doctype_sheet(encoding, padding))
    res = check_paper(data, ".xlsx", tmp_path)
    assert res.file_error is not None and "DOCTYPE" in res.file_error, res
    assert not res.entries


def _replace(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    return lambda xml: xml.replace(old, new, 1)


def test_regression_paper_huge_merged_ranges_are_refused_before_openpyxl_builds_them(tmp_path: Path) -> None:
    # Found by the paper property below (merged ranges in every column): openpyxl creates a cell object for
    # every position of a merged range while it loads, so <mergeCell ref="A2:XFD1048576"/> ran for minutes and
    # gigabytes (A3:ZZ3000 alone took 57 s).
    t0 = time.perf_counter()
    for ref in ("A2:XFD1048576", "A3:ZZ3000", "B:B"):
        merge = b'</sheetData><mergeCells><mergeCell ref="%s"/></mergeCells>' % ref.encode()
        merged = _paper_xlsx([_GOOD_ROW, _GOOD_ROW], _replace(b"</sheetData>", merge))
        res = check_paper(merged, ".xlsx", tmp_path)
        assert res.file_error is not None and "merged cells" in res.file_error, (ref, res)
    assert time.perf_counter() - t0 < 20


def _paper_with(edit: Callable[[Any], None]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.worksheets[0]
    ws.append(list(HEADINGS))
    ws.append(_GOOD_ROW)
    edit(ws)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _styled(ws: Any) -> None:
    ws["XFD1048576"].number_format = "@"


def _merged_block(ws: Any) -> None:
    ws.append(_GOOD_ROW)
    ws.merge_cells("H2:H3")
    ws["H2"] = "李静"


def _blank_gap(ws: Any) -> None:
    for _ in range(3):
        ws.append([])
    ws.append(_GOOD_ROW)


def test_regression_paper_far_away_cells_are_bounded(tmp_path: Path) -> None:
    # Found by the paper property below: ws.iter_rows() creates a cell object for every position up to the
    # farthest cell, so a file with one more value in row 1048576 ran for minutes and gigabytes (a value in row
    # 200000 took 34 s). Only the cells the file has are read now.
    t0 = time.perf_counter()
    far = check_paper(_paper_with(lambda ws: ws.__setitem__("I1048576", "备注")), ".xlsx", tmp_path)
    assert far.file_error is not None and "row 1048576 has a value" in far.file_error
    styled = check_paper(_paper_with(_styled), ".xlsx", tmp_path)
    assert styled.file_error is None and not styled.errors and len(styled.entries) == 1
    wide = check_paper(_paper_with(lambda ws: ws.__setitem__("XFD2", "far right")), ".xlsx", tmp_path)
    assert wide.file_error is None and len(wide.entries) == 1
    # A merged block of ordinary size still gives every row the block's value; blank rows between count.
    rows = check_paper(_paper_with(_merged_block), ".xlsx", tmp_path).entries
    assert [e["received_by"] for e in rows] == ["李静", "李静"]
    gap = check_paper(_paper_with(_blank_gap), ".xlsx", tmp_path)
    assert gap.blank_rows == 3 and len(gap.entries) == 2
    assert time.perf_counter() - t0 < 20


# == messages ==============================================================================================


def _mail_seeds() -> list[bytes]:
    seeds = [raw[:65536] for _, raw, _ in mailgen.corpus()]
    seeds += [raw for _, raw, _ in mailgen.hopeless() if len(raw) < 65536]
    eml = sorted((Path(__file__).parent / "data" / "eml").rglob("*.eml"))
    seeds += [f.read_bytes()[:65536] for f in eml[:: max(1, len(eml) // 25)]]
    return seeds


MAIL_SEEDS = _mail_seeds()
MAIL_TOKENS = [
    b"\r\n", b"\n", b"\r\n\r\n", b"--", b"\r\n--", b"=?", b"?=", b"=?gb2312?B?", b"=?utf-8?Q?", b"=?gbk?b?",
    b"=?unknown-8bit?B?", b"?B?", b"?Q?", b"=\r\n", b"=XX", b";", b'"', b"\\", b"*0*=", b"*1*=", b"*=gbk''",
    b"%D6%D0", b"Content-Type: multipart/mixed; boundary=", b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Transfer-Encoding: base64\r\n", b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename=", b"charset=", b"\xd6\xd0\xce\xc4", b"\xe4\xb8\xad", b"\xff\xfe",
    b"\x00", b"\t", b" ", b"begin 644 a.txt\r\n", b"X-QQ-AUTO-REPLY: 1\r\n", b"Auto-Submitted: auto-replied\r\n",
]  # fmt: skip

CHARSETS = [
    "utf-8", "gb2312", "GBK", "gb18030", "big5", "hz-gb-2312", "iso-2022-jp", "utf-16", "utf-7", "utf-8*zh-cn",
    "unicode-1-1-utf-7", "x-unknown", "", "../../etc/passwd", "cp936", "euc-cn", "us-ascii", "latin1", "\u4e2d",
]  # fmt: skip
TEXTS = [
    "附件1_申报书.docx",
    "武汉光谷智能科技有限公司",
    "镕喆堃玥",
    "申报材料（更正）",
    "a" * 300,
    "",
    "\u202eexe.pdf",
]


@st.composite
def encoded_word(draw: st.DrawFn) -> str:
    """An RFC 2047 encoded word: real text in a real or bogus charset, B or Q, sometimes broken."""
    cs = draw(st.sampled_from(CHARSETS))
    text = draw(st.one_of(st.sampled_from(TEXTS), st.text(max_size=40)))
    try:
        raw = text.encode(cs or "utf-8", "replace")
    except (LookupError, ValueError):
        raw = text.encode("utf-8")
    enc = draw(st.sampled_from(["B", "Q", "b", "q", "X"]))
    if enc.upper() == "B":
        payload = base64.b64encode(raw).decode()
        if draw(st.booleans()):
            payload = payload[: draw(st.integers(0, len(payload)))]  # cut: bad padding
    else:
        payload = "".join(chr(b) if 0x21 <= b <= 0x7E and b not in b"=?_" else f"={b:02X}" for b in raw)
    return f"=?{cs}?{enc}?{payload}?="


@st.composite
def header_value(draw: st.DrawFn) -> bytes:
    pieces = draw(
        st.lists(
            st.one_of(
                encoded_word().map(str.encode),
                st.builds(
                    lambda t, cs: t.encode(cs, "replace"), st.sampled_from(TEXTS), st.sampled_from(["utf-8", "gbk"])
                ),
                st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass")),
                st.binary(max_size=20),
                st.sampled_from([b"\r\n\t", b"\r\n ", b" ", b'"', b"<", b">", b",", b";", b"@", b"(", b")"]),
            ),
            max_size=8,
        )
    )
    return b"".join(pieces)


@st.composite
def params(draw: st.DrawFn, name: str) -> bytes:
    """A filename/name parameter: plain, quoted with encoded words, raw 8-bit, or RFC 2231 (continued) forms."""
    text = draw(st.sampled_from(TEXTS))
    kind = draw(st.sampled_from(["plain", "quoted-ew", "raw8", "2231", "2231-cont", "2231-broken", "none"]))
    if kind == "none":
        return b""
    if kind == "plain":
        return b'; %s="%s"' % (name.encode(), text.encode("utf-8"))
    if kind == "quoted-ew":
        return b'; %s="%s"' % (name.encode(), draw(encoded_word()).encode())
    if kind == "raw8":
        return b"; %s=%s" % (name.encode(), text.encode("gbk", "replace"))
    cs = draw(st.sampled_from(CHARSETS))
    try:
        enc = "".join(f"%{b:02X}" for b in text.encode(cs or "utf-8"))
    except (LookupError, ValueError):
        enc = "".join(f"%{b:02X}" for b in text.encode("utf-8"))
    if kind == "2231":
        return f"; {name}*={cs}''{enc}".encode()
    chunks = [enc[i : i + 12] for i in range(0, len(enc), 12)] or [""]
    idx = list(range(len(chunks)))
    if kind == "2231-broken":
        idx = draw(st.lists(st.sampled_from([0, 1, 2, 3, 99, 10**12, -1]), min_size=len(chunks), max_size=len(chunks)))
    out = b""
    for i, (n, chunk) in enumerate(zip(idx, chunks, strict=True)):
        value = f"{cs}''{chunk}" if i == 0 else chunk
        out += f"; {name}*{n}*={value}".encode()
    return out


CTYPES = [
    "text/plain", "text/html", "application/octet-stream", "application/pdf", "image/png", "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/ms-tnef",
    "message/delivery-status", "text/rfc822-headers", "text/calendar", "", "bogus", "text/",
]  # fmt: skip
CTES = ["", "base64", "quoted-printable", "7bit", "8bit", "binary", "x-uuencode", "uuencode", "bogus"]


@st.composite
def leaf_part(draw: st.DrawFn) -> bytes:
    ctype = draw(st.sampled_from(CTYPES))
    cte = draw(st.sampled_from(CTES))
    body = draw(st.one_of(st.binary(max_size=300), st.sampled_from(TEXTS).map(lambda t: t.encode("gbk", "replace"))))
    if cte == "base64" and draw(st.booleans()):
        body = base64.encodebytes(body)
    head = b"Content-Type: " + ctype.encode() + b"; charset=" + draw(st.sampled_from(CHARSETS)).encode()
    head += draw(params("name"))
    if draw(st.booleans()):
        head += b"\r\nContent-Disposition: " + draw(st.sampled_from([b"attachment", b"inline", b"", b"bogus"]))
        head += draw(params("filename"))
    if cte:
        head += b"\r\nContent-Transfer-Encoding: " + cte.encode()
    return head + b"\r\n\r\n" + body


def _multipart(draw: st.DrawFn, children: list[bytes]) -> bytes:
    boundary = draw(st.one_of(st.sampled_from(["b1", "", "=_?=", "a" * 200, "b1 b2", '"q"']), st.text(max_size=12)))
    b = boundary.encode("utf-8", "surrogatepass")
    sub = draw(st.sampled_from(["mixed", "alternative", "related", "report", "signed", "digest"]))
    quoted = draw(st.booleans())
    out = b"Content-Type: multipart/%s; boundary=%s\r\n\r\npreamble\r\n" % (
        sub.encode(),
        b'"' + b + b'"' if quoted else b,
    )
    for child in children:
        out += b"--" + b + b"\r\n" + child + b"\r\n"
    if draw(st.booleans()):
        out += b"--" + b + b"--\r\nepilogue"
    return out


@st.composite
def mime_tree(draw: st.DrawFn, depth: int = 0) -> bytes:
    if depth >= 4 or draw(st.integers(0, 3)) == 0:
        return draw(leaf_part())
    kind = draw(st.sampled_from(["multipart", "multipart", "rfc822"]))
    if kind == "rfc822":
        inner = draw(mime_tree(depth + 1))
        return b"Content-Type: message/rfc822\r\n\r\nFrom: a@b.c\r\nSubject: " + draw(header_value()) + b"\r\n" + inner
    return _multipart(draw, [draw(mime_tree(depth + 1)) for _ in range(draw(st.integers(0, 4)))])


@st.composite
def grammar_message(draw: st.DrawFn) -> bytes:
    names = ["From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
             "Return-Path", "Received", "Auto-Submitted", "Precedence", "List-Id", "X-QQ-AUTO-REPLY",
             "X-Autoreply", "X-Mailer", "MIME-Version", "Content-Type", "Content-Disposition"]  # fmt: skip
    headers = b""
    for _ in range(draw(st.integers(0, 10))):
        name = draw(st.one_of(st.sampled_from(names), st.text(min_size=1, max_size=10))).encode("utf-8", "replace")
        headers += name + b": " + draw(header_value()) + draw(st.sampled_from([b"\r\n", b"\n"]))
    raw = headers + draw(mime_tree())
    return raw.replace(b"\r\n", b"\n") if draw(st.booleans()) else raw


@fuzz(500)
@given(raw=mutated(MAIL_SEEDS, MAIL_TOKENS))
def test_mutated_real_messages_parse_or_raise_message_parse_error(raw: bytes) -> None:
    check_message(raw)


@fuzz(200)
@given(raw=grammar_message())
def test_grammar_fuzzed_messages_parse_or_raise_message_parse_error(raw: bytes) -> None:
    check_message(raw)


# == documents: zip structure, OOXML parts, PDF objects, image headers =========================================

FORM_DOCX = formgen.make_form("form_scenario", 0).data
COMMITMENT_DOCX = formgen.make_commitment().data
ZIP_SEEDS = [
    FORM_DOCX,
    scangen.gbk_zip({"附件1_申报书.docx": COMMITMENT_DOCX, "说明.txt": "申报材料".encode("gbk")}),
    scangen.plain_zip({"营业执照.jpg": b"\xff\xd8\xff\xe0" + bytes(60), "a/b.txt": b"x" * 3000}),
    scangen.traversal_zip(),
]
_LOCAL, _CENTRAL, _END = b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06"
# (signature, offset, struct format) of every field worth lying about
_ZIP_FIELDS = [
    (_LOCAL, 4, "<H"), (_LOCAL, 6, "<H"), (_LOCAL, 8, "<H"), (_LOCAL, 14, "<I"), (_LOCAL, 18, "<I"),
    (_LOCAL, 22, "<I"), (_LOCAL, 26, "<H"), (_LOCAL, 28, "<H"),
    (_CENTRAL, 6, "<H"), (_CENTRAL, 8, "<H"), (_CENTRAL, 10, "<H"), (_CENTRAL, 16, "<I"), (_CENTRAL, 20, "<I"),
    (_CENTRAL, 24, "<I"), (_CENTRAL, 28, "<H"), (_CENTRAL, 30, "<H"), (_CENTRAL, 32, "<H"), (_CENTRAL, 38, "<I"),
    (_CENTRAL, 42, "<I"),
    (_END, 8, "<H"), (_END, 10, "<H"), (_END, 12, "<I"), (_END, 16, "<I"), (_END, 20, "<H"),
]  # fmt: skip
_NAMES = [
    "../../etc/passwd", "/abs/附件1.docx", "a\\..\\..\\b.docx", "", ".", "./", "a//b", "~$附件1.docx",
    "__MACOSX/._x", "x" * 600, "附件1_申报书.docx", "con", "a\x00b.pdf", "申报/../../材料.pdf",
]  # fmt: skip


@st.composite
def zip_field_mutation(draw: st.DrawFn) -> bytes:
    """A zip with lying local-header / central-directory / end-record fields: sizes, flags, methods, offsets."""
    raw = bytearray(draw(st.sampled_from(ZIP_SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        sig, off, fmt = draw(st.sampled_from(_ZIP_FIELDS))
        hits = [m.start() for m in re.finditer(re.escape(sig), raw)]
        if not hits:
            continue
        at = draw(st.sampled_from(hits)) + off
        size = struct.calcsize(fmt)
        if at + size > len(raw):
            continue
        (old,) = struct.unpack_from(fmt, raw, at)
        top = (1 << (8 * size)) - 1
        new = draw(st.sampled_from([0, 1, 2, 8, 9, 12, 14, 93, 99, 0x800, 0x801, 0x8, old + 1, old - 1, old * 2,
                                    len(raw), top, top - 1, top // 2]))  # fmt: skip
        struct.pack_into(fmt, raw, at, new & top)
    return bytes(raw)


class _RawName(zipfile.ZipInfo):
    """A member whose name is stored as the given bytes (GBK without the UTF-8 flag, or anything else)."""

    raw_name = b""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.raw_name, self.flag_bits


@st.composite
def zip_with_names(draw: st.DrawFn) -> bytes:
    """A zip whose member names are traversal, absolute, empty, junk, GBK or raw bytes; sometimes nested."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(draw(st.integers(1, 5))):
            name = draw(st.one_of(st.sampled_from(_NAMES), st.text(max_size=20)))
            enc = draw(st.sampled_from(["utf-8", "gbk", "raw"]))
            info = _RawName(f"m{i}")
            info.raw_name = draw(st.binary(max_size=30)) if enc == "raw" else name.encode(enc, "replace")
            info.flag_bits = 0x800 if enc == "utf-8" and draw(st.booleans()) else 0
            info.external_attr = draw(st.sampled_from([0, 0o100644 << 16, 0o120777 << 16, 0o40755 << 16]))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, draw(st.sampled_from([b"", COMMITMENT_DOCX, b"%PDF-1.4\n" + bytes(40), b"text"])))
    data = buf.getvalue()
    for _ in range(draw(st.integers(0, 3))):  # nested: a zip in a zip in a zip
        data = scangen.plain_zip({draw(st.sampled_from(["inner.zip", "附件.zip", "../x.zip"])): data})
    return data


def _check_zip(data: bytes) -> None:
    check_document(data, "材料.zip")
    check_document(data, "附件1_申报书.docx")
    check_archive(data, FileType.zip, ArchiveLimits(max_total_size=8 * 1024 * 1024, max_members=50))
    check_docx(data)


@fuzz(150)
@given(data=zip_field_mutation())
def test_zip_header_field_lies_never_escape_the_parsers(data: bytes) -> None:
    _check_zip(data)


@fuzz(100)
@given(data=zip_with_names())
def test_zip_member_names_and_nesting_never_escape_the_parsers(data: bytes) -> None:
    _check_zip(data)
    res = check_archive(data, FileType.zip)
    for m in res.members:
        assert not m.path.startswith(("/", "\\")) and "\\" not in m.path.replace("\\\\", ""), m.path


# -- OOXML parts ---------------------------------------------------------------------------------------------

_FORM_PARTS = {
    n: zipfile.ZipFile(io.BytesIO(FORM_DOCX)).read(n) for n in zipfile.ZipFile(io.BytesIO(FORM_DOCX)).namelist()
}
SECRET = "SECRET-FILE-CONTENT-7f3a"
ENTITY_MARK = "EXPANDED-ENTITY-9c1d"


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("xxe") / "secret.txt"
    p.write_text(SECRET)
    return p


def _dtd(kind: str, secret: Path) -> bytes:
    return {
        "none": b"",
        "internal": b'<!DOCTYPE w:document [<!ENTITY e "%s">]>' % ENTITY_MARK.encode(),
        "external": b'<!DOCTYPE w:document [<!ENTITY e SYSTEM "%s">]>' % secret.as_uri().encode(),
        "network": b'<!DOCTYPE w:document [<!ENTITY e SYSTEM "http://127.0.0.1:9/dtd">]>',
        "parameter": b'<!DOCTYPE w:document [<!ENTITY %% p SYSTEM "%s"> %%p; <!ENTITY e "x">]>'
        % secret.as_uri().encode(),
        "laughs": b'<!DOCTYPE w:document [<!ENTITY e0 "ha">'
        + b"".join(b'<!ENTITY e%d "%s">' % (i, b"&e%d;" % (i - 1) * 10) for i in range(1, 9))
        + b'<!ENTITY e "&e8;">]>',
        "public": b'<!DOCTYPE w:document PUBLIC "-//x//EN" "%s">' % secret.as_uri().encode(),
    }[kind]


_W = b"http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_TAGS = [
    b"w:p", b"w:r", b"w:t", b"w:tbl", b"w:tr", b"w:tc", b"w:sdt", b"w:sdtContent", b"w:customXml", b"w:sym",
    b"w:fldChar", b"w:txbxContent", b"w:tcPr", b"w:vMerge", b"mc:AlternateContent", b"x:unknown", b"w:br",
]  # fmt: skip
_ATTRS = [
    b"", b' w:val="1"', b' w:char="F0FE" w:font="Wingdings"', b' w:val="%s"' % (b"A" * 200_000), b' w:val="\xff\xfe"',
    b" " + b" ".join(b'a%d="1"' % i for i in range(300)),
]  # fmt: skip


@st.composite
def ooxml_document_xml(draw: st.DrawFn, secret: Path) -> bytes:
    """document.xml of a real form with a DTD, random tags, huge attributes, deep nesting and broken UTF-8."""
    xml = _FORM_PARTS["word/document.xml"]
    body_at = xml.find(b"<w:body>") + len(b"<w:body>")
    head, rest = xml[:body_at], xml[body_at:]
    inserts: list[bytes] = [b"<w:p><w:r><w:t>&e;</w:t></w:r></w:p>"]
    for _ in range(draw(st.integers(0, 6))):
        tag = draw(st.sampled_from(_TAGS))
        attr = draw(st.sampled_from(_ATTRS))
        inner = draw(
            st.sampled_from([b"", b"text", "承诺书".encode(), b"&e;", b"\xc3", b"\xed\xa0\x80", b"<![CDATA[x]]>"])
        )
        depth = draw(st.sampled_from([1, 2, 50, 300]))
        if depth > 2:
            attr = b""  # deep nesting of small tags; a huge attribute once
        inserts.append((b"<%s%s>" % (tag, attr)) * depth + inner + (b"</%s>" % tag) * depth)
    pos = draw(st.integers(0, len(rest)))
    while pos < len(rest) and rest[pos : pos + 4] != b"<w:p":
        pos += 1
    decl_end = head.find(b"?>") + 2 if head.startswith(b"<?xml") else 0
    dtd = _dtd(
        draw(st.sampled_from(["none", "internal", "external", "network", "parameter", "laughs", "public"])), secret
    )
    padding = draw(st.sampled_from([b"", b"<!--" + b"p" * 5000 + b"-->"]))
    out = head[:decl_end] + padding + dtd + head[decl_end:] + rest[:pos] + b"".join(inserts) + rest[pos:]
    if draw(st.booleans()):
        out = out.replace(b'encoding="UTF-8"', draw(st.sampled_from([b'encoding="GBK"', b'encoding="UTF-16"', b""])), 1)
    return out


def _docx_with(parts: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in parts.items():
            zf.writestr(name, body)
    return buf.getvalue()


_RELS_TARGETS = [b"word/document.xml", b"/word/document.xml", b"../../etc/passwd", b"word/../../x.xml",
                 b"http://127.0.0.1:9/doc.xml", b"", b"word/styles.xml", b"word/document.xml#frag"]  # fmt: skip


@st.composite
def ooxml_package(draw: st.DrawFn, secret: Path) -> bytes:
    parts = dict(_FORM_PARTS)
    parts["word/document.xml"] = draw(ooxml_document_xml(secret))
    if draw(st.booleans()):
        target = draw(st.sampled_from(_RELS_TARGETS))
        parts["_rels/.rels"] = re.sub(
            rb'Target="[^"]*document\.xml"', b'Target="' + target + b'"', parts["_rels/.rels"]
        )
    if draw(st.booleans()):
        victim = draw(st.sampled_from(["[Content_Types].xml", "_rels/.rels", "word/_rels/document.xml.rels"]))
        parts[victim] = _dtd("internal", secret) + parts.get(victim, b"")
    return _docx_with(parts)


def _no_entity_leak(doc: ParsedDocument) -> None:
    everything = doc.text + repr(doc.fields) + " ".join(doc.warnings) + " ".join(p.detail for p in doc.problems)
    assert SECRET not in everything and ENTITY_MARK not in everything and "hahaha" not in everything
    for m in doc.members:
        _no_entity_leak(m)


def test_ooxml_strategy_reaches_the_entity_cases(secret_file: Path) -> None:
    # The property below must really feed entities to the parser: a plain DTD'd form still reads, without them.
    parts = dict(_FORM_PARTS)
    xml = parts["word/document.xml"]
    i = xml.find(b"<w:body>") + len(b"<w:body>")
    parts["word/document.xml"] = (
        xml[: xml.find(b"?>") + 2] + _dtd("external", secret_file) + xml[xml.find(b"?>") + 2 : i]
        + b"<w:p><w:r><w:t>&e;</w:t></w:r></w:p>" + xml[i:]
    )  # fmt: skip
    doc = check_document(_docx_with(parts), "附件1_申报书.docx")
    assert not doc.unreadable and doc.kind.value == "form_scenario"
    _no_entity_leak(doc)


@fuzz(80)
@given(data=st.data())
def test_ooxml_part_mutations_never_escape_or_resolve_entities(data: st.DataObject, secret_file: Path) -> None:
    docx = data.draw(ooxml_package(secret_file))
    doc = check_document(docx, "附件1_申报书.docx")
    _no_entity_leak(doc)
    check_docx(docx)


# -- PDF objects, xref and streams ------------------------------------------------------------------------------


def pdf_from_objects(objs: list[bytes], *, xref: bool = True) -> bytes:
    """A PDF with these object bodies (1 0 obj is the catalog), a classic xref table and trailer."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    start = len(out)
    if xref:
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
        out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, start)
    return bytes(out)


def _stream(content: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(content), extra) + content + b"\nendstream"


def text_pdf(lines: list[tuple[float, float, bytes]], mediabox: bytes = b"0 0 595 842") -> bytes:
    """One page of Helvetica text lines (size, y, text) in a ruled box, like a form's table row."""
    content = b"0.5 w 60 400 m 535 400 l 535 720 l 60 720 l h S 300 400 m 300 720 l S\n"
    content += b"".join(b"BT /F1 %g Tf 72 %g Td (%s) Tj ET\n" % (s, y, t) for s, y, t in lines)
    return pdf_from_objects(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [%s] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
            % mediabox,
            _stream(content),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def _scan_pdf() -> bytes:
    from PIL import Image

    img = Image.new("RGB", (120, 160), (250, 250, 250))
    img.paste((215, 30, 35), (40, 40, 80, 80))
    return scangen.images_to_pdf([img], dpi=30)


PDF_SEEDS = [
    text_pdf([(16, 700, b"Commitment"), (10.5, 660, b"Org name: Wuhan AI Co"), (10.5, 640, b"Project: flood alert")]),
    _scan_pdf(),
    scangen.looping_pdf(),
    pdf_from_objects([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]),
]
_PDF_NUMBERS = [b"0", b"-1", b"1e308", b"99999999999", b"2147483648", b"-0", b"nan", b"0.0001", b"1 0 R", b"3 0 R",
                b"[]", b"<<>>", b"null", b"/Foo", b"(x)"]  # fmt: skip
_PDF_TOKENS = [b"/FlateDecode", b"/LZWDecode", b"/ASCII85Decode", b"/JBIG2Decode", b"/DCTDecode", b"/CCITTFaxDecode",
               b"/Encrypt", b"/Kids [3 0 R 3 0 R]", b"/Parent 3 0 R", b"/Count 2147483647", b"/Rotate 91",
               b"/MediaBox [0 0 1e30 1e30]", b"/MediaBox [0 0 0 0]", b"/MediaBox [595 842 0 0]", b"/UserUnit 75000",
               b"1 0 0 0 72 600 Tm", b"1e9 0 0 1e9 0 0 cm", b"/F1 1e6 Tf", b"endstream", b"endobj", b"xref", b"trailer",
               b"startxref\n0\n", b"%%EOF", b"BT", b"ET", b"Tj", b"(\\", b"<FEFF", b"q q q q q q q q"]  # fmt: skip


@st.composite
def pdf_object_mutation(draw: st.DrawFn) -> bytes:
    """A seed PDF with numbers in its objects replaced, streams' /Length and filters lied about, tokens inserted."""
    raw = bytearray(draw(st.sampled_from(PDF_SEEDS)))
    for _ in range(draw(st.integers(1, 5))):
        op = draw(st.sampled_from(["number", "token", "truncate", "xref"]))
        if op == "number":
            hits = [m.span() for m in re.finditer(rb"(?<![\w.])-?\d+(\.\d+)?(?![\w.])", raw)]
            if hits:
                a, b = draw(st.sampled_from(hits))
                raw[a:b] = draw(st.sampled_from(_PDF_NUMBERS))
        elif op == "token":
            pos = draw(st.integers(0, len(raw)))
            raw[pos:pos] = b" " + draw(st.sampled_from(_PDF_TOKENS)) + b" "
        elif op == "truncate":
            del raw[draw(st.integers(len(raw) // 3, len(raw))) :]
        else:
            at = raw.rfind(b"xref")
            if at > 0:
                raw[at : at + 4] = draw(st.sampled_from([b"xreF", b"    ", b"xref\n0 999999999\n"]))
    return bytes(raw)


@fuzz(60)
@given(data=pdf_object_mutation())
def test_pdf_object_xref_and_stream_mutations_never_escape(data: bytes) -> None:
    check_document(data, "附件2_申报书.pdf")


# -- image headers -----------------------------------------------------------------------------------------------


def _png_chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)


def _image_seeds() -> dict[str, bytes]:
    from PIL import Image

    img = Image.new("RGB", (64, 48), (250, 250, 250))
    img.paste((215, 30, 35), (20, 10, 40, 30))
    out = {}
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"):
        buf = io.BytesIO()
        img.save(buf, fmt)
        out[fmt] = buf.getvalue()
    return out


IMAGE_SEEDS = _image_seeds()
_DIMS = [0, 1, 2, 255, 256, 65535, 65536, 30000, 2**31 - 1, 2**32 - 1]


@st.composite
def image_header_mutation(draw: st.DrawFn) -> bytes:
    """An image whose declared size, depth or colour type lies (PNG with a valid CRC), or bytes flipped."""
    fmt = draw(st.sampled_from(sorted(IMAGE_SEEDS)))
    raw = bytearray(IMAGE_SEEDS[fmt])
    w, h = draw(st.sampled_from(_DIMS)), draw(st.sampled_from(_DIMS))
    if fmt == "PNG":
        depth, ctype = draw(st.sampled_from([1, 2, 8, 16, 0, 7])), draw(st.sampled_from([0, 2, 3, 4, 6, 5]))
        ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, draw(st.sampled_from([0, 1])))
        raw[8:33] = _png_chunk(b"IHDR", ihdr)
    elif fmt == "JPEG":
        sof = raw.find(b"\xff\xc0")
        if sof > 0:
            struct.pack_into(">HH", raw, sof + 5, h & 0xFFFF, w & 0xFFFF)
    elif fmt == "GIF":
        struct.pack_into("<HH", raw, 6, w & 0xFFFF, h & 0xFFFF)
    elif fmt == "BMP":
        struct.pack_into("<ii", raw, 18, w & 0x7FFFFFFF, draw(st.sampled_from([h & 0x7FFFFFFF, -(h & 0x7FFFFFF)])))
        struct.pack_into("<H", raw, 28, draw(st.sampled_from([1, 4, 8, 16, 24, 32, 0, 64])))
    else:
        for _ in range(draw(st.integers(1, 8))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del raw[draw(st.integers(8, len(raw))) :]
    return bytes(raw)


@fuzz(120)
@given(data=image_header_mutation())
def test_image_header_lies_are_image_errors_within_the_pixel_limit(data: bytes) -> None:
    with time_limit():
        try:
            img = load_image(data, max_pixels=OPTIONS.max_image_pixels)
        except ImageError as exc:
            assert str(exc)
        else:
            assert img.mode == "RGB" and img.size[0] * img.size[1] <= OPTIONS.max_image_pixels
    check_document(data, "营业执照.jpg")


# -- archives of every format --------------------------------------------------------------------------------


def _archive_seeds() -> list[bytes]:
    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as sz:
        sz.writestr("申报书内容" * 20, "附件1.txt")
        sz.writestr(COMMITMENT_DOCX, "dir/承诺书.docx")
    seeds = [buf.getvalue(), *ZIP_SEEDS]
    rar = sorted((FUZZ_DATA / "seeds").glob("*.rar")) if (FUZZ_DATA / "seeds").is_dir() else []
    return seeds + [p.read_bytes() for p in rar]


ARCHIVE_SEEDS = _archive_seeds()


@fuzz(120)
@given(
    data=mutated(ARCHIVE_SEEDS, [b"PK\x03\x04", b"PK\x01\x02", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07\x00", b"\xff" * 8])
)
def test_mutated_archives_of_every_format_stay_within_limits(data: bytes) -> None:
    for ftype in (FileType.zip, FileType.sevenzip, FileType.rar):
        check_archive(data, ftype, ArchiveLimits(max_total_size=8 * 1024 * 1024, max_members=50))
    check_document(data, "材料.7z")


# == paper-log import ===========================================================================================

_CELL_TEXT = [
    "2026/7/7 16:30", "2026-07-07 16:30:00", "2026年7月7日 16时30分", "7月7日下午4点半", "46210.6875", "46210",
    "2026/7/7", "０２６/７/７ １６：３０", "2026-13-45 25:61", "合计", "小计：12", "申报书", "推荐意见", "汇总表",
    "场景", "附件2",
    "两份", "２份", "0", "100", "-1", "1e3", "江岸区", "东湖新技术开发区", "91420100MA4K2XXX1X", "9142010", "#N/A",
    "#DIV/0!", "=SUM(A1:A3)", "=1/0", "", " ", "\t", "\x00", "\ud7ff", "武汉光谷智能科技有限公司", "x" * 5000,
]  # fmt: skip
_FORMATS = ["General", "yyyy/m/d h:mm", "yyyy-mm-dd", "h:mm", "@", "0.00", "[$-F400]h:mm:ss AM/PM", "mm-dd-yy"]
# Placeholders written as numbers, replaced in the sheet XML by values openpyxl would never write itself.
_RAW_NUMBERS = {
    987650001: b"1E999", 987650002: b"-1E999", 987650003: b"1" + b"0" * 300, 987650004: b"4.9E-324",
    987650005: b"1E308", 987650006: b"-0",
}  # fmt: skip


# openpyxl refuses to write control characters; the CSV strategy has them.
_XLSX_TEXT = [t for t in _CELL_TEXT if not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", t)]
_XLSX_CHARS = st.characters(blacklist_categories=("Cs", "Cc"))


def _cell_values() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.sampled_from(_XLSX_TEXT),
        st.text(_XLSX_CHARS, max_size=30),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([46210.6875, 46210.0, 30000.5, 80000.99, 0.5, -0.0, 1e308]),
        st.booleans(),
        st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(9999, 12, 31)),
        st.dates(min_value=date(1900, 3, 1)),
        st.times(),
        st.timedeltas(min_value=timedelta(days=-999), max_value=timedelta(days=999)),
        st.sampled_from(sorted(_RAW_NUMBERS)),
    )


_HEADING_CHOICES = [
    *HEADINGS, "统一社会信用代码", "接收日期", "申报单位名称", "份数(份)", "区", "序号", "", "接收时间", "x",
]  # fmt: skip


@st.composite
def paper_workbook(draw: st.DrawFn) -> bytes:
    """A paper log: title rows, a (shuffled, aliased, sometimes incomplete or doubled) heading row, rows of
    random cell types with random number formats, merged ranges anywhere, several sheets."""
    wb = openpyxl.Workbook()
    for n in range(draw(st.integers(1, 2))):
        ws = wb.worksheets[0] if n == 0 else wb.create_sheet(draw(st.sampled_from(["7月", "Sheet2", "汇总"])))
        for _ in range(draw(st.integers(0, 3))):
            ws.append([draw(st.sampled_from(["纸质材料接收登记表", "", "单位：份"]))])
        headings = list(HEADINGS) if draw(st.booleans()) else []
        headings += draw(st.lists(st.sampled_from(_HEADING_CHOICES), max_size=4))
        headings = draw(st.permutations(headings)) if draw(st.booleans()) else headings
        ws.append(headings)
        width = max(len(headings), 1)
        for _ in range(draw(st.integers(0, 6))):
            row = [draw(_cell_values()) for _ in range(width)]
            ws.append(row)
            for c, v in enumerate(row, start=1):
                if draw(st.integers(0, 4)) == 0:
                    ws.cell(ws.max_row, c).number_format = draw(st.sampled_from(_FORMATS))
                del v
        for _ in range(draw(st.integers(0, 3))):
            r1, c1 = draw(st.integers(1, ws.max_row + 2)), draw(st.integers(1, width + 1))
            ws.merge_cells(start_row=r1, start_column=c1, end_row=r1 + draw(st.integers(0, 4)),
                           end_column=c1 + draw(st.integers(0, 2)))  # fmt: skip
    buf = io.BytesIO()
    wb.save(buf)

    def raw_numbers(xml: bytes) -> bytes:
        for k, v in _RAW_NUMBERS.items():
            xml = xml.replace(b"<v>%d</v>" % k, b"<v>" + v + b"</v>")
        return xml

    src = zipfile.ZipFile(buf)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            body = src.read(info.filename)
            zf.writestr(info.filename, raw_numbers(body) if info.filename.startswith("xl/worksheets/") else body)
    return out.getvalue()


@st.composite
def paper_csv(draw: st.DrawFn) -> bytes:
    delim = draw(st.sampled_from([",", "\t", ";", "|"]))
    lines = [delim.join(draw(st.permutations(list(HEADINGS))) if draw(st.booleans()) else HEADINGS)]
    for _ in range(draw(st.integers(0, 8))):
        cells = [draw(st.one_of(st.sampled_from(_CELL_TEXT), st.text(max_size=15))) for _ in range(len(HEADINGS))]
        if draw(st.booleans()):
            cells = [f'"{c}"' for c in cells]
        lines.append(delim.join(cells))
    text = draw(st.sampled_from(["\r\n", "\n", "\r"])).join(lines)
    if draw(st.booleans()):
        text = '"' + text  # an unterminated quote
    enc = draw(st.sampled_from(["utf-8-sig", "utf-8", "gb18030", "utf-16", "latin-1"]))
    return text.encode(enc, "replace")


@fuzz(60)
@given(data=paper_workbook())
def test_paper_xlsx_with_random_cells_merges_and_formats_never_raise(data: bytes, tmp_path: Path) -> None:
    check_paper(data, ".xlsx", tmp_path)


@fuzz(100)
@given(data=paper_csv())
def test_paper_csv_in_any_encoding_and_dialect_never_raises(data: bytes, tmp_path: Path) -> None:
    check_paper(data, ".csv", tmp_path)


_SHEET_XML = zipfile.ZipFile(io.BytesIO(_paper_xlsx([_GOOD_ROW, _GOOD_ROW]))).read("xl/worksheets/sheet1.xml")
_SHEET_TOKENS = [
    b"<v>1E999</v>", b'<c r="XFD1048576"><v>1</v></c>', b'<mergeCells><mergeCell ref="A1:C3"/></mergeCells>',
    b"<!DOCTYPE x>", b'<row r="0">', b'r="A0"', b't="s"', b't="e"', b't="d"', b't="b"', b"<v>2026-07-07T16:30</v>",
    b's="99"', b"<f>SUM(A1:A2)</f>", b"&#0;", b"&amp;", b"</c></row>", b"<is><t>", b"</t></is>",
]  # fmt: skip


@fuzz(80)
@given(xml=mutated([_SHEET_XML], _SHEET_TOKENS))
def test_mutated_paper_sheet_xml_never_raises(xml: bytes, tmp_path: Path) -> None:
    check_paper(_paper_xlsx([_GOOD_ROW], lambda _: xml), ".xlsx", tmp_path)


# == regressions: xlsx entities behind a long prolog, damaged xlsx members, zero-height PDF text lines ==========


def _xlsx_with_sheet(patch: Callable[[bytes], bytes]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.worksheets[0]
    ws.append(["申报信息汇总表"])
    ws.append(["申报单位", "ORG-PLACEHOLDER"])
    buf = io.BytesIO()
    wb.save(buf)
    src = zipfile.ZipFile(buf)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            body = src.read(info.filename)
            zf.writestr(info.filename, patch(body) if info.filename == "xl/worksheets/sheet1.xml" else body)
    return out.getvalue()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_reported_xlsx_attachment_entities_behind_a_long_comment_are_not_expanded(encoding: str) -> None:
    def patch(xml: bytes) -> bytes:
        dtd = b"<!--" + b"x" * 5000 + b'--><!DOCTYPE worksheet [<!ENTITY e "%s">]>' % ENTITY_MARK.encode()
        body = xml.replace(b"ORG-PLACEHOLDER", b"&e;")
        return (
            (b'<?xml version="1.0" encoding="%s"?>' % encoding.upper().encode() + dtd + body).decode().encode(encoding)
        )

    doc = check_document(_xlsx_with_sheet(patch), "汇总表.xlsx")
    _no_entity_leak(doc)


def test_reported_xlsx_attachment_with_a_damaged_member_is_reported_as_a_damaged_xlsx() -> None:
    raw = _xlsx_with_sheet(lambda xml: xml)
    bad = _corrupt_member_stream(raw, "xl/worksheets/sheet1.xml")
    doc = check_document(bad, "汇总表.xlsx")
    assert doc.unreadable
    assert "could not be parsed" not in doc.problems[0].detail, doc.problems[0].detail


def test_reported_pdf_with_a_zero_height_text_line_still_reads() -> None:
    content = (
        b"BT /F1 12 Tf 72 700 Td (First line) Tj ET\n"
        b"BT /F1 12 Tf 1 0 0 0 72 600 Tm (flat) Tj ET\n"
        b"BT /F1 12 Tf 72 500 Td (Second line) Tj ET\n"
    )
    pdf = pdf_from_objects(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> "
            b"/Contents 4 0 R >>",
            _stream(content),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )
    doc = check_document(pdf, "附件2_申报书.pdf")
    assert not doc.unreadable, doc.problems
    assert "First line" in doc.text and "Second line" in doc.text


# == regressions: quadratic message parsing (found by targeted probes after the fuzzers' structural findings) ===


def _timed_parse(raw: bytes) -> tuple[ParsedMessage, float]:
    t0 = time.perf_counter()
    msg = check_message(raw)
    assert msg is not None
    return msg, time.perf_counter() - t0


def test_regression_tens_of_thousands_of_encoded_words_on_one_line_parse_in_linear_time() -> None:
    # mail-parser decodes each header with email.header.decode_header, whose list.pop(0) loop is quadratic in
    # the encoded words of one line: a 1.7 MB Subject of 100,000 words took 76 s, a part's filename of 100,000
    # about 20 s, all in the daemon's process (messages are not parsed in the sandbox).
    words = b" ".join([mailgen.ew("中").encode()] * 60_000)
    head = b"From: a@example.com\r\nTo: whaicj@126.com\r\nMIME-Version: 1.0\r\n"
    subject, t1 = _timed_parse(head + b"Subject: " + words + b"\r\n\r\nbody")
    assert t1 < 5, f"{t1:.1f} s for a 60,000-word Subject"
    assert subject.subject.startswith("中中中") and any("mail-parser skipped" in d for d in subject.defects)
    part = (
        head + b"Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="' + words + b'.pdf"\r\n\r\n'
        b"%PDF-1.4\r\n--b--\r\n"
    )
    named, t2 = _timed_parse(part)
    assert len(named.attachments) == 1 and named.attachments[0].filename.startswith("中中中")
    assert t2 < 5, f"{t2:.1f} s for a 60,000-word file name"
    # Ordinary mail still goes through mail-parser.
    normal = check_message(mailgen.qq_split_encoded_words()[0])
    assert normal is not None and not any("mail-parser skipped" in d for d in normal.defects)


def test_regression_html_bodies_with_thousands_of_unclosed_tags_parse_in_linear_time() -> None:
    # parsers.cloudlinks flattens HTML bodies with html.parser, which (CPython 3.11) rescans to the end of the
    # input for every start tag, comment or CDATA section it cannot close: 30,000 unclosed `<a href=` in a
    # 1.6 MB body took minutes, and each kind of construct alone was quadratic.
    link = mailgen.qq_cloud()[0]
    for junk in ('<a href="https://mail.qq.com/cgi-bin/ftnExs_download?', "<![CDATA[ x >", "<!-- x >", "<![if x >"):
        body = (junk * 30_000).encode()
        raw = (
            b"From: a@example.com\r\nTo: whaicj@126.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n\r\n" + body
        )
        msg, took = _timed_parse(raw)
        assert took < 5, f"{took:.1f} s for 30,000 × {junk!r}"
        assert msg.html
    # What the HTML flattening is for still works: the QQ 超大附件 links are found, Office sections are not text.
    found = check_message(link)
    assert found is not None and found.cloud_links
    assert html_to_text("<p>a<![if !supportLists]>x<![endif]>b<!-- c -->d</p>").strip() == "axbd"
