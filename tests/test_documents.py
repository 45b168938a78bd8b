"""The dispatcher: real type beats the name, every format routed, every failure a recorded reason."""

from __future__ import annotations

import io

import pytest

from parsers.documents import ParseOptions, parse_document
from parsers.types import Format, Kind
from tests import scangen

OPTS = ParseOptions(ocr=False)


def test_docx_named_pdf_is_read_as_docx() -> None:
    from tests.formgen import make_form

    g = make_form("form_model", seed=2)
    d = parse_document(g.data, "申报书.pdf", options=OPTS)
    assert d.format == Format.docx and d.kind == Kind.form_model
    assert d.fields["credit_code"] == g.expected_fields["credit_code"]


def test_legacy_doc_via_libreoffice() -> None:
    from tests.formgen import make_form, to_doc

    g = make_form("form_terminal", seed=3)
    d = parse_document(to_doc(g.data), "申报书.doc", options=OPTS)
    assert d.format == Format.doc and d.kind == Kind.form_terminal
    assert d.fields["org_name"] == g.expected_fields["org_name"]
    no_lo = parse_document(to_doc(g.data), "申报书.doc", options=ParseOptions(ocr=False, soffice=None))
    assert no_lo.unreadable and "LibreOffice" in no_lo.problems[0].detail


def test_xlsx_summary_table() -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["XX区（单位）“人工智能+社会治理”创新应用项目申报信息汇总表"])
    ws.append(["序号", "所在区/单位", "申报单位名称", "场景名称"])
    ws.append([1, "江汉区", "武汉测试科技有限公司", "智慧城管"])
    buf = io.BytesIO()
    wb.save(buf)
    d = parse_document(buf.getvalue(), "附件5.xlsx", options=OPTS)
    assert d.format == Format.xlsx and d.kind == Kind.summary and "武汉测试科技有限公司" in d.text


def test_image_licence_with_ocr() -> None:
    data = scangen.license_image("武汉测试科技有限公司", "91420100MA4K12345X")
    d = parse_document(data, "营业执照.jpg", options=ParseOptions())
    assert d.format == Format.image and d.kind == Kind.license and d.seal is True
    assert d.fields.get("credit_code") == "91420100MA4K12345X"


@pytest.mark.parametrize(
    ("data", "name", "fmt", "reason"),
    [
        (b"", "a.docx", Format.docx, "empty"),
        (b"PK\x03\x04garbage" * 3, "a.docx", Format.docx, "damaged"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "p.png", Format.image, "image"),
        (scangen.image_bomb_png(), "bomb.png", Format.image, "too large"),
        (scangen.truncated(scangen.looping_pdf(), 0.3), "t.pdf", Format.pdf_text, ""),
    ],
)
def test_failures_are_values(data: bytes, name: str, fmt: Format, reason: str) -> None:
    d = parse_document(data, name, options=OPTS)
    assert d.format == fmt
    assert d.unreadable
    assert reason in d.problems[0].detail and name in d.problems[0].detail


def test_looping_pdf_returns() -> None:
    d = parse_document(scangen.looping_pdf(), "loop.pdf", options=ParseOptions())
    assert d.format in (Format.pdf_text, Format.pdf_scan) and d.elapsed < 10


def test_xxe_docx_not_resolved() -> None:
    d = parse_document(scangen.xxe_docx(), "x.docx", options=OPTS)
    assert "root:" not in d.text


def test_lockfile_is_a_warning_not_a_document() -> None:
    d = parse_document(
        b"\x05alice" + b"\x00" * 48 + b"\x05\x00" + "alice".encode("utf-16-le") + b"\x00" * 94, "~$附件1.docx"
    )
    assert not d.unreadable and d.kind == Kind.other and d.warnings
