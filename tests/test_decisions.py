"""Status rule and staff decisions: waive, accept late, revoke — audited, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from parsers.types import Problem, Severity
from review.decisions import DecisionError, decide
from review.status import annotate, apply_decisions, status_of, waivers
from store.engine import make_engine, migrate
from store.models import Application, AuditEvent, Decision

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 7, 8, 9, 30, tzinfo=CST)

LATE = {"code": "late", "severity": "error", "detail": "截止后才首次收到：申报书 Word 版"}
NO_PDF = {"code": "missing_pdf", "severity": "error", "detail": "未收到申报书 PDF 盖章扫描件"}
NO_SEAL = {"code": "no_seal", "severity": "warning", "detail": "未检测到红色公章"}
BAD_CODE = {"code": "invalid_credit_code", "severity": "error", "detail": "校验位应为 X"}


def dec(did: int, action: str, code: str | None = None, *, revokes: int | None = None, minutes: int = 0) -> Decision:
    return Decision(
        id=did,
        application_pk=1,
        action=action,
        problem_code=code,
        reason=f"理由{did}",
        user="alice",
        created_at=T0 + timedelta(minutes=minutes or did),
        revokes=revokes,
    )


# -- the status rule -------------------------------------------------------------------------------------


def test_status_rule_of_spec_4() -> None:
    assert status_of([]) == "complete"
    assert status_of([NO_SEAL]) == "complete"
    assert status_of([NO_SEAL, NO_PDF]) == "incomplete"
    assert status_of([NO_PDF, LATE]) == "late"
    # Problem objects as the checks return them work the same.
    assert status_of([Problem("late", Severity.error, "x")]) == "late"
    assert status_of([Problem("no_seal", Severity.warning, "x")]) == "complete"


def test_waivers_and_acceptance_change_the_status_but_not_the_problems() -> None:
    problems = [LATE, NO_PDF, NO_SEAL]
    assert status_of(problems, [dec(1, "accept_late", "late")]) == "incomplete"
    assert status_of(problems, [dec(1, "accept_late", "late"), dec(2, "waive", "missing_pdf")]) == "complete"
    # Waiving late by code is accepting it.
    assert status_of(problems, [dec(1, "waive", "late")]) == "incomplete"
    # Waiving something else leaves a late application late.
    assert status_of(problems, [dec(1, "waive", "missing_pdf")]) == "late"
    assert problems == [LATE, NO_PDF, NO_SEAL]


def test_a_revoked_decision_no_longer_counts() -> None:
    ds = [dec(1, "accept_late", "late"), dec(2, "revoke", "late", revokes=1)]
    assert status_of([LATE], ds) == "late"
    assert waivers(ds) == {}
    # A new acceptance after the revocation counts again.
    ds.append(dec(3, "accept_late", "late"))
    assert status_of([LATE], ds) == "complete"
    assert waivers(ds)["late"].decision_id == 3


def test_annotate_marks_waived_problems_with_who_when_why() -> None:
    ds = [dec(1, "waive", "invalid_credit_code"), dec(2, "waive", "no_seal"), dec(3, "revoke", revokes=2)]
    out = annotate([BAD_CODE, NO_SEAL, Problem("missing_pdf", Severity.error, "d")], ds, CST)
    assert out == [
        {
            **BAD_CODE,
            "waived": {"by": "alice", "at": "2026-07-08T09:31:00+08:00", "reason": "理由1", "decision": 1},
        },
        NO_SEAL,
        {"code": "missing_pdf", "severity": "error", "detail": "d"},
    ]


def test_apply_decisions_recomputes_status_and_late_and_leaves_merged_rows_alone() -> None:
    row = Application(call_code="AI2026", form_type="scenario", receipt_no="AI2026-S-0001", org_key="k",
                      problems=[LATE, NO_PDF], status="late", late=True)  # fmt: skip
    assert apply_decisions(row, [dec(1, "accept_late", "late")]) == "incomplete"
    # `late` stays the fact (an item arrived late); the decision shows in the status only.
    assert (row.status, row.late) == ("incomplete", True)
    assert apply_decisions(row, []) == "late" and row.late
    row.status = "merged"
    assert apply_decisions(row, []) == "merged" and row.status == "merged"


# -- decide() in the database ----------------------------------------------------------------------------


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    e = make_engine(db_url)
    migrate(e)
    yield e
    e.dispose()


def add_app(engine: Engine, receipt: str, problems: list[dict[str, Any]], **kw: Any) -> int:
    with Session(engine) as s:
        row = Application(
            call_code="AI2026",
            form_type="scenario",
            receipt_no=receipt,
            org_key="智联城市科技",
            problems=problems,
            status=status_of(problems),
            late=status_of(problems) == "late",
            **kw,
        )
        s.add(row)
        s.commit()
        assert row.id is not None
        return row.id


def app_row(engine: Engine, receipt: str) -> Application:
    with Session(engine) as s:
        return s.exec(select(Application).where(Application.receipt_no == receipt)).one()


def all_rows(engine: Engine, model: Any) -> list[Any]:
    with Session(engine) as s:
        return list(s.exec(select(model).order_by(model.id)))


def test_accept_late_then_waive_writes_decisions_and_audit_and_recomputes_status(engine: Engine) -> None:
    add_app(engine, "AI2026-S-0001", [LATE, NO_PDF, NO_SEAL])
    with Session(engine) as s:
        d1 = decide(s, "AI2026-S-0001", "accept-late", None, "邮件 Date 头 16:58，服务器延迟", "王莹", now=T0)
    assert (d1.id, d1.action, d1.problem_code, d1.user) == (1, "accept_late", "late", "王莹")
    row = app_row(engine, "AI2026-S-0001")
    # Accepted: the status no longer says late; `late` stays the fact, like the computed problems.
    assert (row.status, row.late) == ("incomplete", True)
    # The computed problems stay as they were.
    assert row.problems == [LATE, NO_PDF, NO_SEAL]

    with Session(engine) as s:
        later = T0 + timedelta(hours=1)
        d2 = decide(s, "AI2026-S-0001", "waive", "missing_pdf", "纸质版已核对盖章", "饶丽君", now=later)
    assert app_row(engine, "AI2026-S-0001").status == "complete"

    events = all_rows(engine, AuditEvent)
    assert [(e.user, e.action, e.target) for e in events] == [
        ("王莹", "decision.accept_late", "application:AI2026-S-0001"),
        ("饶丽君", "decision.waive", "application:AI2026-S-0001"),
    ]
    assert events[0].at == T0
    assert events[0].detail == {
        "decision_id": d1.id,
        "action": "accept_late",
        "problem_code": "late",
        "revokes": None,
        "reason": "邮件 Date 头 16:58，服务器延迟",
        "status_before": "late",
        "status_after": "incomplete",
    }
    assert events[1].detail["status_before"] == "incomplete" and events[1].detail["status_after"] == "complete"
    assert events[1].detail["decision_id"] == d2.id


def test_revoke_restores_the_status_and_is_itself_audited(engine: Engine) -> None:
    add_app(engine, "AI2026-S-0002", [BAD_CODE])
    with Session(engine) as s:
        d = decide(s, "AI2026-S-0002", "waive", "invalid_credit_code", "早期试点代码，已电话核实", "alice", now=T0)
    assert app_row(engine, "AI2026-S-0002").status == "complete"
    with Session(engine) as s:
        r = decide(s, "AI2026-S-0002", "revoke", str(d.id), "核实有误", "bob", now=T0 + timedelta(minutes=5))
    assert (r.action, r.revokes, r.problem_code) == ("revoke", d.id, "invalid_credit_code")
    assert app_row(engine, "AI2026-S-0002").status == "incomplete"
    assert [e.action for e in all_rows(engine, AuditEvent)] == ["decision.waive", "decision.revoke"]
    # Nothing was deleted: both decisions are history.
    assert [x.action for x in all_rows(engine, Decision)] == ["waive", "revoke"]
    # Waiving again after the revocation is allowed.
    with Session(engine) as s:
        decide(s, "AI2026-S-0002", "waive", "invalid_credit_code", "换人复核通过", "carol", now=T0 + timedelta(hours=1))
    assert app_row(engine, "AI2026-S-0002").status == "complete"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("AI2026-S-9999", "waive", "no_seal", "r", "u"), "no application with receipt number 'AI2026-S-9999'"),
        (("AI2026-S-0003", "waive", "missing_pdf", "r", "u"), "has no problem 'missing_pdf'"),
        (("AI2026-S-0003", "waive", None, "r", "u"), "waive needs the problem code"),
        (("AI2026-S-0003", "accept-late", None, "r", "u"), "AI2026-S-0003 is not late; its problems: no_seal"),
        (("AI2026-S-0003", "waive", "no_seal", "  ", "u"), "a reason is required"),
        (("AI2026-S-0003", "waive", "no_seal", "r", ""), "a user name is required"),
        (("AI2026-S-0003", "ignore", "no_seal", "r", "u"), "unknown action 'ignore'"),
        (("AI2026-S-0003", "revoke", "abc", "r", "u"), "revoke needs the id of the decision"),
        (("AI2026-S-0003", "revoke", "77", "r", "u"), "AI2026-S-0003 has no decision 77"),
        (("AI2026-S-0003", "accept-late", "no_seal", "r", "u"), "accept-late takes no problem code"),
    ],
)
def test_decisions_that_cannot_be_taken_are_refused_and_write_nothing(
    engine: Engine, args: tuple[Any, ...], message: str
) -> None:
    add_app(engine, "AI2026-S-0003", [NO_SEAL])
    with Session(engine) as s, pytest.raises(DecisionError) as e:
        decide(s, *args)
    assert message in str(e.value)
    assert all_rows(engine, Decision) == [] and all_rows(engine, AuditEvent) == []
    assert app_row(engine, "AI2026-S-0003").status == "complete"


def test_double_waivers_and_double_revocations_are_refused(engine: Engine) -> None:
    add_app(engine, "AI2026-S-0004", [NO_SEAL, LATE])
    with Session(engine) as s:
        d = decide(s, "AI2026-S-0004", "accept_late", "late", "r", "alice")
        with pytest.raises(DecisionError, match=r"late on AI2026-S-0004 is already waived by alice \(decision 1\)"):
            decide(s, "AI2026-S-0004", "waive", "late", "again", "bob")
        r = decide(s, "AI2026-S-0004", "revoke", d.id, "r", "alice")
        with pytest.raises(DecisionError, match="decision 1 is already revoked"):
            decide(s, "AI2026-S-0004", "revoke", d.id, "r", "alice")
        with pytest.raises(DecisionError, match="itself a revocation"):
            decide(s, "AI2026-S-0004", "revoke", f"#{r.id}", "r", "alice")
    assert len(all_rows(engine, Decision)) == 2 and len(all_rows(engine, AuditEvent)) == 2
    assert app_row(engine, "AI2026-S-0004").status == "late"


def test_decisions_of_another_application_cannot_be_revoked_here(engine: Engine) -> None:
    add_app(engine, "AI2026-S-0005", [NO_SEAL])
    add_app(engine, "AI2026-S-0006", [NO_SEAL])
    with Session(engine) as s:
        d = decide(s, "AI2026-S-0005", "waive", "no_seal", "r", "alice")
        with pytest.raises(DecisionError, match="AI2026-S-0006 has no decision"):
            decide(s, "AI2026-S-0006", "revoke", d.id, "r", "alice")


def test_a_merged_application_points_at_the_one_that_lives_on(engine: Engine) -> None:
    keep = add_app(engine, "AI2026-S-0007", [NO_SEAL])
    add_app(engine, "AI2026-S-0008", [NO_SEAL], merged_into=keep)
    with Session(engine) as s:
        row = s.exec(select(Application).where(Application.receipt_no == "AI2026-S-0008")).one()
        row.status = "merged"
        s.add(row)
        s.commit()
    with Session(engine) as s, pytest.raises(DecisionError, match="AI2026-S-0008 was merged into AI2026-S-0007"):
        decide(s, "AI2026-S-0008", "waive", "no_seal", "r", "alice")


def test_decision_times_are_stored_aware(engine: Engine) -> None:
    add_app(engine, "AI2026-S-0009", [NO_SEAL])
    with Session(engine) as s:
        decide(s, "AI2026-S-0009", "waive", "no_seal", "r", "alice", now=T0)
    (d,) = all_rows(engine, Decision)
    assert d.created_at == T0 and d.created_at.tzinfo is not None
    assert d.created_at.astimezone(UTC).hour == 1
