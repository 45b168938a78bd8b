"""Reconciliation of applications with the paper log and the district 汇总表: matches, statuses, problems,
staff overrides, the export section and `intake reconcile` — on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from intake.config import load_config
from review import reconcile as rc
from review.paper import add_entry
from store.engine import make_engine, migrate
from store.models import Application, AuditEvent, Decision, DocumentRow, Message
from store.paper_models import PaperEntry, ReconcileOverride
from tests import papergen
from tests.support import run_intake, write_config

CST = timezone(timedelta(hours=8))
DEADLINE = datetime(2026, 7, 7, 17, 0, tzinfo=CST)
BEFORE = datetime(2026, 7, 7, 12, 0, tzinfo=CST)
AFTER = datetime(2026, 7, 8, 9, 0, tzinfo=CST)
SETTINGS = rc.Settings()
CFG = load_config(None)

GUANGGU = "武汉光谷智能科技有限公司"
C1, C2, C3, C4, C5 = (
    "91420100MA4KW0QX1A",
    "91420106MA4K0TY15C",
    "91420100MA4K1X2J7B",
    "91420111MA4K9B8C2D",
    "91420100MA4K5Z6Y3E",
)
PLATFORM = "武汉市城市治理人工智能公共服务平台"


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 7, day, hour, minute, tzinfo=CST)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    e = make_engine(db_url)
    migrate(e)
    yield e
    e.dispose()


# -- building a season in the store ----------------------------------------------------------------------

_receipts: dict[str, int] = {}


def app_row(
    s: Session,
    receipt: str,
    form_type: str,
    org: str,
    project: str,
    code: str | None = None,
    district: str | None = None,
    **extra: Any,
) -> Application:
    row = Application(
        call_code="AI2026",
        form_type=form_type,
        receipt_no=receipt,
        org_key=code or org,
        org_name=org,
        project_name=project,
        credit_code=code,
        district=district,
        **extra,
    )
    s.add(row)
    s.flush()
    return row


def paper(
    s: Session,
    at: datetime,
    org: str,
    project: str | None,
    form_type: str | None = None,
    copies: int = 2,
    item: str = "form",
    district: str | None = None,
    credit_code: str | None = None,
) -> PaperEntry:
    values = {
        "received_at": at,
        "org_name": org,
        "project_name": project,
        "form_type": form_type,
        "item": item,
        "copies": copies,
        "district": district,
        "received_by": "张敏",
        "note": None,
        "credit_code": credit_code,
    }
    return add_entry(s, values, "张敏", source="test")


_message_seq = [0]


def summary_doc(
    s: Session, filename: str, recommender: str, rows: list[dict[str, Any]], received_at: datetime
) -> DocumentRow:
    _message_seq[0] += 1
    sha = hashlib.sha256(f"message {_message_seq[0]}".encode()).hexdigest()
    m = Message(sha256=sha, size=1, source="file", source_ref=filename, received_at=received_at, state="processed")
    s.add(m)
    s.flush()
    assert m.id is not None
    doc_sha = hashlib.sha256(f"document {_message_seq[0]}".encode()).hexdigest()
    d = DocumentRow(
        message_pk=m.id,
        seq=0,
        filename=filename,
        sha256=doc_sha,
        size=1,
        kind="summary",
        format="docx",
        fields={"recommender": recommender, "contact_name": "刘洋", "contact_phone": "027-85310000", "rows": rows},
        received_at=received_at,
    )
    s.add(d)
    s.flush()
    return d


def row(section: str, seq: int, district: str, org: str, project: str) -> dict[str, Any]:
    return {"section": section, "seq": seq, "district": district, "org_name": org, "project_name": project}


@dataclass
class Scenario:
    apps: dict[str, Application]  # letter -> row
    entries: dict[int, PaperEntry]  # entry number (1-11) -> row
    s1: DocumentRow
    s2: DocumentRow
    s2_old: DocumentRow


def build(s: Session) -> Scenario:
    """Nine applications, eleven paper entries, three 汇总表 (one superseded): every status once."""
    a = {
        "A": app_row(s, "AI2026-S-0001", "scenario", GUANGGU, "基于数字孪生的城市内涝智能预警系统", C1, "东湖高新区"),
        # B: the same company's near-duplicate project.
        "B": app_row(s, "AI2026-S-0002", "scenario", GUANGGU, "基于数字孪生的城市内涝智能预警平台", C1, "东湖高新区"),
        "C": app_row(s, "AI2026-M-0001", "model", GUANGGU, "城市内涝治理大模型", C1, "东湖高新区"),
        "D": app_row(s, "AI2026-P-0001", "platform", "武汉市江汉区城市运行管理中心", PLATFORM, None, "江汉区"),
        # E: another district's body with the very same (generic) project name.
        "E": app_row(s, "AI2026-P-0002", "platform", "武汉市蔡甸区城市运行管理中心", PLATFORM, None, "蔡甸区"),
        "F": app_row(s, "AI2026-T-0001", "terminal", "湖北天元数据科技股份有限公司", "鹰眼智能巡检机器人", C2),
        "G": app_row(s, "AI2026-M-0002", "model", "芯智（武汉）信息技术有限公司", "森林防火研判智能体", C3,
                     "东湖高新区"),
        "H": app_row(s, "AI2026-S-0003", "scenario", "武汉云帆软件有限公司", "占道经营智能识别系统", C4, "洪山区"),
        # I: a sister company of 光谷智能科技 (same trade name) with the same project name as A.
        "I": app_row(s, "AI2026-S-0004", "scenario", "武汉光谷数字科技有限公司", "基于数字孪生的城市内涝智能预警系统",
                     C5, "东湖高新区"),
    }  # fmt: skip
    e = {
        1: paper(s, t(6, 10), "光谷（武汉）智能科技有限责任公司", "《基于数字孪生的城市内涝智能预警系统》", "scenario"),
        2: paper(s, t(6, 11), GUANGGU, "基于数字孪生的城市内涝智能预警"),
        3: paper(s, t(6, 14), "武汉光谷智能科技有限公司", "城市内涝治理大模形", "model", credit_code=C1),
        4: paper(s, t(7, 9), "武汉市江汉区城市运行管理中心", "武汉市城市治理人工智能公共服务平台", "platform"),
        5: paper(s, t(7, 9, 10), "蔡甸区城市运行管理中心", "武汉市城市治理人工智能公共服务平台", "platform", copies=1),
        6: paper(s, t(7, 9, 40), "武汉市蔡甸区 城市运行管理中心", "武汉市城市治理人工智能公共服务平台", None, copies=1),
        7: paper(s, t(7, 10), "芯智(武汉)信息技术有限公司", "森林防火研判智能体", "model", copies=1),
        8: paper(s, t(7, 17, 5), "武汉云帆软件有限公司", "占道经营智能识别系统", "scenario"),
        9: paper(s, t(7, 11), "武汉未来城科技有限公司", "基于边缘计算的渣土车智能识别系统", "scenario"),
        10: paper(s, t(7, 15), "江汉区科技和经济信息化局", None, item="recommendation", copies=1, district="江汉区"),
        11: paper(s, t(7, 15), "江汉区科技和经济信息化局", None, item="summary", copies=1, district="江汉区"),
    }
    s1 = summary_doc(
        s,
        "江汉区汇总表.docx",
        "江汉区科技和经济信息化局",
        [
            row("platform", 1, "江汉区", "江汉区城市运行管理中心", "武汉市城市治理人工智能公共服务平台"),
            # A project never emailed.
            row("model", 1, "江汉区", "武汉市江汉区大数据中心", "江汉区一网统管研判智能体"),
        ],
        t(7, 14),
    )
    s2_old = summary_doc(
        s,
        "东湖高新区汇总表.docx",
        "东湖新技术开发区管委会",
        [
            row("scenario", 1, "东湖高新区", GUANGGU, "基于数字孪生的城市内涝智能预警系统"),
            row("model", 1, "东湖高新区", GUANGGU, "城市内涝治理大模型"),
        ],
        t(5, 16),
    )
    # The newer 汇总表 of the same district replaces the old one: C is no longer listed.
    s2 = summary_doc(
        s,
        "东湖高新区汇总表（更正）.docx",
        "东湖新技术开发区管委会",
        [
            row("scenario", 1, "东湖高新区", "武汉光谷智能科技有限责任公司", "基于数字孪生的城市内涝智能预警系统"),
            row("scenario", 2, "东湖高新区", GUANGGU, "《基于数字孪生的城市内涝智能预警平台》"),
            row("model", 1, "东湖高新区", "芯智（武汉）信息技术有限公司", "森林防火研判 智能体"),
        ],
        t(6, 18),
    )
    return Scenario(a, e, s1, s2, s2_old)


def by_receipt(report: rc.Report) -> dict[str, rc.AppResult]:
    return {a.app.receipt_no: a for a in report.apps}


def entry_view(report: rc.Report) -> dict[int, tuple[str, str | None, str]]:
    return {
        er.entry.id: (er.link.status, er.link.app.receipt_no if er.link.app else None, er.link.how)
        for er in report.entries
    }


def codes(problems: list[Any]) -> list[tuple[str, str]]:
    return [(p.code, p.severity.value) for p in problems]


# -- the hand-made season: every status and problem, asserted exactly ------------------------------------


def test_every_status_of_the_three_way_reconciliation(engine: Engine) -> None:
    with Session(engine) as s:
        sc = build(s)
        s.commit()
        ids = {k: e.id for k, e in sc.entries.items()}
        report = rc.run(s, SETTINGS, DEADLINE, BEFORE)

    assert entry_view(report) == {
        ids[1]: ("matched", "AI2026-S-0001", "exact"),
        ids[2]: ("ambiguous", None, "fuzzy"),
        ids[3]: ("matched", "AI2026-M-0001", "credit_code"),
        ids[4]: ("matched", "AI2026-P-0001", "exact"),
        ids[5]: ("matched", "AI2026-P-0002", "exact"),
        ids[6]: ("matched", "AI2026-P-0002", "exact"),
        ids[7]: ("matched", "AI2026-M-0002", "exact"),
        ids[8]: ("matched", "AI2026-S-0003", "exact"),
        ids[9]: ("orphan", None, "fuzzy"),
        ids[10]: ("district", None, ""),
        ids[11]: ("district", None, ""),
    }
    ambiguous = next(er for er in report.entries if er.entry.id == ids[2])
    # Both projects of the company, equally close; the sister company (光谷数字科技) is no candidate.
    assert [a.receipt_no for a, _ in ambiguous.link.candidates] == ["AI2026-S-0001", "AI2026-S-0002"]
    assert ambiguous.link.candidates[0][1] == ambiguous.link.candidates[1][1]
    assert [er.late for er in report.entries] == [er.entry.id == ids[8] for er in report.entries]

    rows = {(rr.row.doc.filename, rr.row.index): (rr.link.status, rr.link.app.receipt_no if rr.link.app else None)
            for rr in report.rows}  # fmt: skip
    assert rows == {
        ("江汉区汇总表.docx", 0): ("matched", "AI2026-P-0001"),
        ("江汉区汇总表.docx", 1): ("orphan", None),
        ("东湖高新区汇总表（更正）.docx", 0): ("matched", "AI2026-S-0001"),
        ("东湖高新区汇总表（更正）.docx", 1): ("matched", "AI2026-S-0002"),
        ("东湖高新区汇总表（更正）.docx", 2): ("matched", "AI2026-M-0002"),
    }

    apps = by_receipt(report)
    got = {
        r: (a.paper_status, a.copies, [er.entry.id for er in a.entries], [er.entry.id for er, _ in a.paper_candidates],
            a.summary_status, a.district)
        for r, a in apps.items()
    }  # fmt: skip
    assert got == {
        "AI2026-S-0001": ("matched", 2, [ids[1]], [ids[2]], "listed", "东湖高新区"),
        "AI2026-S-0002": ("ambiguous", 0, [], [ids[2]], "listed", "东湖高新区"),
        "AI2026-M-0001": ("matched", 2, [ids[3]], [], "not_listed", "东湖高新区"),
        "AI2026-P-0001": ("matched", 2, [ids[4]], [], "listed", "江汉区"),
        "AI2026-P-0002": ("matched", 2, [ids[5], ids[6]], [], "no_summary", "蔡甸区"),
        "AI2026-T-0001": ("missing", 0, [], [], "unknown", None),
        "AI2026-M-0002": ("copies_short", 1, [ids[7]], [], "listed", "东湖高新区"),
        "AI2026-S-0003": ("late", 2, [ids[8]], [], "no_summary", "洪山区"),
        "AI2026-S-0004": ("missing", 0, [], [], "not_listed", "东湖高新区"),
    }
    assert apps["AI2026-S-0001"].paper_score == 100.0
    assert 85 <= (apps["AI2026-M-0001"].paper_score or 0) < 100  # credit code, project with a typo

    problems = {r: codes(a.problems) for r, a in apps.items()}
    assert problems == {
        "AI2026-S-0001": [],
        "AI2026-S-0002": [("paper_missing", "warning")],
        "AI2026-M-0001": [("not_in_summary", "warning")],
        "AI2026-P-0001": [],
        "AI2026-P-0002": [("not_in_summary", "warning")],
        "AI2026-T-0001": [("paper_missing", "warning"), ("not_in_summary", "warning")],
        "AI2026-M-0002": [("paper_copies_short", "warning")],
        "AI2026-S-0003": [("late", "error"), ("not_in_summary", "warning")],
        "AI2026-S-0004": [("paper_missing", "warning"), ("not_in_summary", "warning")],
    }
    detail = {r: [p.detail for p in a.problems] for r, a in apps.items()}
    assert "疑似条目" in detail["AI2026-S-0002"][0] and f"登记#{ids[2]}" in detail["AI2026-S-0002"][0]
    assert detail["AI2026-M-0001"] == ["东湖高新区汇总表（东湖高新区汇总表（更正）.docx）未列出本项目"]
    assert detail["AI2026-P-0002"] == ["所在区（蔡甸区）尚未报送汇总表"]
    assert detail["AI2026-S-0003"][0] == "纸质申报书于 2026-07-07 17:05 送达，晚于截止时间 2026-07-07 17:00"
    assert detail["AI2026-M-0002"] == ["纸质申报书登记 1 份，应为一式2份"]

    districts = {d.district: d for d in report.districts}
    assert districts["江汉区"].summary is not None and districts["江汉区"].summary.filename == "江汉区汇总表.docx"
    assert [e.id for e in districts["江汉区"].paper_recommendation] == [ids[10]]
    assert [e.id for e in districts["江汉区"].paper_summary] == [ids[11]]
    assert [d.filename for d in districts["东湖高新区"].superseded] == ["东湖高新区汇总表.docx"]
    assert (districts["东湖高新区"].applications, districts["东湖高新区"].listed) == (5, 3)


def test_paper_missing_is_a_warning_before_the_deadline_and_an_error_after(engine: Engine) -> None:
    with Session(engine) as s:
        build(s)
        s.commit()
        before = by_receipt(rc.run(s, SETTINGS, DEADLINE, BEFORE))
        after = by_receipt(rc.run(s, SETTINGS, DEADLINE, AFTER))
    assert codes(before["AI2026-T-0001"].problems)[0] == ("paper_missing", "warning")
    assert codes(after["AI2026-T-0001"].problems)[0] == ("paper_missing", "error")
    assert after["AI2026-T-0001"].problems[0].detail == "截止时间 2026-07-07 17:00 前未登记纸质申报书"
    # An unconfirmed (ambiguous) match stays a warning: the paper is probably there.
    assert codes(after["AI2026-S-0002"].problems) == [("paper_missing", "warning")]


def test_staff_overrides_survive_re_runs_and_are_audited(engine: Engine) -> None:
    with Session(engine) as s:
        sc = build(s)
        merged = app_row(s, "AI2026-S-0099", "scenario", GUANGGU, "旧的项目名称", C1, status="merged",
                         merged_into=sc.apps["A"].id)  # fmt: skip
        s.commit()
        e2, e4, e9 = (f"paper:{sc.entries[n].id}" for n in (2, 4, 9))
        row_key = f"summary:{sc.s1.sha256[:16]}:1"
        rc.set_override(s, e2, "match", "李静", receipt_no="AI2026-S-0002", reason="封面写的是平台")
        rc.set_override(s, e4, "unmatch", "李静", reason="江汉区送来的是另一份材料")
        # A staff match to an application that was later merged follows it to where it lives on.
        rc.set_override(s, e9, "match", "李静", receipt_no=merged.receipt_no, reason="改过名的项目")
        rc.set_override(s, row_key, "match", "李静", receipt_no="AI2026-P-0001", reason="同一平台")
        s.commit()

        for _ in range(2):  # re-runs change nothing
            report = rc.run(s, SETTINGS, DEADLINE, BEFORE)
            view = entry_view(report)
            apps = by_receipt(report)
            assert view[sc.entries[2].id] == ("matched", "AI2026-S-0002", "staff")
            assert view[sc.entries[4].id] == ("orphan", None, "staff")
            assert view[sc.entries[9].id] == ("matched", "AI2026-S-0001", "staff")
            assert apps["AI2026-S-0002"].paper_status == "matched" and apps["AI2026-S-0002"].problems == []
            assert apps["AI2026-S-0001"].paper_candidates == []
            assert [er.entry.id for er in apps["AI2026-S-0001"].entries] == [sc.entries[1].id, sc.entries[9].id]
            assert apps["AI2026-P-0001"].paper_status == "missing"
            listed = [(rr.row.key, rr.link.how) for rr in apps["AI2026-P-0001"].summary_rows]
            assert (row_key.removeprefix("summary:"), "staff") in listed

        audit = s.exec(
            select(AuditEvent).where(col(AuditEvent.action).startswith("reconcile.")).order_by(col(AuditEvent.id))
        ).all()
        assert [(a.action, a.target, a.user, a.detail["receipt_no"]) for a in audit] == [
            ("reconcile.match", e2, "李静", "AI2026-S-0002"),
            ("reconcile.unmatch", e4, "李静", None),
            ("reconcile.match", e9, "李静", "AI2026-S-0099"),
            ("reconcile.match", row_key, "李静", "AI2026-P-0001"),
        ]

        # Withdrawing a decision: automatic matching again; the trail keeps both.
        rc.set_override(s, e4, "clear", "张敏")
        s.commit()
        report = rc.run(s, SETTINGS, DEADLINE, BEFORE)
        assert entry_view(report)[sc.entries[4].id] == ("matched", "AI2026-P-0001", "exact")
        last = s.exec(select(AuditEvent).order_by(col(AuditEvent.id).desc())).first()
        assert last is not None and last.action == "reconcile.clear"
        assert last.detail["previous"] == {"action": "unmatch", "receipt_no": None}
        assert len(s.exec(select(ReconcileOverride)).all()) == 5  # append-only

        with pytest.raises(LookupError, match="no application AI2026-S-0404"):
            rc.set_override(s, e2, "match", "李静", receipt_no="AI2026-S-0404")
        with pytest.raises(ValueError, match="not a paper entry"):
            rc.set_override(s, "paper:x", "unmatch", "李静")
        with pytest.raises(LookupError, match="no paper entry 9999"):
            rc.set_override(s, "paper:9999", "unmatch", "李静")


def test_a_staff_match_to_a_vanished_application_is_reported_and_ignored(engine: Engine) -> None:
    with Session(engine) as s:
        sc = build(s)
        gone = app_row(s, "AI2026-S-0098", "scenario", "某公司", "某项目")
        s.commit()
        e2 = sc.entries[2].id
        subject = f"paper:{e2}"
        rc.set_override(s, subject, "match", "李静", receipt_no=gone.receipt_no, reason="x")
        s.delete(gone)
        s.commit()
        report = rc.run(s, SETTINGS, DEADLINE, BEFORE)
    assert report.stale_overrides == [f"{subject} → AI2026-S-0098"]
    assert entry_view(report)[e2] == ("ambiguous", None, "fuzzy")


def test_apply_writes_problems_and_status_keeps_others_and_honours_waivers(engine: Engine) -> None:
    cfg = CFG.model_copy()
    with Session(engine) as s:
        sc = build(s)
        f = sc.apps["F"]
        f.problems = [{"code": "missing_evidence", "severity": "warning", "detail": "未找到证明材料"}]
        h = sc.apps["H"]
        # A stale reconciliation problem from an earlier run is replaced, not kept beside the new one.
        h.problems = [{"code": "paper_missing", "severity": "warning", "detail": "旧的"}]
        s.add_all([f, h])
        s.commit()
        _report, changed = rc.apply(s, cfg, now=AFTER)
        s.commit()
        assert changed == 9
        rows = {a.receipt_no: a for a in s.exec(select(Application))}
        assert rows["AI2026-T-0001"].problems == [
            {"code": "missing_evidence", "severity": "warning", "detail": "未找到证明材料"},
            {"code": "paper_missing", "severity": "error", "detail": "截止时间 2026-07-07 17:00 前未登记纸质申报书"},
            {
                "code": "not_in_summary",
                "severity": "warning",
                "detail": "所在区不明，且未在任何区（单位）汇总表中找到本项目",
            },
        ]
        assert rows["AI2026-T-0001"].status == "incomplete"
        assert [p["code"] for p in rows["AI2026-S-0003"].problems] == ["late", "not_in_summary"]
        assert (rows["AI2026-S-0003"].status, rows["AI2026-S-0003"].late) == ("late", True)
        assert rows["AI2026-S-0001"].status == "complete"
        assert rows["AI2026-M-0002"].status == "complete"  # copies short is a warning

        # Idempotent.
        _report, changed = rc.apply(s, cfg, now=AFTER)
        assert changed == 0

        s.add(Decision(application_pk=rows["AI2026-T-0001"].id, action="waive", problem_code="paper_missing",
                       reason="纸质材料由区里统一补交", user="李静"))  # fmt: skip
        s.commit()
        rc.apply(s, cfg, now=AFTER)
        s.commit()
        t1 = s.exec(select(Application).where(Application.receipt_no == "AI2026-T-0001")).one()
        assert t1.status == "complete"
        assert [p["code"] for p in t1.problems] == ["missing_evidence", "paper_missing", "not_in_summary"]

        # Paper arrives: the problem goes away on the next apply.
        paper(s, t(7, 16), "湖北天元数据科技股份有限公司", "鹰眼智能巡检机器人", "terminal")
        rc.apply(s, cfg, now=AFTER)
        s.commit()
        t1 = s.exec(select(Application).where(Application.receipt_no == "AI2026-T-0001")).one()
        assert [p["code"] for p in t1.problems] == ["missing_evidence", "not_in_summary"]


def test_paper_problems_and_paper_for_serve_the_other_areas(engine: Engine) -> None:
    from review import service

    with Session(engine) as s:
        sc = build(s)
        s.commit()
        app_id = {k: a.id for k, a in sc.apps.items()}
        entry_id = {k: e.id for k, e in sc.entries.items()}
        # What a regroup gets once the source is registered (now is after the 2026 deadline: errors).
        before = list(service.PROBLEM_SOURCES)
        rc.register_problem_source()
        try:
            assert service.PROBLEM_SOURCES[-1] is rc.problem_source
            got = service._extra_problems(s, CFG, [sc.apps["F"], sc.apps["A"]])
        finally:
            service.PROBLEM_SOURCES[:] = before
        assert {k: codes(v) for k, v in got.items()} == {
            sc.apps["F"].id: [("paper_missing", "error"), ("not_in_summary", "warning")],
            sc.apps["A"].id: [],
        }
        wanted = [sc.apps["A"], sc.apps["F"]]
        got = rc.paper_problems(s, wanted, BEFORE, DEADLINE)
        assert {k: codes(v) for k, v in got.items()} == {
            sc.apps["A"].id: [],
            sc.apps["F"].id: [("paper_missing", "warning"), ("not_in_summary", "warning")],
        }
        # Rows the caller is about to write win over what the database holds (a recheck in progress).
        sc.apps["F"].project_name = "基于边缘计算的渣土车智能识别系统"
        sc.apps["F"].org_name = "武汉未来城科技有限公司"
        sc.apps["F"].form_type = "scenario"
        s.flush()
        got = rc.paper_problems(s, [sc.apps["F"]], BEFORE, DEADLINE)
        assert codes(got[sc.apps["F"].id]) == [("not_in_summary", "warning")]
        s.rollback()

        sections = rc.paper_for(s, [app_id["A"], app_id["G"], 999], settings=SETTINGS, deadline=DEADLINE)
    assert set(sections) == {app_id["A"], app_id["G"]}
    a = sections[app_id["A"]]
    assert (a["status"], a["copies"], a["score"]) == ("matched", 2, 100.0)
    assert [(e["id"], e["copies"], e["item"], e["matched_by"], e["received_at"]) for e in a["entries"]] == [
        (entry_id[1], 2, "form", "exact", "2026-07-06T10:00:00+08:00")
    ]
    assert [c["id"] for c in a["candidates"]] == [entry_id[2]]
    assert a["summary"]["status"] == "listed" and a["summary"]["rows"][0]["document"]["filename"].startswith("东湖")
    assert sections[app_id["G"]]["status"] == "copies_short"


def test_the_export_json_carries_the_paper_section(engine: Engine) -> None:
    from review.exports import export_json, register_section

    # What the CLI does at start-up (intake/commands/paper.py); other tests expect the placeholder.
    rc.register_export_section()
    try:
        with Session(engine) as s:
            build(s)
            s.commit()
            items = {i["receipt_no"]: i for i in export_json(s, CFG)}
    finally:
        register_section("paper", None)
    assert items["AI2026-S-0001"]["paper"]["status"] == "matched"
    assert items["AI2026-S-0003"]["paper"]["status"] == "late"
    assert items["AI2026-T-0001"]["paper"] == {
        "status": "missing",
        "score": None,
        "copies": 0,
        "entries": [],
        "candidates": [],
        "summary": {"status": "unknown", "district": None, "rows": [], "candidates": []},
    }


# -- generated logs: realistic variants and typos, orphans on both sides ---------------------------------


def test_generated_log_and_summaries_match_exactly(engine: Engine) -> None:
    season = papergen.make_season(300, seed=0)
    rng = random.Random("summaries:0")
    never_listed = {a.id for a in season.apps[::7]}
    with Session(engine) as s:
        receipt_of: dict[int, str] = {}
        for g in season.apps:
            r = app_row(s, g.receipt_no, g.form_type, g.org_name, g.project_name, g.credit_code, g.district)
            receipt_of[g.id] = r.receipt_no
            assert r.id == g.id  # the generator numbers applications as the database does
        entry_truth: dict[int, str | None] = {}
        for ge in season.entries:
            e = paper(s, ge.received_at, ge.org_name, ge.project_name, ge.form_type, ge.copies, district=ge.district)
            assert e.id is not None
            truth = season.truth[ge.id]
            entry_truth[e.id] = receipt_of[truth] if truth is not None else None
        row_truth: dict[tuple[str, int], str | None] = {}
        for district in sorted({a.district for a in season.apps}):
            rows = papergen.summary_for(season.apps, district, rng, skip=never_listed, extra=1)
            doc = summary_doc(
                s, f"{district}汇总表.xlsx", f"{district}经济和信息化局", [r.fields for r in rows], t(7, 12)
            )
            for i, r in enumerate(rows):
                row_truth[(doc.filename, i)] = receipt_of[r.app_id] if r.app_id is not None else None
        s.commit()
        report = rc.run(s, SETTINGS, DEADLINE, BEFORE)
        # A recheck of a few applications matches only what concerns them, with the same outcome.
        few = s.exec(select(Application).where(col(Application.id) % 25 == 3)).all()
        focused = rc.paper_problems(s, few, BEFORE, DEADLINE)
        inputs = rc.load_inputs(s, SETTINGS)
    full = {a.app.id: a for a in report.apps}
    assert len(few) == 12 and focused == {a.id: full[a.id].problems for a in few}
    part = rc.reconcile(inputs, SETTINGS, DEADLINE, BEFORE, focus={a.id for a in few})
    assert len(part.entries) < len(report.entries) / 5
    assert sorted(a.app.id for a in part.apps) == sorted(a.id for a in few)
    for a in part.apps:
        b = full[a.app.id]
        assert (a.paper_status, a.copies, a.summary_status, a.problems) == (
            b.paper_status, b.copies, b.summary_status, b.problems
        )  # fmt: skip

    got_entries = {er.entry.id: er.link.app.receipt_no if er.link.app else None for er in report.entries}
    assert got_entries == entry_truth
    assert {er.link.status for er in report.entries} == {"matched", "orphan"}
    assert sum(v is None for v in entry_truth.values()) == 12  # orphans on the paper side
    got_rows = {(rr.row.doc.filename, rr.row.index): rr.link.app.receipt_no if rr.link.app else None
                for rr in report.rows}  # fmt: skip
    assert got_rows == row_truth
    assert sum(v is None for v in row_truth.values()) == 15  # a project never emailed, per district
    listed = {a.app.id for a in report.apps if a.summary_status == "listed"}
    assert listed == {a.id for a in season.apps} - never_listed
    assert {a.summary_status for a in report.apps if a.app.id in never_listed} == {"not_listed"}
    has_paper = {receipt for receipt in entry_truth.values() if receipt}
    assert {a.app.receipt_no for a in report.apps if a.paper_status != "missing"} == has_paper


def test_matcher_on_generated_variants_precision_and_recall() -> None:
    """A larger generated season, pure matching: the figures bench/bench_reconcile.py reports, as a floor."""
    season = papergen.make_season(2000, seed=11)
    m = rc.Matcher([rc.Keys.of(a.org_name, a.project_name, a.form_type, a.credit_code) for a in season.apps],
                   SETTINGS)  # fmt: skip
    res = m.match([rc.Keys.of(e.org_name, e.project_name, e.form_type, e.credit_code) for e in season.entries])
    tp = fp = 0
    for e, r in zip(season.entries, res, strict=True):
        if r.status == "matched":
            if season.apps[r.target or 0].id == season.truth[e.id]:
                tp += 1
            else:
                fp += 1
    positives = sum(v is not None for v in season.truth.values())
    assert tp / (tp + fp) >= 0.98
    assert tp / positives >= 0.98


def test_canonical_district_and_keys() -> None:
    assert rc.canonical_district("江汉区科技和经济信息化局") == "江汉区"
    assert rc.canonical_district("东湖新技术开发区管委会") == "东湖高新区"
    assert rc.canonical_district("武汉经济技术开发区") == "武汉经开区"
    assert rc.canonical_district("东西湖") == "东西湖区"
    assert rc.canonical_district("某某单位") is None
    k1 = rc.Keys.of("光谷（武汉）智能科技有限责任公司、武汉大学", "《城市内涝智能预警系统》（更正版）", "scenario")
    k2 = rc.Keys.of("武汉光谷智能科技股份有限公司", "城市内涝智能预警系统")
    assert (k1.org, k1.trade, k1.tail, k1.project) == (k2.org, k2.trade, k2.tail, k2.project)
    assert (k1.org, k1.trade, k1.tail) == ("光谷智能科技", "光谷", "智能科技")


# -- the CLI ---------------------------------------------------------------------------------------------


def test_intake_reconcile_json_and_staff_match_from_the_terminal(tmp_path: Path, db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    with Session(engine) as s:
        sc = build(s)
        s.commit()
        e2 = sc.entries[2].id
    engine.dispose()
    config = write_config(tmp_path, db_url=db_url)

    res = run_intake("reconcile", "--format", "json", config=config)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert set(data) >= {"applications", "paper_entries", "summary_rows", "districts", "counts", "thresholds"}
    apps = {a["receipt_no"]: a for a in data["applications"]}
    assert apps["AI2026-S-0002"]["paper"]["status"] == "ambiguous"
    entry2 = next(e for e in data["paper_entries"] if e["id"] == e2)
    assert entry2["status"] == "ambiguous"
    assert [c["receipt_no"] for c in entry2["candidates"]] == ["AI2026-S-0001", "AI2026-S-0002"]
    assert data["counts"]["paper_entries"] == {"ambiguous": 1, "district": 2, "matched": 7, "orphan": 1}
    orphan_rows = [r for r in data["summary_rows"] if r["status"] == "orphan"]
    assert [(r["org_name"], r["project_name"]) for r in orphan_rows] == [
        ("武汉市江汉区大数据中心", "江汉区一网统管研判智能体")
    ]

    res = run_intake("paper", "match", str(e2), "AI2026-S-0002", "--reason", "核对封面", config=config)
    assert res.returncode == 2 and "--user is required" in res.stderr
    res = run_intake("paper", "match", str(e2), "AI2026-S-0002", "-u", "李静", "-r", "核对封面", config=config)
    assert res.returncode == 0, res.stderr
    assert f"paper:{e2}: matched to AI2026-S-0002" in res.stdout

    res = run_intake("reconcile", "--format", "json", config=config)
    data = json.loads(res.stdout)
    apps = {a["receipt_no"]: a for a in data["applications"]}
    assert apps["AI2026-S-0002"]["paper"]["status"] == "matched"
    assert apps["AI2026-S-0002"]["paper"]["entries"][0]["matched_by"] == "staff"
    # `intake reconcile` applied the problems to the applications.
    with Session(make_engine(db_url)) as s:
        b = s.exec(select(Application).where(Application.receipt_no == "AI2026-S-0002")).one()
        assert [p["code"] for p in b.problems] == []
        f = s.exec(select(Application).where(Application.receipt_no == "AI2026-T-0001")).one()
        assert [p["code"] for p in f.problems] == ["paper_missing", "not_in_summary"]

    # `intake export` fills each application's `paper` section from the reconciliation.
    res = run_intake("export", "--format", "json", config=config)
    assert res.returncode == 0, res.stderr
    exported = {a["receipt_no"]: a["paper"] for a in json.loads(res.stdout)}
    assert {r: p["status"] for r, p in exported.items()} == {
        "AI2026-M-0001": "matched", "AI2026-M-0002": "copies_short", "AI2026-P-0001": "matched",
        "AI2026-P-0002": "matched", "AI2026-S-0001": "matched", "AI2026-S-0002": "matched", "AI2026-S-0003": "late",
        "AI2026-S-0004": "missing", "AI2026-T-0001": "missing",
    }  # fmt: skip

    table = run_intake("reconcile", "--no-apply", config=config)
    assert table.returncode == 0, table.stderr
    assert "AI2026-T-0001" in table.stdout and "武汉未来城科技有限公司" in table.stdout
