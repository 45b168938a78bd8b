"""The SPEC 4 check rules on hand-built applications: each rule, its edge cases, and the registry."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from parsers.schema import load_schema
from parsers.types import Format, Kind, Problem, Severity
from parsers.validators import uscc_check_char
from review.checks import CHECKS, PROBLEM_CODES, Rule, deadline, problem, rule, run_checks
from review.model import AppView, CheckContext, DocView, MessageView

CST = timezone(timedelta(hours=8))
DEADLINE = datetime(2026, 7, 7, 17, 0, tzinfo=CST)
CTX = CheckContext(deadline=DEADLINE)
EARLY = datetime(2026, 7, 1, 10, 0, tzinfo=CST)
ORG = "武汉智联城市科技有限公司"
CODE = "91420100MA4K12345" + uscc_check_char("91420100MA4K12345")
PROJECT = "基于多模态大模型的城市道路病害智能巡检系统"

_ids = itertools.count(1)


def msg(
    at: datetime = EARLY,
    *,
    sent: datetime | None = None,
    source: str = "internaldate",
    chain: tuple[str, ...] = (),
    subject: str = "申报材料",
    cloud: tuple[dict[str, Any], ...] = (),
    unreadable: tuple[str, ...] = (),
) -> MessageView:
    mid = next(_ids)
    return MessageView(
        id=mid,
        sha256=f"{mid:064x}",
        from_addr="applicant@qq.com",
        reply_to=(),
        subject=subject,
        sent_at=sent if sent is not None else at,
        received_at=at,
        received_source=source,
        cloud_links=cloud,
        received_chain=chain,
        unreadable=unreadable,
    )


def doc(
    kind: Kind,
    fmt: Format,
    m: MessageView,
    *,
    fields: dict[str, Any] | None = None,
    filename: str | None = None,
    seal: bool | None = None,
    commitment_page: bool = False,
    problems: list[dict[str, str]] | None = None,
) -> DocView:
    did = next(_ids)
    return DocView(
        id=did,
        message=m,
        kind=kind,
        format=fmt,
        filename=filename or f"{kind.value}-{did}.{fmt.value}",
        sha256=f"{did:064x}",
        fields=dict(fields or {}),
        text="",
        received_at=m.received_at,
        seal=seal,
        has_commitment_page=commitment_page,
        problems=list(problems or []),
    )


def good_fields(form_type: str, **overrides: Any) -> dict[str, Any]:
    """Every required field of the form's schema filled with a valid value."""
    schema = load_schema(Kind(f"form_{form_type}"))
    out: dict[str, Any] = {}
    for f in schema.fields:
        if not f.required:
            continue
        out[f.key] = {
            "phone": "027-85317173",
            "credit_code": CODE,
            "int": 12,
            "number_wan": 350.5,
            "number": 7.0,
            "date": "2026-06-30",
            "single_choice": f.choices[0] if f.choices else "x",
            "multi_choice": [f.choices[0]] if f.choices else ["x"],
            "list": ["某单位"],
            "section": f"{f.label}的内容。",
            "object": {"文本": 1.0},
        }.get(f.type, f"{f.label}内容")
    out.update(org_name=ORG, applicant=ORG, project_name=PROJECT)
    out.update(overrides)
    return out


def form_kind(form_type: str) -> Kind:
    return Kind(f"form_{form_type}")


