"""Text PDFs: LibreOffice exports of generated forms parse to the same fields as the Word original."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from parsers.documents import ParseOptions, parse_document
from parsers.layout import TICKED, UNTICKED
from parsers.pdf import PdfError, fix_text, read_pdf
from parsers.types import Format, Kind
from tests.scangen import form_pdfs

REALWORLD = Path(os.environ.get("INTAKE_REALWORLD", "/work/shared/realworld"))
KINDS = ["form_scenario", "form_model", "form_platform", "form_terminal"]
CASES = [(k, v, 0) for k in KINDS for v in ("plain", "tick_wingdings", "tick_pua", "spaced_labels")]
KEY = ("org_name", "credit_code", "project_name", "applicant")


def realworld(rel: str) -> Path:
    p = REALWORLD / rel
    if not p.exists():
        pytest.fail(f"realworld corpus missing: {p} (set INTAKE_REALWORLD)")
    return p


@pytest.fixture(scope="module")
def parsed() -> list[tuple[object, object]]:
    opts = ParseOptions(ocr=False)
    return [(g, parse_document(pdf, "申报书.pdf", options=opts)) for g, pdf in form_pdfs(CASES)]


def test_format_kind_and_key_fields_exact(parsed: list) -> None:
    for g, d in parsed:
        assert d.format == Format.pdf_text
        assert d.kind == Kind(g.kind), (g.variant, d.kind_reasons)
        for k in KEY:
            assert d.fields.get(k) == g.expected_fields.get(k), (g.kind, g.variant, k)
        assert d.has_commitment_page
        assert d.seal is False  # exported from Word: no stamp


def test_field_accuracy_at_least_99_percent(parsed: list) -> None:
    total = good = 0
    misses = []
    for g, d in parsed:
        for k, v in g.expected_fields.items():
            total += 1
            if d.fields.get(k) == v:
                good += 1
            else:
                misses.append((g.kind, g.variant, k))
    assert good / total >= 0.99, misses


def test_pdf_text_speed_ok(parsed: list) -> None:
    # Generous bound for a shared CI box; the bench measures the real rate against raw pypdfium2.
    assert sum(d.elapsed for _, d in parsed[1:]) / (len(parsed) - 1) < 0.25


def test_fake_bold_duplicates_removed() -> None:
    t = read_pdf(realworld("docs/pdf_cjk/pdfplumber_issue-842_orgname_4x_dup_chars.pdf").read_bytes())
    assert "安徽安利合成革股份有限公司" in t.text
    t2 = read_pdf(realworld("docs/pdf_cjk/pdfplumber_issue-71_cn_table_dup_chars.pdf").read_bytes())
    assert "项目描述" in t2.text and "项项目目" not in t2.text


def test_kangxi_radicals_normalised() -> None:
    t = read_pdf(realworld("docs/pdf_cjk/pdfjs_issue15340_kangxi_radicals.pdf").read_bytes())
    assert "\u2f00" not in t.text and "一つ" in t.text


def test_gbk_mojibake_repaired() -> None:
    t = read_pdf(realworld("docs/pdf_cjk/pdfjs_XiaoBiaoSong_gbk_mojibake.pdf").read_bytes())
    assert "关于红军作战的原则" in t.text


def test_spaced_title_collapsed() -> None:
    assert fix_text("典 型 应 用 场 景") == "典型应用场景"
    assert fix_text("申报单位 武汉某某公司") == "申报单位 武汉某某公司"
    t = read_pdf(realworld("docs/pdf_cjk/pdfjs_issue13316_开票通知单_spaced.pdf").read_bytes())
    assert "开票通知单" in t.text.replace(" ", "")


def test_rotated_page_reads_in_order() -> None:
    t = read_pdf(realworld("docs/pdf_cjk/pdfplumber_issue-461_cn_lab_report_form.pdf").read_bytes())
    assert "性别" in t.text and "别性" not in t.text


def test_gov_tables_found() -> None:
    t = read_pdf(realworld("docs/pdf_cjk/pdfplumber_issue-336_anhui_gov_tables.pdf").read_bytes())
    assert len(t.layout.tables) >= 2


def test_wingdings_ticks_mapped(parsed: list) -> None:
    for g, d in parsed:
        if g.variant in ("tick_wingdings", "tick_pua"):
            assert TICKED in d.text and UNTICKED in d.text
            assert "\uf0fe" not in d.text and "\uf0a8" not in d.text


def test_encrypted_and_empty_pdf_reasons() -> None:
    with pytest.raises(PdfError, match="encrypted"):
        read_pdf(realworld("hostile/pdfplumber_password-example_pw-test.pdf").read_bytes())
    d = parse_document(b"", "x.pdf")
    assert d.unreadable and "empty" in d.problems[0].detail
