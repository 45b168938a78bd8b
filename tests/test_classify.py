"""Classification from content (docx layouts, PDF text, noisy OCR text), filename only as a hint."""

from __future__ import annotations

import random
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from parsers.classify import classify
from parsers.types import Kind
from parsers.word import read_docx
from tests import formgen as fg

KINDS = [*fg.FORM_KINDS, Kind.summary]


def _gen(kind: Kind, seed: int, variant: str = "plain") -> fg.GeneratedForm:
    return fg.make_summary(seed=seed) if kind == Kind.summary else fg.make_form(kind, seed, variant)


@pytest.mark.parametrize("variant", ["plain", "spaced_labels", "split_runs", "mixed", "blank"])
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.value)
def test_generated_docx(kind: Kind, variant: str) -> None:
    g = _gen(kind, 11, variant)
    got, reasons = classify(read_docx(g.data), "", "无标题.docx")
    assert got == kind, reasons
    assert reasons


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.value)
def test_noisy_ocr_text_without_tables(kind: Kind) -> None:
    g = _gen(kind, 12)
    text = fg._noise(read_docx(g.data).text().replace("\t", " "), random.Random(3), rate=0.06)
    got, reasons = classify(None, text, "scan_0001.pdf")
    assert got == kind, reasons


def test_titles_spaced_or_split_over_lines() -> None:
    text = "附件1\n武汉市“人工智能 + 社会治理”典型应用\n场景案例申报书\n申报单位  甲公司"
    assert classify(None, text, "x.pdf")[0] == Kind.form_scenario
    text = "武 汉 市 社 会 治 理 行 业 智 能 终 端 产 品 申 报 书"
    assert classify(None, text, "x.pdf")[0] == Kind.form_terminal


def test_pdf_text_of_every_kind() -> None:
    gens = [_gen(k, 13) for k in KINDS] + [fg.make_commitment(seed=13), fg.make_recommendation(seed=13)]
    pdfs = fg.to_pdf([g.data for g in gens])
    for g, data in zip(gens, pdfs, strict=True):
        pdf = pdfium.PdfDocument(data)
        text = "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
        got, reasons = classify(None, text, "scan.pdf")
        assert got == g.kind, (g.kind, reasons)


def test_other_documents() -> None:
    assert classify(read_docx(fg.make_commitment(seed=1).data), "", "a.docx")[0] == Kind.commitment
    assert classify(read_docx(fg.make_recommendation(seed=1).data), "", "a.docx")[0] == Kind.recommendation
    for seed in range(5):
        assert classify(None, fg.license_text(seed=seed, noisy=True), "IMG_2231.jpg")[0] == Kind.license
    assert classify(None, fg.institution_certificate_text(), "scan.pdf")[0] == Kind.license
    for kind in ("patent", "software", "award", "test_report", "usage"):
        got, reasons = classify(None, fg.evidence_text(kind), "材料.pdf")
        assert got == Kind.evidence, (kind, reasons)


def test_form_with_commitment_page_is_still_the_form() -> None:
    g = fg.make_form(Kind.form_model, 3)
    got, _ = classify(read_docx(g.data), "", "承诺书.docx")  # misleading filename too
    assert got == Kind.form_model


@pytest.mark.parametrize(
    ("filename", "kind"),
    [
        ("附件1-申报书.docx", Kind.form_scenario),
        ("附件2.docx", Kind.form_model),
        ("附件3 平台.pdf", Kind.form_platform),
        ("附件4.doc", Kind.form_terminal),
        ("附件5汇总表.xlsx", Kind.summary),
        ("承诺书.pdf", Kind.commitment),
        ("附件1 营业执照.pdf", Kind.license),
        ("推荐意见.pdf", Kind.recommendation),
        ("发明专利证书.jpg", Kind.evidence),
        ("附件10.pdf", Kind.other),
        ("IMG_001.jpg", Kind.evidence),
        ("readme.txt", Kind.other),
    ],
)
def test_filename_only_when_content_is_silent(filename: str, kind: Kind) -> None:
    got, reasons = classify(None, "", filename)
    assert got == kind, reasons
    assert reasons


def test_content_beats_filename() -> None:
    text = fg.evidence_text("patent")
    assert classify(None, text, "附件1.pdf")[0] == Kind.evidence


def test_call_notice_is_not_a_form() -> None:
    notice = Path("/work/shared/call-notice.md")
    if not notice.exists():
        notice = Path(__file__).resolve().parents[2] / "shared" / "call-notice.md"
    if not notice.exists():
        pytest.fail("shared/call-notice.md missing")
    got, reasons = classify(None, notice.read_text(encoding="utf-8"), "通知.pdf")
    assert got == Kind.other, reasons