def application(
    form_type: str = "scenario",
    *,
    at: datetime = EARLY,
    items: tuple[str, ...] = ("word", "pdf", "commitment", "license", "evidence"),
    fields: dict[str, Any] | None = None,
    pdf_fields: dict[str, Any] | None = None,
    seal: bool | None = True,
) -> AppView:
    """A complete application (everything on time, valid fields) unless told otherwise."""
    m = msg(at)
    f = fields if fields is not None else good_fields(form_type)
    docs: list[DocView] = []
    if "word" in items:
        docs.append(doc(form_kind(form_type), Format.docx, m, fields=f, filename="附件1 申报书.docx"))
    if "pdf" in items:
        docs.append(
            doc(
                form_kind(form_type),
                Format.pdf_text,
                m,
                fields=pdf_fields if pdf_fields is not None else f,
                filename="附件1 申报书（盖章扫描件）.pdf",
                seal=seal,
            )
        )
    if "commitment" in items:
        docs.append(doc(Kind.commitment, Format.docx, m, filename="承诺书.docx"))
    if "license" in items:
        docs.append(doc(Kind.license, Format.image, m, filename="营业执照.png"))
    if "evidence" in items:
        docs.append(doc(Kind.evidence, Format.pdf_text, m, filename="软著证书.pdf"))
    return AppView(form_type=form_type, org_key="智联城市科技", docs=docs, messages=[m])


def codes(app: AppView, ctx: CheckContext = CTX) -> list[str]:
    return [p.code for p in run_checks(app, ctx)]


def only(app: AppView, code: str, ctx: CheckContext = CTX) -> list[Problem]:
    return [p for p in run_checks(app, ctx) if p.code == code]


def add(app: AppView, d: DocView) -> DocView:
    app.docs.append(d)
    if d.message not in app.messages:
        app.messages.append(d.message)
    return d


# -- the registry ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("form_type", ["scenario", "model", "platform", "terminal"])
def test_a_complete_application_has_no_problems(form_type: str) -> None:
    assert run_checks(application(form_type), CTX) == []


def test_every_rule_declares_catalogued_codes_and_the_registry_order_is_stable() -> None:
    names = [r.name for r in CHECKS]
    assert names[:2] == ["late", "late_revision"]
    assert len(names) == len(set(names))
    declared = {c for r in CHECKS for c in r.codes}
    spec_codes = {
        "late", "late_revision", "missing_word", "missing_pdf", "missing_commitment", "missing_license",
        "missing_evidence", "missing_field", "invalid_credit_code", "invalid_phone",
        "too_many_joint_applicants", "summary_too_long", "word_pdf_mismatch", "no_seal",
        "duplicate_direction", "cloud_attachment", "unreadable_attachment",
    }  # fmt: skip
    assert declared == spec_codes
    assert declared <= set(PROBLEM_CODES)
    for code, info in PROBLEM_CODES.items():
        assert info.label and info.severity in (Severity.error, Severity.warning), code


def test_severities_follow_spec_section_4() -> None:
    errors = {c for c, i in PROBLEM_CODES.items() if i.severity == Severity.error}
    assert errors == {
        "late", "missing_word", "missing_pdf", "missing_commitment", "missing_license", "missing_field",
        "invalid_credit_code", "too_many_joint_applicants", "duplicate_direction", "unreadable_attachment",
        "paper_missing", "check_failed",
    }  # fmt: skip


def test_problems_are_listed_in_registry_order() -> None:
    app = application(items=("pdf",), seal=False)
    assert codes(app) == ["missing_word", "missing_commitment", "missing_license", "missing_evidence", "no_seal"]


