"""Word reader: layout fidelity (ticks, merges, nesting), hostile and real files, .doc via LibreOffice."""

from __future__ import annotations

import io
import os
from pathlib import Path

import docx
import pytest

from parsers.classify import classify
from parsers.extract import extract_fields
from parsers.layout import TICKED, UNTICKED, Table
from parsers.word import WordError, convert_batch, convert_legacy, read_docx
from tests.formgen import FORM_KINDS, make_form, make_summary, to_doc

REALWORLD = Path(os.environ.get("INTAKE_REALWORLD", "/work/shared/realworld"))
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _realworld(rel: str) -> Path:
    p = REALWORLD / rel
    if not p.exists():
        pytest.fail(f"realworld corpus missing: {p} (set INTAKE_REALWORLD)")
    return p


@pytest.mark.parametrize(
    "variant",
    [
        "plain",
        "tick_square",
        "tick_check",
        "tick_x",
        "tick_wingdings",
        "tick_wingdings2",
        "tick_pua",
        "tick_w14",
        "tick_legacy",
    ],
)
def test_tick_styles_become_canonical_marks(variant: str) -> None:
    g = make_form("form_scenario", 0, variant)
    layout = read_docx(g.data)
    org_type = next(row[1] for t in layout.tables for row in t.rows if row and row[0] == "单位性质")
    assert org_type.count(TICKED) == 1 and org_type.count(UNTICKED) == 6, org_type
    assert f"{TICKED}{g.expected_fields['org_type']}" in org_type.replace(" ", "")
    assert "\uf052" not in layout.text() and "FORMCHECKBOX" not in layout.text()


def test_merged_cells_read_once_and_vertical_continuations_omitted() -> None:
    g = make_form("form_scenario", 0, "merged")
    rows = read_docx(g.data).tables[0].rows
    name_row = next(r for r in rows if r[0] == "单位名称")
    assert name_row == ["单位名称", g.expected_fields["org_name"]]
    leader = next(r for r in rows if "负责人姓名" in r)
    contact = next(r for r in rows if "联系人姓名" in r)
    assert leader[0] == "申报人员" and contact[0] == "联系人姓名"  # the rowspan's continuation is gone


def test_nested_table_is_lifted_out() -> None:
    g = make_form("form_model", 0, "nested")
    top = [b for b in read_docx(g.data).blocks if isinstance(b, Table)]
    assert top[0].nested and top[0].nested[0].rows[0][0] == "单位名称"
    assert top[0].rows == [[""]]  # the outer cell keeps only its own (empty) text


def test_line_breaks_inside_cells_are_kept() -> None:
    d = docx.Document()
    c = d.add_table(rows=1, cols=2).cell(0, 1)
    c.paragraphs[0].add_run("武汉某某").add_break()
    c.paragraphs[0].add_run("有限公司")
    c.add_paragraph("第二段")
    buf = io.BytesIO()
    d.save(buf)
    assert read_docx(buf.getvalue()).tables[0].rows[0][1] == "武汉某某\n有限公司\n第二段"


def test_headers_and_footers_are_ignored() -> None:
    layout = read_docx(_realworld("docs/python_docx/hdr-header-footer.docx").read_bytes())
    assert layout.paragraphs == ["section with header", "section without header of its own."]
    assert "header" not in read_docx(_realworld("docs/poi/HeaderFooterUnicode.docx").read_bytes()).text()[:0]


def test_poi_checkboxes() -> None:
    text = read_docx(_realworld("docs/poi/checkboxes.docx").read_bytes()).text()
    assert f"unchecked: {UNTICKED}" in text and f"Or checked: {TICKED}" in text


@pytest.mark.parametrize(
    "name",
    [
        "ExternalEntityInText_XXE.docx",
        "ContentTypeHasEntities.ooxml.docx",
        "CorePropertiesHasEntities.ooxml.docx",
        "PackageRelsHasEntities.ooxml.docx",
    ],
)
def test_xxe_and_entities_are_not_resolved(name: str) -> None:
    data = _realworld(f"hostile/{name}").read_bytes()
    try:
        layout = read_docx(data)
    except WordError as e:
        assert e.reason
        return
    text = layout.text()
    assert "poi.apache.org" not in text and "testent" not in text
    assert "<!DOCTYPE" not in text and "ENTITY" not in text
    assert len(text) < 1000  # nothing expanded
    if name.startswith("External"):
        assert text == 'Here should not be the POI web site: ""'


