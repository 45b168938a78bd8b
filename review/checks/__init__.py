"""The registry of application checks (SPEC 4): rules as data, run in order by `run_checks`.

A rule is a function `Check = Callable[[AppView, CheckContext], Iterable[Problem]]`, pure (no I/O, no
clock), registered with `@rule(...)` naming the problem codes it may emit. Adding a rule is adding one
function (or one module in this package: modules not listed in `_ORDER` are loaded after those that are,
in name order). `PROBLEM_CODES` is the catalogue of every code with its severity and its Chinese name,
for exports, the CLI and the dashboard.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from parsers.types import Problem, Severity
from review.model import AppView, Check, CheckContext

log = logging.getLogger(__name__)

E, W = Severity.error, Severity.warning


@dataclass(frozen=True)
class CodeInfo:
    """One SPEC 4 problem code: its severity and what staff read instead of the code."""

    severity: Severity
    label: str


# Codes are a contract (exports, waivers, the ack texts): add, never rename.
PROBLEM_CODES: dict[str, CodeInfo] = {
    "late": CodeInfo(E, "逾期提交"),
    "late_revision": CodeInfo(W, "截止后提交的新版本（未采用）"),
    "missing_word": CodeInfo(E, "缺少申报书 Word 版"),
    "missing_pdf": CodeInfo(E, "缺少申报书 PDF 盖章扫描件"),
    "missing_commitment": CodeInfo(E, "缺少承诺书"),
    "missing_license": CodeInfo(E, "缺少营业执照（法人证书）复印件"),
    "missing_evidence": CodeInfo(W, "缺少证明材料"),
    "missing_field": CodeInfo(E, "必填项为空"),
    "invalid_credit_code": CodeInfo(E, "统一社会信用代码校验不通过"),
    "invalid_phone": CodeInfo(W, "电话号码无效"),
    "too_many_joint_applicants": CodeInfo(E, "联合申报单位超过3家"),
    "summary_too_long": CodeInfo(W, "产品简介超过300字"),
    "word_pdf_mismatch": CodeInfo(W, "Word 版与 PDF 版不一致"),
    "no_seal": CodeInfo(W, "未检测到公章"),
    "duplicate_direction": CodeInfo(E, "同一项目重复申报多个方向"),
    "cloud_attachment": CodeInfo(W, "云附件（超大附件）需下载"),
    "unreadable_attachment": CodeInfo(E, "附件无法打开或解析"),
    # Reconciliation with the paper log and the district 汇总表 (issue 5) emits these.
    "not_in_summary": CodeInfo(W, "未列入所在区汇总表"),
    "paper_missing": CodeInfo(E, "未登记纸质材料"),
    "paper_copies_short": CodeInfo(W, "纸质申报书不足2份"),
    # A rule that raised: the application must not look complete because a check could not run.
    "check_failed": CodeInfo(E, "检查规则出错"),
}


# The four directions (form types) as the call and the 附件5 tables name them.
FORM_TYPE_LABEL = {
    "scenario": "典型应用场景",
    "model": "模型和智能体",
    "platform": "公共服务平台",
    "terminal": "智能终端产品",
}


def code_label(code: str) -> str:
    """The Chinese name of a problem code (the code itself when unknown)."""
    info = PROBLEM_CODES.get(code)
    return info.label if info else code


@dataclass(frozen=True)
class Rule:
    """A registered check: its name (the function's), the codes it may emit, the function."""

    name: str
    codes: tuple[str, ...]
    fn: Check

    def __call__(self, app: AppView, ctx: CheckContext) -> Iterable[Problem]:
        return self.fn(app, ctx)


CHECKS: list[Rule] = []


def rule(*codes: str) -> Callable[[Check], Check]:
    """Register a check (in definition order) that may emit `codes`, each declared in PROBLEM_CODES."""
    unknown = [c for c in codes if c not in PROBLEM_CODES]
    if unknown or not codes:
        raise ValueError(f"declare problem codes in PROBLEM_CODES first: {unknown or 'none given'}")

    def register(fn: Check) -> Check:
        name = getattr(fn, "__name__", repr(fn))
        if any(r.name == name for r in CHECKS):
            raise ValueError(f"a check named {name} is already registered")
        CHECKS.append(Rule(name, tuple(codes), fn))
        return fn

    return register


def problem(code: str, detail: str) -> Problem:
    """A Problem with the catalogue's severity for `code` (so a rule cannot get a severity wrong)."""
    return Problem(code, PROBLEM_CODES[code].severity, detail)


def run_checks(app: AppView, ctx: CheckContext, checks: Iterable[Rule] | None = None) -> list[Problem]:
    """Every problem of one application, in registry order; a rule that raises yields `check_failed`."""
    out: list[Problem] = []
    for r in CHECKS if checks is None else checks:
        try:
            found = list(r(app, ctx))
            if found and any(p.code not in r.codes for p in found):
                undeclared = sorted({p.code for p in found} - set(r.codes))
                raise ValueError(f"emitted undeclared code(s) {undeclared}")
        except Exception as exc:
            # One odd document must not stop the other rules (nor the pipeline): staff see the failure.
            log.exception("check %s failed on application %s", r.name, app.receipt_no or app.id)
            out.append(problem("check_failed", f"检查规则 {r.name} 出错：{type(exc).__name__}: {exc}"))
            continue
        out.extend(found)
    return out


# Registration order is the order problems are listed in (deadline first: what staff look at first).
_ORDER = ("deadline", "completeness", "fields", "consistency", "mail")


def _load() -> None:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    for name in [*_ORDER, *(n for n in names if n not in _ORDER)]:
        importlib.import_module(f"{__name__}.{name}")


_load()

__all__ = [
    "CHECKS",
    "FORM_TYPE_LABEL",
    "PROBLEM_CODES",
    "CodeInfo",
    "Rule",
    "code_label",
    "problem",
    "rule",
    "run_checks",
]
