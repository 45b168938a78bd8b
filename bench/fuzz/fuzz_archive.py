"""libFuzzer/atheris harness: archives and .docx packages are read within limits, with clean names, never raising."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

T: dict[str, Any] = {}


def _load() -> None:
    import py7zr  # noqa: F401  (imported lazily by parsers.archives: instrument it here)
    import rarfile  # noqa: F401

    from parsers import archives, sniff, word

    T["archives"], T["sniff"], T["word"] = archives, sniff, word
    T["limits"] = archives.ArchiveLimits(max_total_size=64 * 1024 * 1024, max_member_size=32 * 1024 * 1024)


def one_input(data: bytes) -> None:
    archives, sniff, word = T["archives"], T["sniff"], T["word"]
    ft = sniff.sniff(data).type
    kinds = (sniff.FileType.zip, sniff.FileType.rar, sniff.FileType.sevenzip)
    as_type = ft if ft in kinds else sniff.FileType.zip
    limits = T["limits"]
    res = archives.read_archive(data, as_type, limits)
    assert isinstance(res, archives.ArchiveResult)
    total = 0
    assert len(res.members) <= limits.max_members
    for m in res.members:
        parts = m.path.split("/")
        assert m.path and ".." not in parts and "" not in parts, f"unclean member path {m.path!r}"
        assert (m.data is None) != (m.problem is None), f"member {m.path!r}: data and problem"
        total += len(m.data or b"")
    assert total <= limits.max_total_size
    # The same bytes as a Word package: a Layout or WordError, never anything else.
    try:
        word.read_docx(data)
    except word.WordError as exc:
        assert exc.reason


if __name__ == "__main__":
    common.run("archive", one_input, limit=10.0, instrumented=_load)
