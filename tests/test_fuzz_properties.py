"""Hostile input, fuzzed: hypothesis mutates real seeds into the message, document, archive and paper-log parsers."""

# Each property runs a fixed, derandomized set of examples so CI is reproducible and each test stays under
# ~20 s. For a long random run (examples kept in .hypothesis/fuzz, failures replayed first next time):
#
#     INTAKE_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_fuzz_properties.py -p no:cacheprovider
#
# The coverage-guided fuzzers over the same targets are in bench/fuzz/ (README there).

from __future__ import annotations

import io
import os
import re
import signal
import socket
import struct
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from parsers.archives import ArchiveLimits, ArchiveResult, read_archive
from parsers.documents import ParseOptions, parse_document
from parsers.mail import MessageParseError, parse_message
from parsers.sniff import FileType
from parsers.types import ParsedDocument, ParsedMessage
from parsers.word import WordError, read_docx
from review.paper import HEADINGS, ImportResult, read_log
from tests import formgen

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


def check_document(data: bytes, filename: str, options: ParseOptions = OPTIONS) -> ParsedDocument:
    """parse_document never raises; every problem is unreadable_attachment and names its file (members too)."""
    with time_limit():
        doc = parse_document(data, filename, options=options)

    def walk(d: ParsedDocument) -> None:
        assert isinstance(d, ParsedDocument)
        name = d.member_path or d.filename
        for p in d.problems:
            assert p.code == "unreadable_attachment" and name in p.detail, (name, p)
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
