"""Consistency rules (SPEC 4): Word vs PDF of record, the red seal, one project in two directions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from rapidfuzz import fuzz

from parsers.types import Problem
from parsers.validators import normalize_credit_code, normalize_name
from review.checks import FORM_TYPE_LABEL, problem, rule
from review.checks._common import form_of_record, text_of
from review.model import AppView, CheckContext
from review.names import org_key, project_key

# Word and PDF are one document: names at or above this similarity (OCR noise) are the same name.
NAME_SIMILARITY = 90.0
# One organisation's project names in two directions at or above this are one project.
DIRECTION_SIMILARITY = 85.0
# Characters GB 32100 never uses in a credit code, which OCR reads for the digits they resemble.
_OCR_DIGITS = str.maketrans({"O": "0", "I": "1", "Z": "2", "S": "5"})


def _similarity(a: str, b: str, key: Any) -> float:
    """Best of the name keys (legal forms, city prefix, resubmission markers folded) and the plain
    normalised names: short keys make one OCR error weigh too much on their own."""
    if a == b:
        return 100.0  # the usual case: the PDF is the Word printed
    ka, kb = key(a), key(b)
    if ka and kb and ka == kb:
        return 100.0
    scores = [fuzz.ratio(normalize_name(a), normalize_name(b))]
    if ka and kb:
        scores.append(fuzz.ratio(ka, kb))
    return max(scores)


def _code(raw: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", normalize_credit_code(raw).translate(_OCR_DIGITS))


@rule("word_pdf_mismatch")
def word_pdf_mismatch(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """The Word and the PDF of record name another unit, code or project. A value missing on one side
    (OCR did not find it) is no disagreement."""
    word, pdf = app.of_record("word", ctx.cutoff), app.of_record("pdf", ctx.cutoff)
    if word is None or pdf is None or not word.fields or not pdf.fields:
        return
    diffs: list[str] = []

    def get(fields: dict[str, Any], *keys: str) -> str | None:
        for k in keys:
            if (v := text_of(fields.get(k))) is not None:
                return v
        return None

    for label, keys, key_fn in (
        ("单位名称", ("org_name", "applicant"), org_key),
        ("项目名称", ("project_name",), project_key),
    ):
        w, p = get(word.fields, *keys), get(pdf.fields, *keys)
        if w and p and _similarity(w, p, key_fn) < NAME_SIMILARITY:
            diffs.append(f"{label} Word 版“{w}”，PDF 版“{p}”")
    w, p = get(word.fields, "credit_code"), get(pdf.fields, "credit_code")
    if w and p and w != p and _code(w) != _code(p):
        diffs.append(f"统一社会信用代码 Word 版“{w}”，PDF 版“{p}”")
    if diffs:
        yield problem(
            "word_pdf_mismatch",
            f"Word 版《{word.filename}》与 PDF 版《{pdf.filename}》不一致：" + "；".join(diffs),
        )


@rule("no_seal")
def no_seal(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """The PDF of record was looked at for a red seal and none was found (None: not looked for)."""
    pdf = app.of_record("pdf", ctx.cutoff)
    if pdf is not None and pdf.seal is False:
        yield problem("no_seal", f"PDF 版《{pdf.filename}》未检测到红色公章，请人工核对是否盖章")


def _project(app: AppView, ctx: CheckContext) -> str | None:
    doc = form_of_record(app, ctx)
    return (text_of(doc.fields.get("project_name")) if doc else None) or app.project_name


@rule("duplicate_direction")
def duplicate_direction(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """The same unit submitted a similar project name in another direction (the call: 同一项目/产品原则上
    不得重复申报多个方向). Both applications get the problem."""
    mine = _project(app, ctx)
    if not mine:
        return
    for other in sorted(app.siblings, key=lambda s: (s.receipt_no or "", s.id or 0)):
        if other.form_type == app.form_type:
            continue
        theirs = _project(other, ctx)
        if not theirs:
            continue
        score = fuzz.ratio(project_key(mine) or "", project_key(theirs) or "")
        if score >= DIRECTION_SIMILARITY:
            receipt = other.receipt_no or "尚未编号"
            yield problem(
                "duplicate_direction",
                f"同一项目亦以“{FORM_TYPE_LABEL.get(other.form_type, other.form_type)}”方向申报："
                f"受理编号 {receipt}《{theirs}》（名称相似度 {score:.0f}）",
            )
