"""The parser pool: persistent workers, per-call timeout and memory limit, fast for small documents."""

from __future__ import annotations

import time
from pathlib import Path

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


def test_workers_do_not_outlive_a_killed_daemon(tmp_path: Path) -> None:
    """A daemon SIGKILLed mid-parse leaves no parser worker behind, and none prints a traceback."""
    import signal
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "daemon.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from parsers.documents import ParseOptions
        from parsers.sandbox import ParserPool
        from tests import scangen
        if __name__ == "__main__":
            pool = ParserPool(ParseOptions(time_limit_s=120, ocr=True), workers=1)
            print(" ".join(str(w.proc.pid) for w in pool._all), flush=True)
            from PIL import Image
            import io
            pages = [Image.open(io.BytesIO(scangen.license_image(f"武汉测试{{i}}科技有限公司", "91420100MA4KX1234X",
                                                              seed=i))) for i in range(8)]
            big = scangen.images_to_pdf(pages)
            print("parsing", flush=True)
            pool.parse(big, "scan.pdf")  # seconds of OCR: killed in the middle of it
    """)
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline().split()[0])  # type: ignore[union-attr]
    assert proc.stdout.readline().strip() == "parsing"  # type: ignore[union-attr]
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Without a parent the worker must stop at once, not finish its OCR first (that takes seconds more).
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and Path(f"/proc/{worker}").exists():
        status = Path(f"/proc/{worker}/status").read_text() if Path(f"/proc/{worker}/status").exists() else ""
        if "zombie" in status:
            break
        time.sleep(0.2)
    alive = Path(f"/proc/{worker}/status").exists() and "zombie" not in Path(f"/proc/{worker}/status").read_text()
    assert not alive, "the parser worker outlived its daemon"
    assert "Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
