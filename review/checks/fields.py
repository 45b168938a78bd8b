"""Field rules (SPEC 4) on the form of record: required fields, credit code, phones, joint applicants,
the 附件4 产品简介 length."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from parsers.types import Problem
from parsers.validators import check_credit_code, is_valid_phone, joint_applicant_problem, summary_too_long
from review.checks import problem, rule
from review.checks._common import field_label, form_of_record, is_blank, label_for, ocr_note, schema_of, text_of
from review.model import AppView, CheckContext

PHONE_KEYS = ("leader_phone", "contact_phone")


@rule("missing_field")
def missing_fields(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """One problem per blank required field of the form's schema (parsers/forms/*.toml)."""
    schema = schema_of(app.form_type)
    if schema is None:
        return
    doc = form_of_record(app, ctx)
    if doc is None:
        # No form yielded a field. Without a readable form, missing_word / missing_pdf /
        # unreadable_attachment already say why, and twenty "blank field" errors would only bury them;
        # a form that opened but yielded nothing does have every required field blank.
        readable = [d for d in (app.of_record("word", ctx.cutoff), app.of_record("pdf", ctx.cutoff)) if d]
        readable = [d for d in readable if not d.unreadable]
        if not readable:
            return
        doc = readable[0]
    note = ocr_note(doc)
    for spec in schema.fields:
        if spec.required and is_blank(doc.fields.get(spec.key)):
            yield problem("missing_field", f"必填项为空：{field_label(spec)}（{spec.key}）{note}")


@rule("invalid_credit_code")
def invalid_credit_code(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """GB 32100-2015 check character; some real early-issued codes fail it, so staff may waive."""
    doc = form_of_record(app, ctx)
    raw = text_of(doc.fields.get("credit_code")) if doc else None
    if raw is None:
        return  # blank: missing_field
    verdict = check_credit_code(raw)
    if not verdict.ok:
        yield problem("invalid_credit_code", verdict.describe() + ocr_note(doc))


@rule("invalid_phone")
def invalid_phone(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """Not a plausible mainland number (mobile, or area code + local number)."""
    doc = form_of_record(app, ctx)
    if doc is None:
        return
    for key in PHONE_KEYS:
        raw = text_of(doc.fields.get(key))
        if raw is not None and not is_valid_phone(raw):
            yield problem(
                "invalid_phone",
                f"{label_for(app.form_type, key)}（{key}）“{raw}”不是有效的电话号码{ocr_note(doc)}",
            )


def _names(value: Any) -> list[str]:
    """Joint applicants as a list, also when a parser (or an applicant) left them as one text."""
    if is_blank(value):
        return []
    if isinstance(value, str):
        return [n for n in re.split(r"[、，,;；\n]+", value) if n.strip()]
    if isinstance(value, list | tuple):
        return [str(n) for n in value if not is_blank(n)]
    return [str(value)]


@rule("too_many_joint_applicants")
def too_many_joint_applicants(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """At most 3 units per project: the lead applicant and at most two joint applicants."""
    doc = form_of_record(app, ctx)
    if doc is None:
        return
    lead = text_of(doc.fields.get("applicant")) or text_of(doc.fields.get("org_name"))
    detail = joint_applicant_problem(lead, _names(doc.fields.get("joint_applicants")))
    if detail:
        yield problem("too_many_joint_applicants", detail)


@rule("summary_too_long")
def product_summary_too_long(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
    """附件4 产品简介: at most 300 characters."""
    if app.form_type != "terminal":
        return
    doc = form_of_record(app, ctx)
    detail = summary_too_long(text_of(doc.fields.get("product_summary"))) if doc else None
    if detail:
        yield problem("summary_too_long", f"{detail}（product_summary）")
