"""OCR of scanned forms: bundled models only (no network), the four key fields, seal, 承诺书 page."""

from __future__ import annotations

import random
import socket
import warnings
from pathlib import Path
from typing import Any

import pytest

import parsers.ocr as ocr
from parsers.documents import ParseOptions, parse_document
from parsers.types import Format, Kind
from parsers.validators import is_valid_credit_code
from tests.formgen import credit_code
from tests.scangen import form_pdfs, scan_pdf

# 16 scans, four of each form, each from its own seed and applicant habit; every fourth one unstamped.
KINDS = ("form_scenario", "form_model", "form_platform", "form_terminal")
HABITS = (("plain", 1), ("linebreaks", 2), ("joint", 3), ("colon_in_label", 4))
CASES = [(k, v, s + 10 * n) for n, k in enumerate(KINDS) for v, s in HABITS]
KEY = ("org_name", "credit_code", "project_name")


def test_models_ship_inside_the_package() -> None:
    import rapidocr_onnxruntime

    root = Path(rapidocr_onnxruntime.__file__).parent
    files = ocr.model_files()
    assert len(files) >= 2 and all(
        Path(f).is_relative_to(root) and Path(f).stat().st_size > 1000 for f in files
    )


@pytest.fixture(scope="module")
def scans() -> list[tuple[Any, bool, bytes]]:
    out = []
    for i, (g, pdf) in enumerate(form_pdfs(CASES)):
        stamped = i % 4 != 1
        scan = scan_pdf(pdf, org_name=g.expected_fields["org_name"], seal=stamped, seed=100 + i, max_pages=4)
        out.append((g, stamped, scan))
    return out


@pytest.fixture(scope="module")
def parsed(scans: list, request: pytest.FixtureRequest) -> list[tuple[Any, bool, Any]]:
    """Every scan parsed once (OCR is ~1 s a page), with the network cut while the models load and run."""
    mp = pytest.MonkeyPatch()

    def no_network(*a: object, **k: object) -> None:
        raise AssertionError("network access attempted during OCR")

    mp.setattr(socket, "socket", no_network)
    mp.setattr(socket, "create_connection", no_network)
    mp.setattr(ocr, "_ENGINE", None)  # load the models with the network cut too
    opts = ParseOptions(ocr=True, soffice=None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [(g, stamped, parse_document(scan, "扫描件.pdf", options=opts)) for g, stamped, scan in scans]
    finally:
        mp.undo()


def test_scans_parse_offline_as_scans(parsed: list) -> None:
    for g, stamped, d in parsed:
        assert d.format == Format.pdf_scan and d.ocr_used, (g.kind, g.variant)
        assert d.seal is stamped, (g.kind, g.variant)
        assert d.has_commitment_page, (g.kind, g.variant)


def test_key_fields_at_least_95_percent(parsed: list) -> None:
    # The four key fields of a scan: form kind, org name, credit code, project name.
    good = total = 0
    misses = []
    for g, _, d in parsed:
        checks = {"kind": (d.kind, Kind(g.kind))} | {k: (d.fields.get(k), g.expected_fields.get(k)) for k in KEY}
        for name, (got, want) in checks.items():
            total += 1
            if got == want:
                good += 1
            else:
                misses.append((g.kind.value, g.variant, g.seed, name, got, want))
    assert good / total >= 0.95, (f"{good}/{total}", misses)


def test_only_the_pages_that_matter_are_read(parsed: list) -> None:
    # Cover, table 一 and the 承诺书 page; the pages between them are not OCR'd.
    for g, _, d in parsed:
        read = [w for w in d.warnings if "OCR read" in w]
        assert read and int(read[0].split("OCR read ")[1].split()[0]) <= 3, (g.kind, g.variant, d.warnings)


def test_credit_code_repair() -> None:
    assert ocr.find_credit_code("统一社会信用代码 9142O1OOMA4K12345X") == "91420100MA4K12345X"
    assert ocr.find_credit_code("no code here") is None
    # Letters the alphabet leaves out are always misreadings; a code that fails its check stays as read
    # when no single look-alike swap (or more than one) makes it valid.
    assert ocr.repair_credit_code("9142O1OOMA4K12345X") == "91420100MA4K12345X"
    assert ocr.repair_credit_code("9142011") is None


def test_credit_code_look_alikes_fixed_by_the_check_character() -> None:
    rng = random.Random(7)
    swaps = {"0": "D", "D": "0", "8": "B", "B": "8", "6": "G", "G": "6", "1": "L", "7": "T", "T": "7", "4": "A"}
    fixed = kept = wrong = 0
    for _ in range(300):
        code = credit_code(rng)
        pos = [i for i, c in enumerate(code[:17]) if c in swaps]
        if not pos:
            continue
        i = rng.choice(pos)
        misread = code[:i] + swaps[code[i]] + code[i + 1 :]
        got = ocr.repair_credit_code(misread)
        if got == code:
            fixed += 1
        elif got == misread or (got is not None and not is_valid_credit_code(got)):
            kept += 1  # ambiguous: left for the checksum check to flag
        else:
            wrong += 1
    assert wrong == 0 and fixed >= 0.8 * (fixed + kept), (fixed, kept, wrong)
