"""libFuzzer/atheris harness: parse_document never raises, and every problem names the file it is about."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

T: dict[str, Any] = {}
# The file name matters to the dispatcher (ties, lock files, legacy routes): the input's last byte picks one.
NAMES = (
    "附件1_申报书.docx",
    "附件2.pdf",
    "营业执照.jpg",
    "材料.zip",
    "承诺书.doc",
    "汇总表.xlsx",
    "scan.png",
    "~$附件1.docx",
    "附件.rar",
    "说明.txt",
    "archive.7z",
    "noext",
)
# parse_document's catch-all: a library raised something its parser module did not expect. Not a crash of the
# daemon (the file is reported unreadable), but worth a look: kept as a finding.
_UNEXPECTED = re.compile(r"could not be parsed \((\w+)")


def _load() -> None:
    # Everything parse_document imports lazily is imported here, inside atheris' instrumentation: a module first
    # imported later (parsers.pdf inside _parse_pdf) would run uninstrumented and add no coverage feedback.
    import openpyxl  # noqa: F401
    import pdfminer  # noqa: F401
    import pdfplumber  # noqa: F401
    import PIL.Image  # noqa: F401
    import py7zr  # noqa: F401
    import rarfile  # noqa: F401

    from parsers import archives, classify, documents, extract, images, pdf, seal, sniff, types, word  # noqa: F401

    T["documents"], T["types"] = documents, types
    T["options"] = documents.ParseOptions(soffice=None, ocr=False, seal=True)


def _check(doc: Any, data: bytes) -> None:
    types = T["types"]
    assert isinstance(doc, types.ParsedDocument)
    name = doc.member_path or doc.filename
    for p in doc.problems:
        assert p.code == "unreadable_attachment", p
        assert name in p.detail, f"problem does not name {name!r}: {p.detail!r}"
        m = _UNEXPECTED.search(p.detail)
        if m:
            common.save_finding("document", f"unexpected-{m.group(1)}", data, p.detail)
    for m in doc.members:
        _check(m, data)


def one_input(data: bytes) -> None:
    documents = T["documents"]
    name = NAMES[data[-1] % len(NAMES)] if data else NAMES[0]
    doc = documents.parse_document(data, name, options=T["options"])
    _check(doc, data)


if __name__ == "__main__":
    common.run("document", one_input, limit=10.0, instrumented=_load)