def test_a_failing_rule_becomes_check_failed_and_the_others_still_run() -> None:
    def boom(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
        raise RuntimeError("odd document")
        yield  # pragma: no cover

    def liar(app: AppView, ctx: CheckContext) -> Iterator[Problem]:
        yield problem("no_seal", "x")

    rules = [Rule("boom", ("late",), boom), Rule("liar", ("late",), liar), *CHECKS]
    found = run_checks(application(items=("word", "pdf", "commitment", "license")), CTX, rules)
    assert [p.code for p in found] == ["check_failed", "check_failed", "missing_evidence"]
    assert found[0].severity == Severity.error
    assert "boom" in found[0].detail and "odd document" in found[0].detail
    assert "undeclared" in found[1].detail and "no_seal" in found[1].detail


def test_rule_registration_rejects_unknown_codes_and_duplicate_names() -> None:
    with pytest.raises(ValueError, match="PROBLEM_CODES"):
        rule("no_such_code")
    with pytest.raises(ValueError, match="PROBLEM_CODES"):
        rule()
    with pytest.raises(ValueError, match="already registered"):
        rule("late")(deadline.late)


def test_problem_takes_the_catalogue_severity() -> None:
    assert problem("late", "d") == Problem("late", Severity.error, "d")
    assert problem("late_revision", "d").severity == Severity.warning


# -- late --------------------------------------------------------------------------------------------------


def test_one_millisecond_before_the_deadline_is_on_time_and_17_00_00_000_is_late() -> None:
    assert codes(application(at=DEADLINE - timedelta(milliseconds=1))) == []
    late = only(application(at=DEADLINE), "late")
    assert len(late) == 1
    assert "2026-07-07 17:00:00（服务器接收时间 INTERNALDATE）" in late[0].detail


def test_utc_and_beijing_times_are_the_same_instants() -> None:
    before_utc = datetime(2026, 7, 7, 8, 59, 59, 999000, tzinfo=UTC)
    at_utc = datetime(2026, 7, 7, 9, 0, 0, tzinfo=UTC)
    assert codes(application(at=before_utc)) == []
    assert codes(application(at=at_utc)) == ["late"]
    # A deadline given in UTC is the same deadline.
    utc_ctx = CheckContext(deadline=DEADLINE.astimezone(UTC))
    assert codes(application(at=before_utc), utc_ctx) == []
    assert codes(application(at=at_utc), utc_ctx) == ["late"]
    # Shown to staff in Beijing time, with the milliseconds that decided it.
    detail = only(application(at=at_utc + timedelta(milliseconds=5)), "late")[0].detail
    assert "2026-07-07 17:00:00.005" in detail


def test_the_grace_period_moves_the_cutoff() -> None:
    ctx = CheckContext(deadline=DEADLINE, grace=timedelta(minutes=5))
    assert codes(application(at=DEADLINE + timedelta(minutes=4, seconds=59)), ctx) == []
    late = only(application(at=DEADLINE + timedelta(minutes=5)), "late", ctx)
    assert len(late) == 1
    assert "含宽限期 5 分钟，至 2026-07-07 17:05:00" in late[0].detail


def test_a_late_word_makes_the_application_late_even_with_an_on_time_pdf() -> None:
    app = application(items=("pdf", "commitment", "license", "evidence"))
    m = msg(
        DEADLINE + timedelta(minutes=3),
        sent=DEADLINE - timedelta(minutes=2),
        chain=("from smtp.qq.com by mx.126.com; Tue, 7 Jul 2026 17:03:00 +0800", "from [10.0.0.1] by smtp.qq.com"),
    )
    add(app, doc(Kind.form_scenario, Format.docx, m, fields=good_fields("scenario"), filename="申报书-迟交.docx"))
    late = only(app, "late")
    assert len(late) == 1
    d = late[0].detail
    assert d.startswith("截止时间 2026-07-07 17:00:00后才首次收到：申报书 Word 版。")
    assert "《申报书-迟交.docx》首次收到于 2026-07-07 17:03:00（服务器接收时间 INTERNALDATE）" in d
    assert "邮件 Date 头 2026-07-07 16:58:00（早于截止时间）" in d
    assert "最新 Received 记录：from smtp.qq.com by mx.126.com; Tue, 7 Jul 2026 17:03:00 +0800" in d
    assert "PDF" not in d.split("。")[0]
    assert codes(app) == ["late"]


def test_late_lists_every_late_item_and_says_when_the_date_header_was_late_too() -> None:
    m = msg(DEADLINE + timedelta(hours=2), sent=DEADLINE + timedelta(hours=1, minutes=59))
    app = application(at=DEADLINE + timedelta(hours=2))
    for d in app.docs:
        d.message = m
    late = only(app, "late")
    assert len(late) == 1
    assert "申报书 Word 版、申报书 PDF 盖章扫描件、承诺书、营业执照（法人证书）复印件" in late[0].detail
    assert "（不早于截止时间）" in late[0].detail
    assert "无 Received 记录" in late[0].detail


def test_late_evidence_for_files_ingested_from_disk_names_the_received_header() -> None:
    m = msg(DEADLINE + timedelta(seconds=1), source="received", chain=("from a by b; Tue, 7 Jul 2026 17:00:01 +0800",))
    app = application(items=("word", "commitment", "license", "evidence"))
    add(app, doc(Kind.form_scenario, Format.pdf_scan, m, fields={}, seal=True))
    detail = only(app, "late")[0].detail
    assert "申报书 PDF 盖章扫描件：" in detail and "（接收时间，取自最新 Received 头）" in detail


def test_a_missing_item_is_missing_not_late_and_optional_evidence_is_never_late() -> None:
    app = application(items=("word", "pdf", "commitment", "license"))
    add(app, doc(Kind.evidence, Format.image, msg(DEADLINE + timedelta(days=1)), filename="照片.jpg"))
    assert codes(app) == ["late_revision"]
    assert only(app, "late_revision")[0].detail.startswith("证明材料：截止时间 2026-07-07 17:00:00后收到 《照片.jpg》")
    app2 = application(items=("word", "pdf", "license", "evidence"))
    assert "late" not in codes(app2)


def test_a_commitment_page_in_the_on_time_pdf_saves_a_late_separate_commitment() -> None:
    app = application(items=("word", "license", "evidence"))
    m = app.messages[0]
    add(app, doc(Kind.form_scenario, Format.pdf_scan, m, fields=good_fields("scenario"), commitment_page=True,
                 seal=True))  # fmt: skip
    late_commitment = doc(Kind.commitment, Format.pdf_scan, msg(DEADLINE + timedelta(hours=1)), filename="承诺书.pdf")
    add(app, late_commitment)
    # The separate 承诺书 is its first version and came late, but the item arrived on time inside the PDF.
    assert codes(app) == []


def test_the_units_licence_sent_on_time_with_another_application_counts_a_late_one_does_not() -> None:
    app = application(items=("word", "pdf", "commitment", "evidence"))
    app.org_docs = [doc(Kind.license, Format.image, msg(EARLY - timedelta(days=2)), filename="营业执照.jpg")]
    assert codes(app) == []
    # Found by the season rehearsal: the unit's licence came only after the deadline, with another (late)
    # application. This one was sent entirely on time: it lacks a licence, it is not late.
    app.org_docs = [doc(Kind.license, Format.image, msg(DEADLINE + timedelta(minutes=1)), filename="营业执照.jpg")]
    assert codes(app) == ["missing_license"]
    # Its own licence sent after the deadline (a 补充 email) is a required item that came late.
    add(app, doc(Kind.license, Format.image, msg(DEADLINE + timedelta(minutes=5)), filename="营业执照-补充.jpg"))
    late = only(app, "late")
    assert len(late) == 1 and "营业执照（法人证书）复印件：《营业执照-补充.jpg》" in late[0].detail


def test_unknown_arrival_times_are_never_late() -> None:
    app = application(at=EARLY)
    m = replace(app.messages[0], received_at=None)
    for d in app.docs:
        d.message, d.received_at = m, None
    assert "late" not in codes(app)


# -- late_revision ---------------------------------------------------------------------------------------


def test_a_revision_after_the_deadline_is_only_a_late_revision_and_the_on_time_version_stays_of_record() -> None:
    app = application()
    revision = add(
        app,
        doc(
            Kind.form_scenario,
            Format.docx,
            msg(DEADLINE + timedelta(hours=1)),
            # The late version drops the credit code: not of record, so no missing_field.
            fields=good_fields("scenario", credit_code=""),
            filename="附件1 申报书（更正版）.docx",
        ),
    )
    found = run_checks(app, CTX)
    assert [p.code for p in found] == ["late_revision"]
    assert found[0].severity == Severity.warning
    assert found[0].detail == (
        "申报书 Word 版：截止时间 2026-07-07 17:00:00后又收到新版本 "
        "《附件1 申报书（更正版）.docx》（2026-07-07 18:00:00）；"
        "仍以截止前的版本《附件1 申报书.docx》（2026-07-01 10:00:00）为准"
    )
    assert app.of_record("word", CTX.cutoff) is not revision


def test_an_on_time_revision_is_no_problem_and_becomes_of_record() -> None:
    app = application()
    newer = add(
        app,
        doc(Kind.form_scenario, Format.docx, msg(DEADLINE - timedelta(minutes=1)),
            fields=good_fields("scenario", contact_phone="12345")),
    )  # fmt: skip
    assert codes(app) == ["invalid_phone"]
    assert app.of_record("word", CTX.cutoff) is newer


# -- completeness ----------------------------------------------------------------------------------------


def test_missing_word_and_pdf() -> None:
    assert codes(application(items=("pdf", "commitment", "license", "evidence"))) == ["missing_word"]
    assert codes(application(items=("word", "commitment", "license", "evidence"))) == ["missing_pdf"]
    none = application(items=("commitment", "license", "evidence"))
    assert codes(none) == ["missing_word", "missing_pdf"]
    assert {p.severity for p in run_checks(none, CTX)} == {Severity.error}


def test_an_image_of_the_form_counts_as_the_pdf_version() -> None:
    app = application(items=("word", "commitment", "license", "evidence"))
    add(app, doc(Kind.form_scenario, Format.image, app.messages[0], fields={}, seal=True))
    assert codes(app) == []


def test_missing_commitment_unless_a_page_of_the_pdf_or_the_units_commitment_has_it() -> None:
    app = application(items=("word", "pdf", "license", "evidence"))
    assert codes(app) == ["missing_commitment"]
    assert only(app, "missing_commitment")[0].severity == Severity.error
    pdf = next(d for d in app.docs if d.item == "pdf")
    pdf.has_commitment_page = True
    assert codes(app) == []
    pdf.has_commitment_page = False
    app.org_docs = [doc(Kind.commitment, Format.docx, msg(EARLY))]
    assert codes(app) == []
    # A 承诺书 page in the Word form is the template's blank page, not a signed 承诺书.
    app.org_docs = []
    next(d for d in app.docs if d.item == "word").has_commitment_page = True
    assert codes(app) == ["missing_commitment"]


def test_missing_license_and_missing_evidence() -> None:
    assert codes(application(items=("word", "pdf", "commitment", "evidence"))) == ["missing_license"]
    app = application(items=("word", "pdf", "commitment", "license"))
    assert codes(app) == ["missing_evidence"]
    assert only(app, "missing_evidence")[0].severity == Severity.warning
    # Another project's proof does not count for this one.
    app.org_docs = [doc(Kind.evidence, Format.pdf_text, msg(EARLY))]
    assert codes(app) == ["missing_evidence"]


# -- fields ------------------------------------------------------------------------------------------------


def test_one_missing_field_problem_per_blank_required_field_naming_label_and_key() -> None:
    f = good_fields("scenario", credit_code="", contact_phone="  ", org_type=None)
    del f["background"]
    found = only(application(fields=f, pdf_fields=good_fields("scenario")), "missing_field")
    assert [p.detail for p in found] == [
        "必填项为空：统一社会信用代码（credit_code）",
        "必填项为空：单位性质（org_type）",
        "必填项为空：联系人电话（contact_phone）",
        "必填项为空：背景（background）",
    ]
    assert {p.severity for p in found} == {Severity.error}


def test_missing_fields_follow_each_forms_schema() -> None:
    # 附件3 prints 申报人 where the others print 联系人; 附件4 has 产品简介 required.
    f = good_fields("platform", contact_phone="", leader_title="")
    assert [p.detail for p in only(application("platform", fields=f), "missing_field")] == [
        "必填项为空：申报人电话（contact_phone）"
    ]
    t = good_fields("terminal")
    del t["product_summary"]
    assert [p.detail for p in only(application("terminal", fields=t), "missing_field")] == [
        "必填项为空：产品简介（product_summary）"
    ]
    # Optional fields never count: joint applicants, apply_date, ...
    assert "joint_applicants" not in good_fields("model") and codes(application("model")) == []


def test_zero_is_a_value_and_an_empty_list_is_blank() -> None:
    f = good_fields("model", rd_staff=0, ai_rd_staff=0, service_modes=[])
    assert [p.detail for p in only(application("model", fields=f), "missing_field")] == [
        "必填项为空：服务方式（service_modes）"
    ]


def test_fields_of_record_come_from_the_word_else_from_the_pdf_with_an_ocr_caution() -> None:
    app = application(items=("commitment", "license", "evidence"))
    f = good_fields("scenario")
    del f["leader_name"]
    add(app, doc(Kind.form_scenario, Format.pdf_scan, app.messages[0], fields=f, filename="扫描件.pdf", seal=True))
    found = only(app, "missing_field")
    assert [p.detail for p in found] == [
        "必填项为空：负责人姓名（leader_name）（取自扫描件 扫描件.pdf 的识别结果，可能有识别误差，请核对原件）"
    ]


def test_no_missing_fields_without_a_readable_form_but_all_when_a_form_yielded_nothing() -> None:
    app = application(items=("commitment", "license", "evidence"))
    broken = {"code": "unreadable_attachment", "severity": "error", "detail": "a.docx: 文件已损坏"}
    add(app, doc(Kind.form_scenario, Format.docx, app.messages[0], fields={}, problems=[broken]))
    assert codes(app) == ["missing_pdf", "unreadable_attachment"]
    empty = application(fields={}, pdf_fields={})
    required = [f.key for f in load_schema(Kind.form_scenario).fields if f.required]
    assert [p.detail.split("（")[-1] for p in only(empty, "missing_field")] == [f"{k}）" for k in required]


def test_invalid_credit_code_describes_the_check_character_and_that_staff_may_waive() -> None:
    bad = CODE[:17] + ("0" if CODE[17] != "0" else "1")
    found = only(application(fields=good_fields("scenario", credit_code=bad)), "invalid_credit_code")
    assert len(found) == 1 and found[0].severity == Severity.error
    assert found[0].detail == (
        f"统一社会信用代码 {bad} 校验位应为 {CODE[17]}，与所填不符"
        "（早期试点地区的部分真实代码也如此，可人工核实后豁免）"
    )
    short = only(application(fields=good_fields("scenario", credit_code="9142010012")), "invalid_credit_code")
    assert short[0].detail == "统一社会信用代码 9142010012 应为18位，实际10位"
    # Spaces, dashes and lower case are how people write a valid code.
    spaced = f"{CODE[:6].lower()} {CODE[6:12]}-{CODE[12:]}"
    assert codes(application(fields=good_fields("scenario", credit_code=spaced))) == []


def test_invalid_phone_for_leader_and_contact() -> None:
    f = good_fields("scenario", leader_phone="12345", contact_phone="(027) 8531-7173")
    found = only(application(fields=f), "invalid_phone")
    assert [(p.severity, p.detail) for p in found] == [
        (Severity.warning, "负责人电话（leader_phone）“12345”不是有效的电话号码")
    ]
    f = good_fields("scenario", leader_phone="138 1234 5678", contact_phone="电话待定")
    assert [p.detail for p in only(application(fields=f), "invalid_phone")] == [
        "联系人电话（contact_phone）“电话待定”不是有效的电话号码"
    ]


def test_too_many_joint_applicants() -> None:
    ok = good_fields("scenario", joint_applicants=["甲公司", "乙公司", ORG])  # the lead named again: 3 units
    assert codes(application(fields=ok)) == []
    many = good_fields("scenario", joint_applicants=["甲公司", "乙公司", "丙公司"])
    found = only(application(fields=many), "too_many_joint_applicants")
    assert [(p.severity, p.detail) for p in found] == [
        (Severity.error, "申报单位与联合申报单位共4家，超过最多3家的限制")
    ]
    as_text = good_fields("scenario", joint_applicants="甲公司、乙公司；丙公司")
    assert codes(application(fields=as_text)) == ["too_many_joint_applicants"]


def test_summary_too_long_only_for_the_terminal_form() -> None:
    at_limit = good_fields("terminal", product_summary="智" * 300 + "\n \n")
    assert codes(application("terminal", fields=at_limit)) == []
    over = good_fields("terminal", product_summary="智" * 301)
    found = only(application("terminal", fields=over), "summary_too_long")
    assert [(p.severity, p.detail) for p in found] == [
        (Severity.warning, "产品简介共301字，超过300字（product_summary）")
    ]
    long_model = good_fields("model", product_summary="智" * 400)
    assert "summary_too_long" not in codes(application("model", fields=long_model))


# -- Word vs PDF -------------------------------------------------------------------------------------------


def test_ocr_noise_in_names_and_codes_is_no_mismatch() -> None:
    noisy = good_fields(
        "scenario",
        org_name="武汉智联城市科枝有限公司",  # one character misread
        applicant="（武汉）智联城市科技有限责任公司",
        credit_code=" ".join([CODE[:9], CODE[9:]]).replace("0", "O"),
        project_name="基于多模态大模型的城市道路病害智能巡检系统（盖章版）",
    )
    assert "word_pdf_mismatch" not in codes(application(pdf_fields=noisy))


def test_a_value_missing_on_one_side_is_no_mismatch() -> None:
    partial = {"project_name": PROJECT}
    assert "word_pdf_mismatch" not in codes(application(pdf_fields=partial))


def test_different_unit_code_or_project_is_a_mismatch() -> None:
    other_code = "91420106MA4K99887" + uscc_check_char("91420106MA4K99887")
    other = good_fields(
        "scenario", org_name="湖北楚天数智城市运营有限责任公司", credit_code=other_code, project_name="社区养老服务平台"
    )
    found = only(application(pdf_fields=other), "word_pdf_mismatch")
    assert len(found) == 1 and found[0].severity == Severity.warning
    assert found[0].detail == (
        "Word 版《附件1 申报书.docx》与 PDF 版《附件1 申报书（盖章扫描件）.pdf》不一致："
        f"单位名称 Word 版“{ORG}”，PDF 版“湖北楚天数智城市运营有限责任公司”；"
        f"项目名称 Word 版“{PROJECT}”，PDF 版“社区养老服务平台”；"
        f"统一社会信用代码 Word 版“{CODE}”，PDF 版“{other_code}”"
    )


def test_mismatch_compares_the_versions_of_record() -> None:
    app = application()
    add(app, doc(Kind.form_scenario, Format.pdf_text, msg(DEADLINE + timedelta(hours=3)), seal=True,
                 fields=good_fields("scenario", org_name="另一家公司", applicant="另一家公司")))  # fmt: skip
    assert codes(app) == ["late_revision"]


# -- seal --------------------------------------------------------------------------------------------------


def test_no_seal_only_when_looked_for_and_not_found_on_the_pdf_of_record() -> None:
    found = only(application(seal=False), "no_seal")
    assert [(p.severity, p.detail) for p in found] == [
        (Severity.warning, "PDF 版《附件1 申报书（盖章扫描件）.pdf》未检测到红色公章，请人工核对是否盖章")
    ]
    assert codes(application(seal=None)) == []
    # An unstamped first version replaced by a stamped one in time: fine.
    app = application(seal=False)
    add(app, doc(Kind.form_scenario, Format.pdf_scan, msg(EARLY + timedelta(days=1)), seal=True))
    assert codes(app) == []


# -- duplicate_direction ---------------------------------------------------------------------------------


def test_the_same_project_in_another_direction_is_a_duplicate_naming_the_other_receipt() -> None:
    app = application("scenario")
    app.receipt_no = "AI2026-S-0001"
    other = application("model", fields=good_fields("model", project_name=PROJECT + "（更正版）"))
    other.receipt_no = "AI2026-M-0004"
    app.siblings, other.siblings = [other], [app]
    found = only(app, "duplicate_direction")
    assert [(p.severity, p.detail) for p in found] == [
        (
            Severity.error,
            f"同一项目亦以“模型和智能体”方向申报：受理编号 AI2026-M-0004《{PROJECT}（更正版）》（名称相似度 100）",
        )
    ]
    back = only(other, "duplicate_direction")
    assert len(back) == 1 and "“典型应用场景”方向申报：受理编号 AI2026-S-0001《" in back[0].detail


def test_other_projects_and_the_same_direction_are_no_duplicates() -> None:
    app = application("scenario")
    same_direction = application("scenario", fields=good_fields("scenario", project_name=PROJECT + "二期"))
    lifeline = good_fields("platform", project_name="城市生命线安全运行监测公共服务平台")
    different = application("platform", fields=lifeline)
    app.siblings = [same_direction, different]
    assert "duplicate_direction" not in codes(app)


def test_similarity_threshold_for_directions() -> None:
    app = application("scenario")
    near_name = "基于多模态大模型的城市道路病害智能巡检终端"
    near = application("terminal", fields=good_fields("terminal", project_name=near_name))
    app.siblings = [near]
    # 22 characters, one differs: ratio 95 >= 85.
    assert codes(app) == ["duplicate_direction"]
    far = application("terminal", fields=good_fields("terminal", project_name="城市道路病害巡检机器人"))
    app.siblings = [far]
    assert codes(app) == []


# -- mail --------------------------------------------------------------------------------------------------


def test_cloud_attachments_are_listed_once_with_provider_file_and_expiry() -> None:
    link = {
        "url": "https://mail.qq.com/cgi-bin/ftnExs_download?k=abc",
        "provider": "qq",
        "filename": "证明材料.zip",
        "size_text": "300M",
        "expires_text": "2026年07月21日 10:00",
    }
    app = application()
    m2 = msg(EARLY + timedelta(hours=1), subject="补充材料", cloud=(link,))
    m3 = msg(EARLY + timedelta(hours=2), subject="再次发送", cloud=(link, {"url": "https://pan.baidu.com/s/1x"}))
    app.messages += [m2, m3]
    found = only(app, "cloud_attachment")
    assert [(p.severity, p.detail) for p in found] == [
        (
            Severity.warning,
            "邮件《补充材料》含QQ 邮箱云附件，文件 证明材料.zip，大小 300M，有效期 2026年07月21日 10:00，"
            "链接 https://mail.qq.com/cgi-bin/ftnExs_download?k=abc；请在链接过期前下载并存档",
        ),
        (
            Severity.warning,
            "邮件《再次发送》含网盘云附件，文件 （未注明文件名），有效期 未注明，链接 https://pan.baidu.com/s/1x；"
            "请在链接过期前下载并存档",
        ),
    ]


def test_unreadable_attachments_copy_the_parsers_detail_once() -> None:
    bad = {"code": "unreadable_attachment", "severity": "error", "detail": "证明材料.rar: 压缩包需要密码"}
    app = application()
    m = msg(EARLY, unreadable=("证明材料.rar: 压缩包需要密码", "截图.heic: 不支持的图片格式"))
    add(app, doc(Kind.other, Format.archive, m, problems=[bad], filename="证明材料.rar"))
    found = only(app, "unreadable_attachment")
    assert [(p.severity, p.detail) for p in found] == [
        (Severity.error, "证明材料.rar: 压缩包需要密码"),
        (Severity.error, "截图.heic: 不支持的图片格式"),
    ]
