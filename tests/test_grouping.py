"""Grouping documents into applications: the rules, and that arrival order changes nothing."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.types import Format, Kind
from review.grouping import group
from review.model import DocView, MessageView

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 7, 1, 10, 0, tzinfo=CST)
ORG_A, CODE_A = "武汉泰山云电子科技股份有限公司", "91420100MA4KX1234X"
ORG_B, CODE_B = "武汉青百测绘科技有限公司", "91420111872C356H3P"
ORG_C = "湖北楚天数智城市运营有限责任公司"


def msg(mid: int, sender: str = "a@qq.com", hours: float = 0) -> MessageView:
    at = T0 + timedelta(hours=hours)
    return MessageView(
        id=mid,
        sha256=f"{mid:064x}",
        from_addr=sender,
        reply_to=(),
        subject="申报",
        sent_at=at,
        received_at=at,
        received_source="internaldate",
    )


class Docs:
    """Builds DocViews with names, so tests can talk about documents rather than ids."""

    def __init__(self) -> None:
        self.docs: list[DocView] = []
        self.name_of: dict[int, str] = {}

    def add(
        self,
        name: str,
        m: MessageView,
        kind: Kind,
        fmt: Format = Format.docx,
        *,
        org: str | None = None,
        code: str | None = None,
        project: str | None = None,
        text: str = "",
        filename: str | None = None,
        member_path: str = "",
        parent: int | None = None,
        **fields: Any,
    ) -> DocView:
        f = dict(fields)
        if org:
            f["org_name"] = org
        if code:
            f["credit_code"] = code
        if project:
            f["project_name"] = project
        from review.identity import document_identity

        c, n, p = document_identity(kind, f, text)
        d = DocView(
            id=len(self.docs) + 1,
            message=m,
            kind=kind,
            format=fmt,
            filename=filename or f"{name}.{fmt.value}",
            sha256=f"{hash(name) & (2**64 - 1):064x}",
            fields=f,
            text=text,
            received_at=m.received_at,
            member_path=member_path,
            parent_pk=parent,
            org_code=c,
            org_name_key=n,
            project_key=p,
        )
        self.docs.append(d)
        self.name_of[d.id] = name
        return d


def partition(docs: list[DocView], name_of: dict[int, str]) -> tuple[frozenset[frozenset[str]], frozenset[str]]:
    g = group(docs)
    apps = frozenset(frozenset(name_of[d.id] for d in a.docs) for a in g.apps)
    return apps, frozenset(name_of[d.id] for d in g.unassigned)


def full_application(b: Docs, m: MessageView, prefix: str, kind: Kind, org: str, code: str, project: str) -> None:
    b.add(f"{prefix}-word", m, kind, org=org, code=code, project=project)
    b.add(f"{prefix}-pdf", m, kind, Format.pdf_scan, org=org, code=code, project=project)
    b.add(f"{prefix}-commitment", m, Kind.commitment, text=f"承诺书……申请单位（盖章）：{org}")
    b.add(f"{prefix}-license", m, Kind.license, Format.image, org=org, code=code)
    b.add(f"{prefix}-evidence", m, Kind.evidence, Format.pdf_text, text=f"计算机软件著作权登记证书\n著作权人：{org}")


def test_one_email_makes_one_complete_application() -> None:
    b = Docs()
    full_application(b, msg(1), "a", Kind.form_model, ORG_A, CODE_A, "占道经营行业大模型")
    g = group(b.docs)
    assert len(g.apps) == 1 and not g.unassigned
    app = g.apps[0]
    assert app.form_type == "model" and app.org_key == CODE_A
    assert {d.item for d in app.docs} == {"word", "pdf", "commitment", "license", "evidence"}
    assert {b.name_of[d.id]: d.assigned_by for d in app.docs} == {
        "a-word": "form",
        "a-pdf": "form",
        "a-commitment": "content",
        "a-license": "content",
        "a-evidence": "content",
    }


def test_resubmission_with_marked_project_name_adds_versions() -> None:
    b = Docs()
    full_application(b, msg(1), "a", Kind.form_scenario, ORG_A, CODE_A, "智慧城管违停识别场景")
    m2 = msg(2, hours=30)
    b.add("a-word-v2", m2, Kind.form_scenario, org=ORG_A, code=CODE_A, project="智慧城管违停识别场景（更正版）")
    b.add(
        "a-pdf-v2",
        m2,
        Kind.form_scenario,
        Format.pdf_scan,
        org=ORG_A,
        code=CODE_A,
        project="智慧城管违停识别场景(以此为准)",
    )
    g = group(b.docs)
    assert len(g.apps) == 1
    assert [b.name_of[d.id] for d in g.apps[0].versions("word")] == ["a-word", "a-word-v2"]
    assert g.apps[0].of_record("word", T0 + timedelta(days=10)) is not None


def test_name_only_scan_joins_the_coded_word_version() -> None:
    b = Docs()
    m = msg(1)
    b.add("word", m, Kind.form_platform, org=ORG_B, code=CODE_B, project="城市一体化智能治理平台")
    # The OCR missed the credit code; the name still ties the scan to the unit.
    b.add(
        "scan", m, Kind.form_platform, Format.pdf_scan, org="武汉青百测绘科技有限公司", project="城市一体化智能治理平台"
    )
    g = group(b.docs)
    assert len(g.apps) == 1 and len(g.apps[0].docs) == 2


def test_district_archive_is_split_by_content_and_folder() -> None:
    b = Docs()
    m = msg(1, sender="office@jianghan.gov.cn")
    zip_row = b.add("zip", m, Kind.other, Format.archive, filename="江汉区申报材料.zip")
    for i, (org, code, proj, kind) in enumerate(
        [
            (ORG_A, CODE_A, "占道经营行业大模型", Kind.form_model),
            (ORG_B, CODE_B, "灵犀防爆排险机器人", Kind.form_terminal),
            (ORG_C, None, "一网统管事件智能分拨场景", Kind.form_scenario),
        ]
    ):
        folder = f"材料/{i + 1}"
        b.add(
            f"word{i}",
            m,
            kind,
            org=org,
            code=code,
            project=proj,
            member_path=f"{folder}/申报书.docx",
            parent=zip_row.id,
        )
        b.add(
            f"pdf{i}",
            m,
            kind,
            Format.pdf_scan,
            org=org,
            code=code,
            project=proj,
            member_path=f"{folder}/申报书.pdf",
            parent=zip_row.id,
        )
        # No name inside: only the folder says whose proof this is.
        b.add(f"photo{i}", m, Kind.evidence, Format.image, member_path=f"{folder}/现场照片.jpg", parent=zip_row.id)
    b.add("summary", m, Kind.summary, recommender="江汉区经济和信息化局")
    g = group(b.docs)
    assert len(g.apps) == 3
    by_org = {a.org_name: {b.name_of[d.id] for d in a.docs} for a in g.apps}
    assert by_org[ORG_A] == {"word0", "pdf0", "photo0"}
    assert by_org[ORG_B] == {"word1", "pdf1", "photo1"}
    assert by_org[ORG_C] == {"word2", "pdf2", "photo2"}
    assert {b.name_of[d.id] for d in g.district_docs} == {"summary"}
    # The archive itself names nobody and its email holds three applications: staff decide.
    assert {b.name_of[d.id] for d in g.unassigned} == {"zip"}
    assert all(d.assigned_by == "folder" for a in g.apps for d in a.docs if d.kind == Kind.evidence)


def test_a_unit_named_in_the_archive_path_claims_the_file() -> None:
    b = Docs()
    m = msg(1, sender="office@jianghan.gov.cn")
    b.add("w1", m, Kind.form_model, org=ORG_A, code=CODE_A, project="政务审批智能体", member_path="A/申报书.docx")
    b.add("w2", m, Kind.form_scenario, org=ORG_B, code=CODE_B, project="违停识别场景", member_path="B/申报书.docx")
    b.add("photo", m, Kind.evidence, Format.image, member_path=f"证明材料/{ORG_B}-现场照片.jpg")
    g = group(b.docs)
    owner = next(a for a in g.apps if any(b.name_of[d.id] == "photo" for d in a.docs))
    assert owner.org_name == ORG_B
    assert next(d for d in owner.docs if b.name_of[d.id] == "photo").assigned_by == "filename"


def test_same_unit_in_two_directions_makes_siblings() -> None:
    b = Docs()
    m = msg(1)
    b.add("model", m, Kind.form_model, org=ORG_A, code=CODE_A, project="城管执法智能体")
    b.add("scenario", m, Kind.form_scenario, org=ORG_A, code=CODE_A, project="城管执法智能体应用场景")
    b.add("license", m, Kind.license, Format.image, org=ORG_A, code=CODE_A)
    g = group(b.docs)
    assert sorted(a.form_type for a in g.apps) == ["model", "scenario"]
    for a in g.apps:
        assert [s.form_type for s in a.siblings] == [t for t in ("model", "scenario") if t != a.form_type]
    # One licence serves the unit: it sits in one application and counts for the other through org_docs.
    holders = [a for a in g.apps if any(d.kind == Kind.license for d in a.docs)]
    assert len(holders) == 1
    other = next(a for a in g.apps if a is not holders[0])
    assert [d.kind for d in other.org_docs] == [Kind.license]


def test_two_projects_of_one_unit_in_one_direction_stay_apart() -> None:
    b = Docs()
    b.add("p1", msg(1), Kind.form_terminal, org=ORG_B, code=CODE_B, project="灵犀防爆排险机器人")
    b.add("p2", msg(2), Kind.form_terminal, org=ORG_B, code=CODE_B, project="低空巡检无人机")
    g = group(b.docs)
    assert len(g.apps) == 2


def test_licence_sent_alone_later_finds_its_application() -> None:
    b = Docs()
    b.add("word", msg(1, sender="x@163.com"), Kind.form_model, org=ORG_A, code=CODE_A, project="政务审批智能体")
    # A second email: "补充营业执照", from another address of the same unit; the licence names the code.
    b.add("license", msg(2, sender="y@qq.com", hours=5), Kind.license, Format.image, org=ORG_A, code=CODE_A)
    # A third: a proof file naming nobody, from the first address: the sender has one application.
    b.add("proof", msg(3, sender="x@163.com", hours=6), Kind.evidence, Format.image)
    g = group(b.docs)
    assert len(g.apps) == 1 and not g.unassigned
    how = {b.name_of[d.id]: d.assigned_by for d in g.apps[0].docs}
    assert how == {"word": "form", "license": "content", "proof": "sender"}


def test_a_proof_that_could_be_either_application_stays_unassigned() -> None:
    b = Docs()
    m = msg(1)
    b.add("w1", m, Kind.form_model, org=ORG_A, code=CODE_A, project="政务审批智能体")
    b.add("w2", m, Kind.form_scenario, org=ORG_B, code=CODE_B, project="违停识别场景")
    b.add("photo", m, Kind.evidence, Format.image)
    g = group(b.docs)
    assert [b.name_of[d.id] for d in g.unassigned] == ["photo"]
    assert g.unassigned[0].assign_note == "同一邮件或发件人对应多个申报，无法确定归属"


def _season() -> Docs:
    b = Docs()
    full_application(b, msg(1, "a@qq.com"), "a", Kind.form_model, ORG_A, CODE_A, "占道经营行业大模型")
    full_application(b, msg(2, "b@126.com"), "b", Kind.form_terminal, ORG_B, CODE_B, "灵犀防爆排险机器人")
    b.add("a-scenario", msg(3, "a@qq.com"), Kind.form_scenario, org=ORG_A, code=CODE_A, project="占道经营识别场景")
    b.add(
        "b-word-v2",
        msg(4, "b@126.com"),
        Kind.form_terminal,
        org=ORG_B,
        code=CODE_B,
        project="灵犀防爆排险机器人（更正）",
    )
    b.add("c-word", msg(5, "c@x.cn"), Kind.form_platform, org=ORG_C, project="城市智能治理平台")
    b.add(
        "c-pdf",
        msg(6, "c@x.cn"),
        Kind.form_platform,
        Format.pdf_text,
        org="湖北楚天数智城市运营有限公司",
        project="城市智能治理平台",
    )
    b.add("c-license", msg(7, "other@x.cn"), Kind.license, Format.image, org=ORG_C)
    b.add("stray", msg(8, "who@x.cn"), Kind.evidence, Format.image)
    return b


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(range(len(_season().docs)))))
def test_arrival_order_does_not_change_the_grouping(order: list[int]) -> None:
    base = _season()
    expected = partition(base.docs, base.name_of)
    # Another arrival order: the documents get other ids (ids follow arrival) and come in another order.
    shuffled = Docs()
    for new_id, i in enumerate(order, start=1):
        d = base.docs[i]
        copy = dataclasses.replace(d, id=new_id, assigned_by=None, assign_note=None)
        shuffled.docs.append(copy)
        shuffled.name_of[new_id] = base.name_of[d.id]
    assert partition(shuffled.docs, shuffled.name_of) == expected


def test_season_grouping_is_what_staff_expect() -> None:
    b = _season()
    apps, unassigned = partition(b.docs, b.name_of)
    assert apps == {
        frozenset({"a-word", "a-pdf", "a-commitment", "a-license", "a-evidence"}),
        frozenset({"a-scenario"}),
        frozenset({"b-word", "b-pdf", "b-commitment", "b-license", "b-evidence", "b-word-v2"}),
        frozenset({"c-word", "c-pdf", "c-license"}),
    }
    assert unassigned == {"stray"}
