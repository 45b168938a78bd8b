"""Benchmark: field accuracy per format and documents/s on one core, against the raw library calls."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

KEY = ("org_name", "credit_code", "project_name")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3, help="seeds per template x variant (docx + PDF each)")
    ap.add_argument("--scans", type=int, default=8, help="scanned PDFs to OCR")
    args = ap.parse_args()

    import numpy as np
    import pypdfium2 as pdfium

    from parsers import ocr
    from parsers.documents import ParseOptions, parse_document
    from parsers.types import Kind
    from tests.formgen import FORM_KINDS, VARIANTS
    from tests.scangen import form_pdfs, render_pdf, scan_pdf

    cases = [(k.value, v, s) for s in range(args.seeds) for k in FORM_KINDS for v in VARIANTS]
    pairs = form_pdfs(cases)
    opts = ParseOptions(ocr=False)
    for fmt in ("docx", "pdf_text"):
        good = total = 0
        t_ours = t_raw = 0.0
        for g, pdf in pairs:
            data = g.data if fmt == "docx" else pdf
            t = time.perf_counter()
            d = parse_document(data, "f." + ("docx" if fmt == "docx" else "pdf"), options=opts)
            t_ours += time.perf_counter() - t
            if fmt == "pdf_text":
                t = time.perf_counter()
                doc = pdfium.PdfDocument(pdf)
                for page in doc:
                    page.get_textpage().get_text_bounded()
                t_raw += time.perf_counter() - t
            for k, v in g.expected_fields.items():
                total += 1
                good += d.fields.get(k) == v
        n = len(pairs)
        line = f"{fmt:9s} docs={n} fields={good}/{total} ({100 * good / total:.2f} %) {n / t_ours:.1f} docs/s"
        if t_raw:
            line += f"  raw pypdfium2 text: {n / t_raw:.1f} docs/s  ratio ours/raw time {t_ours / t_raw:.1f}x"
        print(line)

    scans = pairs[: args.scans]
    good = total = 0
    t_ocr = t_raw = 0.0
    pages = 0
    eng = ocr.get_engine()
    for i, (g, pdf) in enumerate(scans):
        scan = scan_pdf(pdf, org_name=g.expected_fields["org_name"], seed=i, max_pages=4)
        d = parse_document(scan, "scan.pdf", options=ParseOptions(soffice=None))
        t_ocr += d.elapsed
        pages += 4
        ok_kind = d.kind == Kind(g.kind)
        total += 4
        good += ok_kind + sum(d.fields.get(k) == g.expected_fields.get(k) for k in KEY)
        img = render_pdf(scan, dpi=120, pages=[0])[0]
        t = time.perf_counter()
        eng(np.asarray(img)[:, :, ::-1])
        t_raw += time.perf_counter() - t
    if scans:
        print(
            f"pdf_scan  docs={len(scans)} key fields={good}/{total} ({100 * good / total:.1f} %) "
            f"{t_ocr / len(scans):.2f} s/doc ({t_ocr / pages:.2f} s/page over 4 pages)  "
            f"raw rapidocr full cover page: {t_raw / len(scans):.2f} s"
        )


if __name__ == "__main__":
    main()