def test_xml_bomb_and_non_word_packages_are_refused() -> None:
    for name in ("poc-xmlbomb.xlsx", "poc-xmlbomb-empty.xlsx", "invalid_22bytes.xlsx"):
        with pytest.raises(WordError) as e:
            read_docx(_realworld(f"hostile/{name}").read_bytes())
        assert e.value.reason


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("encrypted_password-is-pass.docx", "password"),
        ("lockfile_~$附件1.docx", "lock"),
        ("crash-517626e8.docx", "ZIP"),
        ("empty.doc", ".doc"),
    ],
)
def test_unreadable_files_say_why(name: str, words: str) -> None:
    with pytest.raises(WordError) as e:
        read_docx(_realworld(f"hostile/{name}").read_bytes())
    assert words.lower() in e.value.reason.lower()


def test_empty_bytes() -> None:
    with pytest.raises(WordError, match="empty"):
        read_docx(b"")


def _corpus(patterns: list[str]) -> list[Path]:
    files: list[Path] = []
    for pat in patterns:
        files += sorted(REALWORLD.glob(pat))
    if not files:
        pytest.fail(f"realworld corpus missing under {REALWORLD} (set INTAKE_REALWORLD)")
    return files


def test_every_real_docx_reads_or_fails_clearly() -> None:
    files = _corpus(["docs/**/*.docx", "docs/**/*.docm", "hostile/*.docx", "hostile/*.doc"])
    read = failed = 0
    for f in files:
        try:
            layout = read_docx(f.read_bytes())
        except WordError as e:
            assert e.reason and len(e.reason) > 10, f
            failed += 1
            continue
        read += 1
        _kind, reasons = classify(layout, "", f.name)
        assert reasons, f
    assert read >= 20 and failed >= 10


def test_every_real_doc_converts_or_fails_clearly() -> None:
    files = _corpus(["docs/**/*.doc", "hostile/*.doc"])
    converted = 0
    for f in files:
        try:
            layout = read_docx(convert_legacy(f.read_bytes(), f.suffix, timeout=90))
        except WordError as e:
            assert e.reason and len(e.reason) > 10, f
            continue
        converted += 1
        _kind, reasons = classify(layout, "", f.name)
        assert reasons, f
    assert converted >= 4


def test_real_wps_doc_keeps_spaced_labels_and_boxes() -> None:
    data = _realworld("docs/cn_forms/gongjijin_申请表.doc").read_bytes()
    layout = read_docx(convert_legacy(data, ".wps", timeout=90))
    assert layout.tables and "申请" in layout.text()


def test_missing_soffice_is_a_clear_error() -> None:
    with pytest.raises(WordError, match="LibreOffice"):
        convert_legacy(OLE_MAGIC + b"\0" * 512, ".doc", soffice="/nonexistent/soffice")


def test_doc_round_trip_extracts_exactly() -> None:
    """Every template in every tick style and layout habit, saved as Word 97 .doc and read back."""
    variants = [
        "plain",
        "tick_wingdings",
        "tick_wingdings2",
        "tick_w14",
        "tick_legacy",
        "merged",
        "nested",
        "other_text",
        "linebreaks",
        "mixed",
    ]
    gens = [make_form(k, 5, v) for k in FORM_KINDS for v in variants]
    gens.append(make_summary(seed=5))
    docs = to_doc([g.data for g in gens])
    assert all(d[:8] == OLE_MAGIC for d in docs)
    back = convert_batch([(d, ".doc") for d in docs], "docx", timeout=300)
    for g, b in zip(gens, back, strict=True):
        assert b is not None, (g.kind, g.variant)
        layout = read_docx(b)
        got, _ = extract_fields(g.kind, layout)
        assert got == g.expected_fields, (g.kind, g.variant)
        assert classify(layout, "", "x.doc")[0] == g.kind


def test_convert_legacy_one_file() -> None:
    g = make_form("form_terminal", 7, "plain")
    out = convert_legacy(to_doc(g.data), ".wps")  # a .wps saved as Word 97 is a .doc
    got, _ = extract_fields("form_terminal", read_docx(out))
    assert got == g.expected_fields
