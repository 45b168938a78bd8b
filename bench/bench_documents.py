"""Benchmark: field accuracy per format and documents/s on one core, against the raw library calls."""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

KEY = ("org_name", "credit_code", "project_name")


def _one_core() -> None:
    # onnxruntime and pdfium may start threads of their own: pin the whole process to one CPU so that
    # docs/s means what a single parser worker gets.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _field_score(expected: dict[str, Any], got: dict[str, Any], misses: Counter[str], variant: str) -> tuple[int, int]:
    good = 0
    for k, v in expected.items():
        if got.get(k) == v:
            good += 1
        else:
            misses[f"{variant}:{k}"] += 1
    return good, len(expected)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3, help="seeds per template x variant (docx + PDF each)")
    ap.add_argument("--doc-seeds", type=int, default=1, help="seeds converted to legacy .doc as well")
    ap.add_argument("--scans", type=int, default=16, help="scanned PDFs to OCR (spread over the four forms)")
    ap.add_argument("--misses", action="store_true", help="print the missed fields per variant x key")
    args = ap.parse_args()
    _one_core()
    warnings.simplefilter("ignore")

    import docx as python_docx
    import numpy as np
    import pypdfium2 as pdfium

    from parsers import ocr
    from parsers.documents import ParseOptions, parse_document
    from parsers.types import Kind
    from parsers.word import convert_legacy
    from tests.formgen import FORM_KINDS, VARIANTS, to_doc
    from tests.scangen import form_pdfs, render_pdf, scan_pdf

    cases = [(k.value, v, s) for s in range(args.seeds) for k in FORM_KINDS for v in VARIANTS]
    pairs = form_pdfs(cases)
    doc_pairs = pairs[: len(FORM_KINDS) * len(VARIANTS) * args.doc_seeds]
    docs = to_doc([g.data for g, _ in doc_pairs]) if doc_pairs else []
    opts = ParseOptions(ocr=False)
    print(f"one core (pid {os.getpid()} pinned), OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print(f"{'format':9s} {'docs':>5s} {'fields exact':>22s} {'docs/s':>8s}  raw library call (same run)")
    total_docs = 0
    for fmt in ("docx", "doc", "pdf_text"):
        items = doc_pairs if fmt == "doc" else pairs
        good = total = 0
        t_ours = t_raw = 0.0
        misses: Counter[str] = Counter()
        for n, (g, pdf) in enumerate(items):
            data = {"docx": g.data, "doc": docs[n] if fmt == "doc" else b"", "pdf_text": pdf}[fmt]
            t = time.perf_counter()
            d = parse_document(data, f"f.{fmt.split('_')[0]}", options=opts)
            t_ours += time.perf_counter() - t
            t = time.perf_counter()
            if fmt == "pdf_text":
                pdoc = pdfium.PdfDocument(pdf)
                for page in pdoc:
                    page.get_textpage().get_text_bounded()
                pdoc.close()
            elif fmt == "docx":
                wd = python_docx.Document(io.BytesIO(g.data))
                _ = [p.text for p in wd.paragraphs] + [c.text for t_ in wd.tables for r in t_.rows for c in r.cells]
            else:
                convert_legacy(data, ".doc")
            t_raw += time.perf_counter() - t
            gd, tt = _field_score(g.expected_fields, d.fields, misses, g.variant)
            good += gd
            total += tt
        n = len(items)
        total_docs += n
        raw_name = {"docx": "python-docx load+walk", "doc": "LibreOffice .doc->.docx", "pdf_text": "pypdfium2 text"}
        print(
            f"{fmt:9s} {n:5d} {good:>6d}/{total:<6d} ({100 * good / total:6.2f} %) {n / t_ours:8.1f}  "
            f"{raw_name[fmt]}: {n / t_raw:.1f} docs/s, ours/raw time {t_ours / t_raw:.2f}x"
        )
        if args.misses and misses:
            print("   misses:", ", ".join(f"{k}={v}" for k, v in misses.most_common()))

    # Scans: every form, seeds and habits varied, every fourth one without a seal.
    kinds = [k.value for k in FORM_KINDS]
    habits = ("plain", "linebreaks", "joint", "colon_in_label", "spaced_labels", "merged", "mixed", "numbers")
    scan_cases = [(kinds[i % 4], habits[(i // 4) % len(habits)], 50 + i) for i in range(args.scans)]
    good = total = 0
    t_ours = t_raw = 0.0
    pages_read = 0
    page_log: list[tuple[int, float]] = []  # (page index, OCR seconds) of every page the parser OCR'd
    misses: Counter[str] = Counter()
    eng = ocr.get_engine()
    orig = ocr.ocr_image, ocr.read_label_rows

    def timed_ocr(*a: Any, **k: Any) -> Any:
        p = orig[0](*a, **k)
        page_log.append((p.index, p.elapsed))
        return p

    def timed_rows(*a: Any, **k: Any) -> Any:
        p, found = orig[1](*a, **k)
        page_log.append((p.index, p.elapsed))
        return p, found

    ocr.ocr_image, ocr.read_label_rows = timed_ocr, timed_rows  # type: ignore[assignment]
    try:
        for i, (g, pdf) in enumerate(form_pdfs(scan_cases)):
            scan = scan_pdf(pdf, org_name=g.expected_fields["org_name"], seal=i % 4 != 1, seed=200 + i, max_pages=4)
            before = len(page_log)
            t = time.perf_counter()
            d = parse_document(scan, "scan.pdf", options=ParseOptions(soffice=None))
            t_ours += time.perf_counter() - t
            read = [idx for idx, _ in page_log[before:]]
            pages_read += len(read)
            checks = [("kind", d.kind == Kind(g.kind))]
            checks += [(k, d.fields.get(k) == g.expected_fields.get(k)) for k in KEY]
            for name, ok in checks:
                total += 1
                good += ok
                if not ok:
                    misses[f"{g.variant}:{name}"] += 1
            # The raw call: rapidocr's full pipeline on each page image the parser OCR'd (same dpi).
            imgs = render_pdf(scan, dpi=ParseOptions().ocr_dpi, pages=read)
            t = time.perf_counter()
            for img in imgs:
                eng(np.ascontiguousarray(np.asarray(img)[:, :, ::-1]))
            t_raw += time.perf_counter() - t
    finally:
        ocr.ocr_image, ocr.read_label_rows = orig
    n = len(scan_cases)
    total_docs += n
    if n:
        page_times = [el for _, el in page_log]
        per_page = sum(page_times) / max(pages_read, 1)
        print(
            f"pdf_scan  {n:5d} {good:>6d}/{total:<6d} ({100 * good / total:6.2f} %) {n / t_ours:8.2f}  "
            f"key fields (kind, org, code, project); {pages_read} pages OCR'd\n"
            f"          OCR {per_page:.2f} s/page (median {statistics.median(page_times):.2f}, max "
            f"{max(page_times):.2f}); raw rapidocr on the same page images {t_raw / pages_read:.2f} s/page, "
            f"ours/raw {per_page / (t_raw / pages_read):.2f}x"
        )
        if args.misses and misses:
            print("   misses:", ", ".join(f"{k}={v}" for k, v in misses.most_common()))
    print(f"total documents: {total_docs}")


if __name__ == "__main__":
    main()
