"""OCR of scanned forms: bundled models only (no network), the four key fields, seal, 承诺书 page."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import parsers.ocr as ocr
from parsers.documents import ParseOptions, parse_document
from parsers.types import Format, Kind
from tests.scangen import form_pdfs, scan_pdf

CASES = [(k, "plain", 1) for k in ("form_scenario", "form_model", "form_platform", "form_terminal")]
KEY = ("org_name", "credit_code", "project_name")


def test_models_ship_inside_the_package() -> None:
    import rapidocr_onnxruntime

    root = Path(rapidocr_onnxruntime.__file__).parent
    files = ocr.model_files()
    assert len(files) >= 2 and all(
        Path(f).is_relative_to(root) and Path(f).stat().st_size > 1000 for f in files
    )


@pytest.fixture(scope="module")
def scans() -> list[tuple[object, object, object]]:
    out = []
    for i, (g, pdf) in enumerate(form_pdfs(CASES)):
        stamped = i != 1  # one scan without a seal
        scan = scan_pdf(pdf, org_name=g.expected_fields["org_name"], seal=stamped, seed=i, max_pages=4)
        out.append((g, stamped, scan))
    return out


def test_scans_parse_offline(scans: list, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*a: object, **k: object) -> None:
        raise AssertionError("network access attempted during OCR")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    ocr._ENGINE = None  # load the models with the network cut too
    opts = ParseOptions(ocr=True, soffice=None)
    good = total = 0
    for g, stamped, scan in scans:
        d = parse_document(scan, "扫描件.pdf", options=opts)
        assert d.format == Format.pdf_scan and d.ocr_used
        assert d.kind == Kind(g.kind), d.kind_reasons
        assert d.seal is stamped
        assert d.has_commitment_page
        for k in KEY:
            total += 1
            good += d.fields.get(k) == g.expected_fields.get(k)
    # Measured 9/12 on these four scans: org name and credit code are read on every scan; the cover's
    # project name fails when it wraps over two lines or lies under the seal (see bench for the rate).
    assert good / total >= 0.75


def test_credit_code_repair() -> None:
    assert ocr.find_credit_code("统一社会信用代码 9142O1OOMA4K12345X") == "91420100MA4K12345X"
    assert ocr.find_credit_code("no code here") is None
