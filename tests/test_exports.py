"""Exports from the database: JSON per SPEC 9 (validated by review/export.schema.json), CSV with BOM,
the 附件5 xlsx; rows built directly in the database."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openpyxl import load_workbook
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from intake.config import load_config
from parsers.schema import load_schema
from parsers.types import Kind
from review import exports
from review.decisions import decide
from review.exports import (
    ALL_COLUMNS,
    SCHEMA_PATH,
    SUMMARY_SHEETS,
    export_csv,
    export_json,
    export_xlsx,
    register_section,
    short_description,
)
from store.engine import make_engine, migrate
from store.models import Application, DocumentRow, Message

CST = timezone(timedelta(hours=8))
DEADLINE = datetime(2026, 7, 7, 17, 0, tzinfo=CST)
CFG = load_config(None)
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
LETTER = {"scenario": "S", "model": "M", "platform": "P", "terminal": "T"}
KIND = {"word": "form", "pdf": "form", "commitment": "commitment", "license": "license", "evidence": "evidence"}
FORMAT = {"word": "docx", "pdf": "pdf_scan", "commitment": "docx", "license": "image", "evidence": "pdf_text"}
LONG = (
    "针对城市道路病害发现滞后、人工巡检成本高的问题，本项目利用多模态大模型对巡检车辆采集的视频进行实时分析。"
    "系统可自动识别坑槽、裂缝、井盖缺失等十余类病害，并推送至城管平台派单处置。"
    "试点以来累计识别病害两万余处，处置时效提升百分之六十。"
)


@pytest.fixture(autouse=True)
def no_section_hooks() -> Iterator[None]:
    # These tests are about review/ alone: hooks that CLI modules registered earlier in the run are set aside.
    saved = dict(exports._SECTION_HOOKS)
    exports._SECTION_HOOKS.clear()
    yield
    exports._SECTION_HOOKS.clear()
    exports._SECTION_HOOKS.update(saved)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    e = make_engine(db_url)
    migrate(e)
    yield e
    e.dispose()


class Seeder:
    """Messages, documents and applications written straight to the tables, as the pipeline leaves them."""

    _serial = itertools.count(1)

    def __init__(self, session: Session) -> None:
        self.s = session
        self.n = 0

    def message(self, at: datetime, sender: str = "a@qq.com") -> Message:
        self.n += 1
        m = Message(
            sha256=f"{next(self._serial):064x}",
            size=100,
            source="imap",
            source_ref=f"INBOX/{self.n}",
            received_at=at,
            received_source="internaldate",
            state="processed",
            message_id=f"<m{self.n}@qq.com>",
            from_addr=sender,
            subject="申报材料",
            sent_at=at,
            msg_class="submission",
        )
        self.s.add(m)
        self.s.flush()
        return m

    def application(
        self,
        form_type: str,
        no: int,
        *,
        at: datetime,
        fields: dict[str, Any] | None = None,
        problems: list[dict[str, Any]] | None = None,
        items: tuple[str, ...] = ("word", "pdf", "commitment", "license", "evidence"),
        status: str | None = None,
        district: str | None = "江汉区",
        revision_at: datetime | None = None,
    ) -> Application:
        from review.status import status_of

        problems = problems or []
        f = {"org_name": f"武汉单位{no}有限公司", "project_name": f"项目{no}", "contact_name": "张三",
             "contact_phone": "027-85317173", **(fields or {})}  # fmt: skip
        app = Application(
            call_code="AI2026",
            form_type=form_type,
            receipt_no=f"AI2026-{LETTER[form_type]}-{no:04d}",
            org_key=f"单位{no}",
            org_name=f["org_name"],
            credit_code=f.get("credit_code"),
            project_name=f["project_name"],
            district=district,
            sender="a@qq.com",
            status=status or status_of(problems),
            problems=problems,
            fields=f,
            first_received_at=at,
            last_received_at=revision_at or at,
        )
        self.s.add(app)
        self.s.flush()
        m = self.message(at)
        record: dict[str, list[int]] = {}
        for seq, item in enumerate(items):
            kind = f"form_{form_type}" if KIND[item] == "form" else KIND[item]
            d = self.doc(m, app, kind, FORMAT[item], f"{item}-{no}.{FORMAT[item][:4]}", seq)
            record[item] = [d.id or 0]
        if revision_at is not None:
            m2 = self.message(revision_at)
            self.doc(m2, app, f"form_{form_type}", "docx", f"word-{no}（更正）.docx", 0)
        app.record = record
        self.s.add(app)
        self.s.flush()
        return app

    def doc(self, m: Message, app: Application, kind: str, fmt: str, name: str, seq: int) -> DocumentRow:
        self.n += 1
        d = DocumentRow(
            message_pk=m.id or 0,
            seq=seq,
            filename=name,
            sha256=f"{self.n:064x}",
            size=1000 + self.n,
            kind=kind,
            format=fmt,
            received_at=m.received_at,
            application_pk=app.id,
            text=f"{name} 正文 {app.project_name}",
        )
        self.s.add(d)
        self.s.flush()
        return d


LATE = {"code": "late", "severity": "error", "detail": "截止后才首次收到：申报书 Word 版"}
NO_SEAL = {"code": "no_seal", "severity": "warning", "detail": "PDF 版未检测到红色公章"}
NO_LICENSE = {"code": "missing_license", "severity": "error", "detail": "未收到营业执照"}


def season(engine: Engine) -> None:
    """Seven applications: every direction, a late one accepted, an incomplete one, a revision, a merged one."""
    with Session(engine) as s:
        sd = Seeder(s)
        sd.application("scenario", 1, at=DEADLINE - timedelta(days=2), fields={"background": LONG,
                       "scenario_type": "AI+市政设施", "credit_code": "91420100MA4K123456"})  # fmt: skip
        sd.application("scenario", 2, at=DEADLINE, problems=[LATE, NO_SEAL], district="武昌区")
        model = {"overview": "多模态模型。", "product_type": "多模态大模型"}
        sd.application("model", 1, at=DEADLINE - timedelta(hours=3), fields=model, problems=[NO_LICENSE],
                       items=("word", "pdf", "commitment"))  # fmt: skip
        platform = {"overview": "平台概述", "service_domains": ["城市治理", "应急安防"]}
        sd.application("platform", 1, at=DEADLINE - timedelta(days=1), fields=platform,
                       revision_at=DEADLINE + timedelta(hours=1))  # fmt: skip
        terminal = {"product_summary": "巡检机器人。"}
        sd.application("terminal", 1, at=DEADLINE - timedelta(milliseconds=1), fields=terminal)
        keep = sd.application("terminal", 2, at=DEADLINE - timedelta(days=3), district=None)
        gone = sd.application("terminal", 3, at=DEADLINE - timedelta(days=3))
        gone.status, gone.merged_into = "merged", keep.id
        s.add(gone)
        s.commit()
    with Session(engine) as s:
        decide(s, "AI2026-S-0002", "accept-late", None, "Date 头 16:58，服务器延迟到达", "王莹",
               now=DEADLINE + timedelta(days=1))  # fmt: skip


def by_receipt(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["receipt_no"]: i for i in items}


# -- JSON ----------------------------------------------------------------------------------------------------


def test_json_export_validates_against_the_schema_and_follows_spec_9(engine: Engine) -> None:
    season(engine)
    with Session(engine) as s:
        items = export_json(s, CFG)
    jsonschema.validate(items, SCHEMA)
    assert [i["receipt_no"] for i in items] == [
        "AI2026-M-0001", "AI2026-P-0001", "AI2026-S-0001", "AI2026-S-0002", "AI2026-T-0001", "AI2026-T-0002",
    ]  # fmt: skip (the merged AI2026-T-0003 is not an application any more)
    apps = by_receipt(items)

    s1 = apps["AI2026-S-0001"]
    assert (s1["form_type"], s1["status"], s1["late"]) == ("scenario", "complete", False)
    assert s1["org_name"] == "武汉单位1有限公司"
    assert s1["received_at"] == "2026-07-05T17:00:00+08:00"
    assert s1["credit_code"] == "91420100MA4K123456" and s1["fields"]["background"] == LONG
    assert [(d["filename"], d["kind"], d["format"], d["item"], d["of_record"]) for d in s1["documents"]] == [
        ("word-1.docx", "form_scenario", "docx", "word", True),
        ("pdf-1.pdf_", "form_scenario", "pdf_scan", "pdf", True),
        ("commitment-1.docx", "commitment", "docx", "commitment", True),
        ("license-1.imag", "license", "image", "license", True),
        ("evidence-1.pdf_", "evidence", "pdf_text", "evidence", True),
    ]
    assert {d["message_id"] for d in s1["documents"]} == {"<m1@qq.com>"}
    assert s1["documents"][0]["received_at"] == "2026-07-05T17:00:00+08:00"
    assert s1["paper"] == {"status": "unknown", "entries": []} and s1["ack"] == {"status": "unknown", "sent_at": None}
    assert s1["problems"] == [] and s1["decisions"] == []

    s2 = apps["AI2026-S-0002"]
    # Accepted late: the fact stays (late, the problem), the status no longer says late.
    assert (s2["status"], s2["late"], s2["late_accepted"]) == ("complete", True, True)
    assert s2["received_at"] == "2026-07-07T17:00:00+08:00"
    assert s2["problems"] == [
        {**LATE, "waived": {"by": "王莹", "at": "2026-07-08T17:00:00+08:00", "reason": "Date 头 16:58，服务器延迟到达",
                            "decision": 1}},
        NO_SEAL,
    ]  # fmt: skip
    assert s2["decisions"] == [
        {"id": 1, "action": "accept_late", "problem_code": "late", "reason": "Date 头 16:58，服务器延迟到达",
         "user": "王莹", "at": "2026-07-08T17:00:00+08:00", "revokes": None, "revoked": False}
    ]  # fmt: skip

    m1 = apps["AI2026-M-0001"]
    assert (m1["status"], m1["late"]) == ("incomplete", False)
    assert m1["versions"] == {"word": 1, "pdf": 1, "commitment": 1, "license": 0, "evidence": 0}

    p1 = apps["AI2026-P-0001"]
    words = [(d["filename"], d["version"], d["of_record"]) for d in p1["documents"] if d["item"] == "word"]
    assert words == [("word-1.docx", 1, True), ("word-1（更正）.docx", 2, False)]
    assert p1["last_received_at"] == "2026-07-07T18:00:00+08:00"
    assert apps["AI2026-T-0001"]["received_at"] == "2026-07-07T16:59:59.999000+08:00"
    assert apps["AI2026-T-0002"]["district"] is None


def test_the_schema_names_every_field_key_of_the_form_templates() -> None:
    keys = {f.key for k in ("form_scenario", "form_model", "form_platform", "form_terminal")
            for f in load_schema(Kind(k)).fields}  # fmt: skip
    assert set(SCHEMA["$defs"]["fields"]["properties"]) == keys
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_the_schema_rejects_what_the_contract_forbids(engine: Engine) -> None:
    season(engine)
    with Session(engine) as s:
        item = export_json(s, CFG)[0]
    for broken in (
        {k: v for k, v in item.items() if k != "paper"},
        {**item, "status": "merged"},
        {**item, "received_at": "2026-07-07 17:00:00"},
        {**item, "fields": {**item["fields"], "not_a_spec_key": "x"}},
        {**item, "problems": [{"code": "late", "severity": "fatal", "detail": ""}]},
        {**item, "documents": [{**item["documents"][0], "sha256": "xyz"}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate([broken], SCHEMA)


def test_other_areas_fill_the_paper_and_ack_sections_through_hooks(engine: Engine) -> None:
    season(engine)
    seen: list[list[str]] = []

    def paper(session: Session, apps: Any) -> dict[int, dict[str, Any]]:
        seen.append([a.receipt_no for a in apps])
        first = next(a for a in apps if a.receipt_no == "AI2026-S-0001")
        return {first.id: {"status": "received", "entries": [{"copies": 2, "item": "申报书"}]}}

    def ack(session: Session, apps: Any) -> dict[int, dict[str, Any]]:
        return {a.id: {"status": "sent", "sent_at": "2026-07-07T10:00:00+08:00"} for a in apps}

    register_section("paper", paper)
    register_section("ack", ack)
    try:
        with Session(engine) as s:
            items = by_receipt(export_json(s, CFG))
    finally:
        register_section("paper", None)
        register_section("ack", None)
    jsonschema.validate(list(items.values()), SCHEMA)
    assert len(seen) == 1 and len(seen[0]) == 6  # once, in bulk
    assert items["AI2026-S-0001"]["paper"] == {"status": "received", "entries": [{"copies": 2, "item": "申报书"}]}
    assert items["AI2026-S-0002"]["paper"] == {"status": "unknown", "entries": []}
    assert items["AI2026-M-0001"]["ack"]["status"] == "sent"
    with pytest.raises(ValueError, match="unknown export section"):
        register_section("paperwork", paper)


def test_filters_select_applications_and_read_only_their_rows(engine: Engine) -> None:
    season(engine)
    with Session(engine) as s:
        assert [i["receipt_no"] for i in export_json(s, CFG, statuses=["incomplete"])] == ["AI2026-M-0001"]
        assert [i["receipt_no"] for i in export_json(s, CFG, form_types=["terminal"])] == [
            "AI2026-T-0001", "AI2026-T-0002",
        ]  # fmt: skip
        one = export_json(s, CFG, receipts=["AI2026-T-0003"], include_merged=True)
    assert one[0]["status"] == "merged" and one[0]["merged_into"] == "AI2026-T-0002"
    assert [d["filename"] for d in one[0]["documents"]][:1] == ["word-3.docx"]


def test_a_selection_larger_than_one_in_clause_is_read_in_chunks(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    season(engine)
    monkeypatch.setattr(exports, "_CHUNK", 2)
    wanted = ["AI2026-T-0002", "AI2026-S-0001", "AI2026-M-0001", "AI2026-S-0001", "AI2026-X-0404"]
    with Session(engine) as s:
        items = export_json(s, CFG, receipts=wanted)
    assert [i["receipt_no"] for i in items] == ["AI2026-M-0001", "AI2026-S-0001", "AI2026-T-0002"]
    assert [len(i["documents"]) for i in items] == [3, 5, 5]
    assert items[1]["documents"][0]["message_id"] is not None


def test_exports_read_in_bulk_whatever_the_number_of_applications(engine: Engine) -> None:
    """No per-application queries: the statement count does not grow with the season."""

    def count(n_apps: int) -> int:
        with Session(engine) as s:
            sd = Seeder(s)
            base = 100 * n_apps
            for i in range(n_apps):
                sd.application("scenario", base + i, at=DEADLINE - timedelta(hours=i + 1))
            s.commit()
        statements: list[str] = []

        def on_execute(*args: Any) -> None:
            statements.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", on_execute)
        try:
            with Session(engine) as s:
                export_json(s, CFG)
                export_xlsx(s, CFG, io.BytesIO())
        finally:
            event.remove(engine, "before_cursor_execute", on_execute)
        return len(statements)

    assert count(3) == count(40) <= 12


# -- CSV and xlsx ----------------------------------------------------------------------------------------------


def test_csv_has_a_bom_chinese_headings_and_one_row_per_application(engine: Engine) -> None:
    season(engine)
    with Session(engine) as s:
        raw = export_csv(s, CFG)
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0][0] == "受理编号" and rows[0] == [h for h, _ in ALL_COLUMNS]
    assert len(rows) == 7
    s2 = next(r for r in rows if r[0] == "AI2026-S-0002")
    col = {h: i for i, (h, _) in enumerate(ALL_COLUMNS)}
    assert s2[col["申报方向"]] == "典型应用场景" and s2[col["状态"]] == "材料齐全"
    assert s2[col["逾期"]] == "是（已同意受理）" and s2[col["首次收到时间"]] == "2026-07-07 17:00:00"
    assert s2[col["待处理问题"]] == "【提示】未检测到公章：PDF 版未检测到红色公章"
    assert s2[col["已豁免问题"]] == (
        "逾期提交：截止后才首次收到：申报书 Word 版（王莹 豁免：Date 头 16:58，服务器延迟到达）"
    )
    m1 = next(r for r in rows if r[0] == "AI2026-M-0001")
    assert m1[col["待处理问题"]] == "【错误】缺少营业执照（法人证书）复印件：未收到营业执照"
    assert m1[col["材料"]] == "申报书 Word 版、申报书 PDF 盖章扫描件、承诺书"
    p1 = next(r for r in rows if r[0] == "AI2026-P-0001")
    assert p1[col["材料"]].startswith("申报书 Word 版×2、")


def test_xlsx_has_the_annex_5_sheets_with_the_templates_columns_and_rows(engine: Engine, tmp_path: Path) -> None:
    season(engine)
    path = tmp_path / "汇总.xlsx"
    with Session(engine) as s:
        assert export_xlsx(s, CFG, path) == 6
    wb = load_workbook(path)
    assert wb.sheetnames == ["典型应用场景", "模型和智能体", "公共服务平台", "智能终端产品", "全部申报"]

    def rows(name: str) -> list[tuple[Any, ...]]:
        return list(wb[name].iter_rows(values_only=True))

    scenario = rows("典型应用场景")
    assert scenario[0] == (
        "序号", "所在区/单位", "申报单位名称", "场景名称", "场景方向", "场景描述 (100 字左右)", "联系人", "联系方式",
    )  # fmt: skip
    assert scenario[1][:5] == (1, "江汉区", "武汉单位1有限公司", "项目1", "AI+市政设施")
    assert scenario[1][6:] == ("张三", "027-85317173")
    assert scenario[1][5] == LONG[: LONG.index("。", 60) + 1] and len(scenario[1][5]) <= 110
    assert [r[:4] for r in scenario[2:]] == [(2, "武昌区", "武汉单位2有限公司", "项目2")]
    model = rows("模型和智能体")
    assert model[0][3:6] == ("产品名称", "产品类型", "产品描述 (100 字左右)")
    assert model[1][3:6] == ("项目1", "多模态大模型", "多模态模型。")
    platform = rows("公共服务平台")
    assert platform[0][3:6] == ("平台名称", "服务领域", "平台项目描述 (100 字左右)")
    assert platform[1][4] == "城市治理、应急安防"
    terminal = rows("智能终端产品")
    assert terminal[0] == (
        "序号", "所在区/单位", "申报单位名称", "产品名称", "产品描述 (100 字左右)", "联系人", "联系方式",
    )  # fmt: skip
    assert [r[:5] for r in terminal[1:]] == [
        (1, "江汉区", "武汉单位1有限公司", "项目1", "巡检机器人。"),
        (2, None, "武汉单位2有限公司", "项目2", None),
    ]
    for title, _type, headings in SUMMARY_SHEETS:
        ws = wb[title]
        assert ws.freeze_panes == "A2"
        assert ws.auto_filter.ref == f"A1:{chr(64 + len(headings))}{ws.max_row}"
        assert ws.column_dimensions["C"].width == 32
        assert ws["A1"].font.b

    everything = rows("全部申报")
    assert everything[0] == tuple(h for h, _ in ALL_COLUMNS)
    assert [r[0] for r in everything[1:]] == [
        "AI2026-M-0001", "AI2026-P-0001", "AI2026-S-0001", "AI2026-S-0002", "AI2026-T-0001", "AI2026-T-0002",
    ]  # fmt: skip
    s2 = everything[4]
    assert s2[2] == "材料齐全" and s2[10] == datetime(2026, 7, 7, 17, 0) and s2[11] == "是（已同意受理）"
    assert wb["全部申报"].freeze_panes == "A2"


def test_xlsx_of_an_empty_season_still_has_every_sheet_and_heading(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    with Session(engine) as s:
        assert export_xlsx(s, CFG, path) == 0
    wb = load_workbook(path)
    for title, _type, headings in SUMMARY_SHEETS:
        assert list(wb[title].iter_rows(values_only=True)) == [headings]
    assert list(wb["全部申报"].iter_rows(values_only=True)) == [tuple(h for h, _ in ALL_COLUMNS)]


def test_search_finds_document_text_case_insensitively_and_takes_wildcards_literally(engine: Engine) -> None:
    season(engine)
    with Session(engine) as s:
        sd = Seeder(s)
        odd = sd.application("model", 9, at=DEADLINE - timedelta(days=5))
        s.flush()
        doc = sd.doc(sd.message(DEADLINE - timedelta(days=5)), odd, "evidence", "pdf_text", "Report_100%.PDF", 9)
        doc.text = "检测报告 ISO9001 认证 100% 通过"
        s.add(doc)
        s.commit()
        ids = {a.id: a.receipt_no for a in exports.load(s, documents=False).apps}

        def find(needle: str) -> list[str]:
            return sorted(ids[i] for i in exports.search_ids(s, needle, list(ids)))

        assert find("iso9001") == ["AI2026-M-0009"]
        assert find("report_100%") == ["AI2026-M-0009"]
        assert find("100%") == ["AI2026-M-0009"]
        assert find("_1") == ["AI2026-M-0009"]  # "_" is no wildcard: only the file name has "_1"
        assert find("项目2") == ["AI2026-S-0002", "AI2026-T-0002"]
        assert find("无此内容") == []
    with Session(engine) as s:
        app = next(a for a in exports.load(s, documents=False).apps if a.receipt_no == "AI2026-S-0001")
    assert exports.matches_text(app, "91420100ma4k") and exports.matches_text(app, "张三")
    assert not exports.matches_text(app, "李四")


# -- descriptions ------------------------------------------------------------------------------------------


def test_short_description_ends_at_a_sentence_near_100_characters() -> None:
    assert short_description({"background": LONG}, "scenario") == LONG[: LONG.index("。", 60) + 1]
    assert short_description({"background": "短。"}, "scenario") == "短。"
    run_on = "智" * 150
    assert short_description({"overview": run_on}, "model") == "智" * 100 + "…"
    # Line breaks and spaces inside cells are collapsed; later sections fill in for a blank first one.
    assert short_description({"background": "  ", "implementation": "实施\n情况"}, "scenario") == "实施 情况"
    assert short_description({"product_summary": "简介", "overview": "概述"}, "terminal") == "简介"
    assert short_description({}, "platform") == ""


def test_item_of_agrees_with_the_document_view() -> None:
    assert exports.item_of("form_model", "docx") == "word"
    assert exports.item_of("form_model", "image") == "pdf"
    assert exports.item_of("form_model", "archive") is None
    assert exports.item_of("summary", "xlsx") is None
    assert exports.item_of("license", "pdf_scan") == "license"
    assert exports.item_of("no_such_kind", "docx") is None


def test_times_are_shown_in_the_configured_zone() -> None:
    at = datetime(2026, 7, 7, 9, 0, tzinfo=UTC)
    assert exports.iso(at, CFG.call.tz) == "2026-07-07T17:00:00+08:00"
    assert exports.iso(None, CFG.call.tz) is None
