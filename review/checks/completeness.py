"""Completeness rules (SPEC 4): the Word form, the PDF form, the 承诺书, the licence, proof materials."""

from __future__ import annotations

from collections.abc import Iterator

from parsers.types import Problem
from review.checks import problem, rule
from review.checks.deadline import item_sources
from review.model import AppView, CheckContext


@rule("missing_word", "missing_pdf")
def missing_form_versions(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """The call asks for the form twice: as Word and as the signed, stamped PDF scan."""
    if not app.versions("word"):
        yield problem("missing_word", "未收到申报书 Word 版（.docx / .doc）")
    if not app.versions("pdf"):
        yield problem("missing_pdf", "未收到申报书 PDF 盖章扫描件")


@rule("missing_commitment")
def missing_commitment(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """A separate 承诺书, a 承诺书 page inside the form's PDF, or the unit's 承诺书 sent with another
    of its applications."""
    if not item_sources(app, "commitment", ctx):
        yield problem("missing_commitment", "未收到承诺书（单独文件或 PDF 扫描件中的承诺书页均未找到）")


@rule("missing_license")
def missing_license(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """One licence copy serves all of a unit's applications, when it came on time."""
    if not item_sources(app, "license", ctx):
        yield problem("missing_license", "未收到营业执照（事业单位法人证书）副本复印件")


@rule("missing_evidence")
def missing_evidence(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """Proof materials belong to one project: another application's do not count."""
    if not app.versions("evidence"):
        yield problem("missing_evidence", "未收到证明材料（专利、软著、获奖、检测报告、运行证明等）")
