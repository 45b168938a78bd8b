"""Every file of the hostile / real-world corpus parses or yields a clear reason, within the pool's limits."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from parsers.documents import ParseOptions
from parsers.sandbox import ParserPool

REALWORLD = Path(os.environ.get("INTAKE_REALWORLD", "/work/shared/realworld"))
DIRS = ["hostile", "hostile/DANGEROUS_bombs", "docs/pdf_cjk", "docs/poi", "docs/python_docx", "archives"]


def _files() -> list[Path]:
    if not REALWORLD.is_dir():
        pytest.fail(f"realworld corpus missing at {REALWORLD} (set INTAKE_REALWORLD)")
    out: list[Path] = []
    for d in DIRS:
        p = REALWORLD / d
        if not p.is_dir():
            pytest.fail(f"realworld corpus incomplete: {p} missing")
        out += sorted(f for f in p.iterdir() if f.is_file())
    return out


@pytest.fixture(scope="module")
def pool() -> ParserPool:
    opts = ParseOptions(time_limit_s=60, memory_limit_mb=2048, ocr_max_pages=2)
    with ParserPool(opts, workers=1) as p:
        yield p  # type: ignore[misc]


def test_corpus(pool: ParserPool) -> None:
    files = _files()
    assert len(files) > 60
    report = []
    for f in files:
        t = time.perf_counter()
        d = pool.parse(f.read_bytes(), f.name)
        el = time.perf_counter() - t
        for doc in [d, *d.members]:
            for p in doc.problems:
                assert p.code == "unreadable_attachment" and len(p.detail) > len(doc.filename) + 4, (f, p)
        assert el < 65, f
        report.append(
            (f.name, d.format.value, d.kind.value, [p.detail for p in d.problems][:1], round(el, 2))
        )
    expect_unreadable = [
        "pdfplumber_password-example_pw-test.pdf",
        "encrypted_password-is-pass.docx",
        "encrypted_cryptoapi.doc",
        "zbsm_overlap_bomb.zip.bin",
        "rarfile_rar5-hpsw.rar",
        "pdfplumber_empty_0bytes.pdf",
    ]
    by_name = {r[0]: r for r in report}
    for name in expect_unreadable:
        assert by_name[name][3], (name, by_name[name])
    assert "encrypted" in by_name["encrypted_password-is-pass.docx"][3][0]
