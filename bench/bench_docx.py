"""Benchmark: field accuracy and docs/s of read_docx + classify + extract_fields vs a python-docx walk.

Run: .venv/bin/python bench/bench_docx.py [--docs 240] [--repeat 3]
Targets: >= 99 % of fields exact, >= 50 docs/s on one core.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docx

from parsers.classify import classify
from parsers.extract import extract_fields
from parsers.word import read_docx
from tests.formgen import FORM_KINDS, SUMMARY_VARIANTS, VARIANTS, GeneratedForm, make_form, make_summary


def generate(n: int) -> list[GeneratedForm]:
    """n documents cycling through the 4 forms × every variant and the summary variants."""
    cases: list[tuple[Any, str]] = [(k, v) for k in FORM_KINDS for v in VARIANTS]
    cases += [("summary", v) for v in SUMMARY_VARIANTS]
    out = []
    seed = 0
    while len(out) < n:
        for kind, variant in cases:
            if len(out) >= n:
                break
            out.append(
                make_summary(seed=seed, variant=variant)
                if kind == "summary"
                else make_form(kind, seed, variant)
            )
        seed += 1
    return out


def pipeline(g: GeneratedForm) -> tuple[Any, dict[str, Any]]:
    layout = read_docx(g.data)
    kind, _ = classify(layout, "", "document.docx")
    fields, _ = extract_fields(kind, layout) if kind == g.kind else ({}, [])
    return kind, fields


def python_docx_walk(data: bytes) -> int:
    """The baseline: open with python-docx and visit every paragraph and cell (de-duplicated)."""
    d = docx.Document(io.BytesIO(data))
    n = sum(len(p.text) for p in d.paragraphs)
    for t in d.tables:
        seen = set()
        for row in t.rows:
            for c in row.cells:
                if id(c._tc) in seen:
                    continue
                seen.add(id(c._tc))
                n += len(c.text)
    return n


def _flatten(prefix: str, v: Any) -> dict[str, Any]:
    if isinstance(v, list) and v and isinstance(v[0], dict):
        out: dict[str, Any] = {}
        for i, item in enumerate(v):
            for k, x in item.items():
                out[f"{prefix}[{i}].{k}"] = x
        return out
    return {prefix: v}


def accuracy(
    docs: list[GeneratedForm], results: list[tuple[Any, dict[str, Any]]]
) -> tuple[int, int, int, list[str]]:
    exact = total = kinds_ok = 0
    misses: list[str] = []
    for g, (kind, fields) in zip(docs, results, strict=True):
        kinds_ok += kind == g.kind
        want: dict[str, Any] = {}
        got: dict[str, Any] = {}
        for k, v in g.expected_fields.items():
            want.update(_flatten(k, v))
        for k, v in fields.items():
            got.update(_flatten(k, v))
        for k in set(want) | set(got):
            total += 1
            if want.get(k) == got.get(k):
                exact += 1
            elif len(misses) < 10:
                misses.append(
                    f"{g.kind.value}/{g.variant}/{g.seed} {k}: "
                    f"got {got.get(k)!r:.60} want {want.get(k)!r:.60}"
                )
    return exact, total, kinds_ok, misses


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=240)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    docs = generate(args.docs)
    gen_s = time.perf_counter() - t0
    size_kb = statistics.mean(len(g.data) for g in docs) / 1024

    ours, base = [], []
    results: list[tuple[Any, dict[str, Any]]] = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        results = [pipeline(g) for g in docs]
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        for g in docs:
            python_docx_walk(g.data)
        base.append(time.perf_counter() - t)
    ours_s, base_s = min(ours), min(base)
    exact, total, kinds_ok, misses = accuracy(docs, results)

    n = len(docs)
    rows = [
        (
            "documents",
            f"{n} ({len(FORM_KINDS)} forms x {len(VARIANTS)} variants + summary; {size_kb:.0f} KB avg)",
        ),
        ("kind correct", f"{kinds_ok}/{n} ({100 * kinds_ok / n:.1f} %)"),
        ("fields exact", f"{exact}/{total} ({100 * exact / total:.2f} %)   target >= 99 %"),
        (
            "read+classify+extract",
            f"{n / ours_s:.0f} docs/s ({1000 * ours_s / n:.2f} ms/doc)   target >= 50 docs/s",
        ),
        ("python-docx open+walk", f"{n / base_s:.0f} docs/s ({1000 * base_s / n:.2f} ms/doc)"),
        ("ratio (ours / python-docx)", f"{base_s / ours_s:.1f}x faster"),
        ("fixture generation", f"{gen_s:.1f} s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'metric':<{width}}  value")
    print(f"{'-' * width}  {'-' * 60}")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    for m in misses:
        print("  miss:", m)
    ok = exact / total >= 0.99 and n / ours_s >= 50
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
