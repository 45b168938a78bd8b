"""The parser pool: persistent workers, per-call timeout and memory limit, fast for small documents."""

from __future__ import annotations

import pytest

from parsers.documents import ParseOptions
from parsers.sandbox import InProcessParser, ParserPool
from parsers.types import Format
from tests import scangen


@pytest.fixture(scope="module")
def pool() -> ParserPool:
    with ParserPool(ParseOptions(time_limit_s=60, memory_limit_mb=2048, ocr=False), workers=1) as p:
        yield p  # type: ignore[misc]


def test_pool_reuses_its_worker_process(pool: ParserPool) -> None:
    xxe = scangen.xxe_docx()
    d = pool.parse(xxe, "a.docx")
    assert d.format == Format.docx and "root:" not in d.text
    before = {w.proc.pid for w in pool._all}
    for _ in range(50):
        assert pool.parse(xxe, "a.docx").format == Format.docx
    # One persistent worker served every document: no process is started per document (speed is
    # measured in bench/bench_documents.py, not here).
    assert {w.proc.pid for w in pool._all} == before and len(before) == 1


def test_timeout_kills_and_replaces_worker() -> None:
    opts = ParseOptions(time_limit_s=0.5, ocr=True)
    big = scangen.images_to_pdf([scangen.red_decoy_page(i) for i in range(3)])
    with ParserPool(opts, workers=1) as p:
        p.parse(b"warm", "x.txt")
        d = p.parse(big, "slow.pdf")
        assert d.unreadable and "timed out after 0.5 s" in d.problems[0].detail
        assert p.parse(b"hello", "ok.txt").problems == []  # replacement worker serves


def test_memory_limit() -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (9000, 9000), (255, 255, 255)).save(buf, "PNG")
    opts = ParseOptions(memory_limit_mb=700, max_image_pixels=200_000_000, ocr=False, seal=True)
    with ParserPool(opts, workers=1) as p:
        d = p.parse(buf.getvalue(), "huge.png")
        assert d.unreadable and "memory" in d.problems[0].detail
        assert p.parse(b"hello", "ok.txt").problems == []


def test_in_process_parser() -> None:
    with InProcessParser(ParseOptions(ocr=False)) as p:
        assert p.parse(b"", "e.pdf").unreadable
