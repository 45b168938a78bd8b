"""The paper log: reading cells, importing real-looking spreadsheets (all or nothing), the template,
history of edits, and `intake paper …` — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from review.paper import (
    HEADINGS,
    RowError,
    add_entry,
    canonical_heading,
    delete_entry,
    edit_entry,
    history,
    import_log,
    parse_copies,
    parse_direction,
    parse_item,
    parse_received_at,
    read_log,
    template_bytes,
)
from store.engine import make_engine, migrate
from store.models import AuditEvent
from store.paper_models import PaperEntry, PaperRevision
from tests.support import run_intake, write_config

TZ = ZoneInfo("Asia/Shanghai")
CST = timezone(timedelta(hours=8))
DEADLINE = datetime(2026, 7, 7, 17, 0, tzinfo=CST)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 7, day, hour, minute, tzinfo=CST)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    e = make_engine(db_url)
    migrate(e)
    yield e
    e.dispose()


# -- cells -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026/7/7 16:30", at(7, 16, 30)),
        ("2026-07-07 16:30", at(7, 16, 30)),
        ("2026-07-07 16:30:00", at(7, 16, 30)),
        ("2026年7月7日 16:30", at(7, 16, 30)),
        ("2026年7月7日16时30分", at(7, 16, 30)),
        ("2026.7.7 9:05", at(7, 9, 5)),
        ("２０２６/７/７ １６：３０", at(7, 16, 30)),  # typed with a full-width IME
        ("2026-07-07T08:30:00+00:00", at(7, 16, 30)),
        (46210.6875, at(7, 16, 30)),  # an Excel serial in a cell formatted as General
        ("46210.6875", at(7, 16, 30)),  # …and as CSV text
        (datetime(2026, 7, 7, 16, 30), at(7, 16, 30)),  # a real Excel date-time: local time
    ],
)
def test_received_at_layouts_that_are_read(value: Any, expected: datetime) -> None:
    assert parse_received_at(value, TZ, around=DEADLINE) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("7月7日下午4点半", "上午/下午 and 点半 are not read"),
        ("2026/7/7 下午4:30", "上午/下午 and 点半 are not read"),
        ("2026/7/7", "has no time of day"),
        ("16:30", "is not a date and time this import reads"),
        ("7月7日 16:30", "is not a date and time this import reads"),
        ("2026/13/1 10:00", "is not a valid date and time"),
        ("2062/7/7 16:30", "more than a year away"),
        (46210, "a date without a time of day"),
        (12345.5, "is not a date and time"),
        ("", "is blank"),
        (None, "is blank"),
    ],
)
def test_received_at_values_that_are_refused_say_why(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_received_at(value, TZ, around=DEADLINE)


def test_a_date_cell_without_time_is_refused_by_its_format() -> None:
    with pytest.raises(ValueError, match="no time of day"):
        parse_received_at(datetime(2026, 7, 7), TZ, number_format="yyyy/m/d")
    assert parse_received_at(datetime(2026, 7, 7), TZ, number_format="yyyy/m/d h:mm") == at(7, 0)


def test_copies_items_directions_and_headings() -> None:
    assert [parse_copies(v) for v in (2, 2.0, "2", "２份", "两份", " 1 ")] == [2, 2, 2, 2, 2, 1]
    for bad, message in (("若干", "not a number of copies"), ("2.5", "not a number"), (0, "between 1 and 99"),
                         (2.5, "not a whole number"), (None, "blank")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            parse_copies(bad)
    assert [parse_item(v) for v in ("申报书", "申报材料", "推荐意见", "推荐函", "汇总表", "附件5")] == [
        "form", "form", "recommendation", "recommendation", "summary", "summary"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="write 申报书, 推荐意见 or 汇总表"):
        parse_item("光盘")
    directions = ("典型应用场景", "场景", "模型和智能体", "智能体", "平台", "附件4", "", None)
    assert [parse_direction(v) for v in directions] == [
        "scenario", "scenario", "model", "model", "platform", "terminal", None, None
    ]  # fmt: skip
    with pytest.raises(ValueError, match="is not a direction"):
        parse_direction("其他方向")
    headings = ("接收时间（年/月/日 时:分）*", " 申报单位名称 ", "份数(份)", "所在区/单位", "序号")
    assert [canonical_heading(h) for h in headings] == ["接收时间", "申报单位", "份数", "所在区", None]


# -- spreadsheets ----------------------------------------------------------------------------------------


def real_log(path: Path) -> Path:
    """A log as staff keep it: a merged title and a note above the headings, extra columns (序号, 联系电话),
    times as Excel date-times, as serials and as text, 接收人 merged down two rows, a blank row, a total."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "7月"
    ws.append(["“人工智能+社会治理”纸质材料接收登记表"])
    ws.merge_cells("A1:K1")
    ws.append(["（213室，截止2026年7月7日17:00）"])
    ws.append(
        ["序号", "接收时间", "申报单位", "项目名称", "方向", "材料类型", "份数", "所在区", "接收人", "备注", "联系电话"]
    )
    ws.append(
        [
            1,
            datetime(2026, 7, 6, 10, 0),
            "光谷（武汉）智能科技有限责任公司",
            "《城市内涝智能预警系统》",
            "场景",
            "申报书",
            2,
            "东湖新技术开发区",
            "张敏",
            None,
            "13800000000",
        ]
    )
    ws["B4"].number_format = "yyyy/m/d h:mm"
    ws.append(
        [
            2,
            46210.6875,
            "武汉云帆软件有限公司",
            "占道经营智能识别系统",
            "典型应用场景",
            "申报书",
            "2份",
            "洪山",
            None,
            "封面无盖章",
            None,
        ]
    )
    ws.merge_cells("I4:I5")  # 接收人 张敏 for both rows
    ws.append([None] * 11)
    ws.append(
        [3, "2026年7月7日 17:05", "江汉区科技和经济信息化局", None, None, "推荐意见", 1, "江汉区", "李静", None, None]
    )
    ws.append(
        [
            4,
            "2026/7/7 9:30",
            "芯智(武汉)信息技术有限公司",
            "森林防火研判智能体",
            "模型",
            "申报书",
            1.0,
            None,
            1024,
            None,
            None,
        ]
    )
    ws.append([None, None, "合计", None, None, None, 6, None, None, None, None])
    wb.save(path)
    return path


EXPECTED = [
    {"received_at": at(6, 10), "org_name": "光谷（武汉）智能科技有限责任公司",
     "project_name": "《城市内涝智能预警系统》", "form_type": "scenario", "item": "form", "copies": 2,
     "district": "东湖高新区", "received_by": "张敏", "note": None},
    {"received_at": at(7, 16, 30), "org_name": "武汉云帆软件有限公司", "project_name": "占道经营智能识别系统",
     "form_type": "scenario", "item": "form", "copies": 2, "district": "洪山区", "received_by": "张敏",
     "note": "封面无盖章"},
    {"received_at": at(7, 17, 5), "org_name": "江汉区科技和经济信息化局", "project_name": None, "form_type": None,
     "item": "recommendation", "copies": 1, "district": "江汉区", "received_by": "李静", "note": None},
    {"received_at": at(7, 9, 30), "org_name": "芯智(武汉)信息技术有限公司", "project_name": "森林防火研判智能体",
     "form_type": "model", "item": "form", "copies": 1, "district": None, "received_by": "1024", "note": None},
]  # fmt: skip


def stored(s: Session) -> list[dict[str, Any]]:
    rows = s.exec(select(PaperEntry).order_by(col(PaperEntry.id))).all()
    return [{k: getattr(e, k) for k in EXPECTED[0]} for e in rows]


def test_import_of_a_real_looking_spreadsheet(engine: Engine, tmp_path: Path) -> None:
    path = real_log(tmp_path / "登记表.xlsx")
    with Session(engine) as s:
        res = import_log(s, path, "张敏", tz=TZ, deadline=DEADLINE)
        s.commit()
        assert res.ok and res.written, res.errors
        assert (len(res.created), res.already, res.blank_rows) == (4, 0, 1)
        assert res.skipped == ["row 9: a total row (合计)"]
        assert stored(s) == EXPECTED
        first = s.exec(select(PaperEntry).order_by(col(PaperEntry.id))).first()
        assert first is not None
        assert (first.source, first.source_ref, first.org_key, first.project_key) == (
            "import", "登记表.xlsx:7月!4", "光谷智能科技", "城市内涝智能预警系统"
        )  # fmt: skip
        revs = s.exec(select(PaperRevision).order_by(col(PaperRevision.id))).all()
        assert [(r.version, r.action, r.reason) for r in revs] == [(1, "create", "import of 登记表.xlsx")] * 4
        audit = s.exec(select(AuditEvent).where(AuditEvent.action == "paper.import")).one()
        assert audit.detail["created"] == res.created and audit.user == "张敏"

        # The same file again adds nothing.
        again = import_log(s, path, "张敏", tz=TZ, deadline=DEADLINE)
        s.commit()
        assert (again.created, again.already) == ([], 4)
        assert len(stored(s)) == 4


def bad_log(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["纸质材料接收登记表"])
    ws.append(list(HEADINGS))
    ws.append(
        ["2026/7/6 10:00", "武汉光谷智能科技有限公司", "城市内涝智能预警系统", "场景", "申报书", 2, "", "张敏", ""]
    )
    ws.append(["7月7日下午4点半", "武汉云帆软件有限公司", "占道经营智能识别系统", "场景", "申报书", 2, "", "", ""])
    ws.append(["2026/7/7 10:00", "芯智信息技术有限公司", "森林防火研判智能体", "模型", "申报书", "若干", "", "", ""])
    ws.append(["2026/7/7 11:00", "", "鹰眼智能巡检机器人", "终端", "光盘", 1, "", "", ""])
    ws.append(["2026/7/7", "武汉某某科技有限公司", "", "其他方向", "申报书", 2, "", "", ""])
    ws.append([None] * 9)
    ws.append(["2026/7/7 12:00", "湖北天元数据科技股份有限公司", "鹰眼智能巡检机器人", "终端", "申报书", 2, "", "", ""])
    wb.save(path)
    return path


def test_a_malformed_file_reports_every_bad_row_and_imports_nothing(engine: Engine, tmp_path: Path) -> None:
    path = bad_log(tmp_path / "bad.xlsx")
    with Session(engine) as s:
        res = import_log(s, path, "张敏", tz=TZ, deadline=DEADLINE)
        s.commit()
        assert not res.ok and not res.written
        assert [(e.row, e.column, e.heading) for e in res.errors] == [
            (4, "A", "接收时间"),
            (5, "F", "份数"),
            (6, "B", "申报单位"),
            (6, "E", "材料类型"),
            (7, "A", "接收时间"),
            (7, "C", "项目名称"),
            (7, "D", "方向"),
        ]
        assert str(res.errors[0]) == (
            "row 4, column A (接收时间): '7月7日下午4点半': 上午/下午 and 点半 are not read: "
            "write it as 2026/7/7 16:30 (or 2026-07-07 16:30, 2026年7月7日 16:30) (24-hour clock)"
        )
        assert str(res.errors[1]) == "row 5, column F (份数): '若干' is not a number of copies (write 1, 2, …)"
        assert s.exec(select(PaperEntry)).all() == []  # all or nothing
        assert s.exec(select(AuditEvent)).all() == []


@pytest.mark.parametrize(
    ("headings", "message"),
    [
        (["日期", "单位", "项目", "类型", "件数"], "lacks 接收时间, 申报单位, 项目名称, 材料类型, 份数"),
        (["接收时间", "申报单位", "项目名称", "材料类型"], "lacks 份数"),
        (["接收时间", "申报单位", "项目名称", "材料类型", "份数", "数量"], "heading 份数 appears twice"),
    ],
)
def test_wrong_headings_reject_the_file_saying_what_is_missing(
    tmp_path: Path, headings: list[str], message: str
) -> None:
    path = tmp_path / "log.csv"
    path.write_text(",".join(headings) + "\n2026/7/7 10:00,甲公司,乙项目,申报书,2\n", encoding="utf-8")
    res = read_log(path, tz=TZ)
    assert res.file_error is not None and message in res.file_error
    assert res.entries == []


def test_csv_in_gb18030_with_tabs_and_in_utf8_with_a_bom(engine: Engine, tmp_path: Path) -> None:
    gbk = tmp_path / "excel-export.csv"
    lines = [
        "\t".join(HEADINGS),
        "2026/7/6 10:00\t武汉云帆软件有限公司\t占道经营智能识别系统\t场景\t申报书\t2\t洪山区\t张敏\t",
        "\t" * 8,
        "46210.5\t江汉区经信局\t\t\t推荐意见\t1\t江汉区\t李静\t代交",
    ]
    gbk.write_bytes("\r\n".join(lines).encode("gb18030"))
    bom = tmp_path / "utf8.csv"
    bom.write_bytes(
        (
            "\ufeff"
            + ",".join(HEADINGS)
            + "\n2026-07-07 09:00,芯智信息技术有限公司,森林防火研判智能体,模型,申报书,1,,,\n"
        ).encode()
    )
    with Session(engine) as s:
        r1 = import_log(s, gbk, "张敏", tz=TZ, deadline=DEADLINE)
        r2 = import_log(s, bom, "张敏", tz=TZ, deadline=DEADLINE)
        s.commit()
        assert r1.ok and r2.ok and (len(r1.created), r1.blank_rows, len(r2.created)) == (2, 1, 1)
        got = [(e.received_at, e.org_name, e.item, e.copies, e.district, e.note) for e in
               s.exec(select(PaperEntry).order_by(col(PaperEntry.id)))]  # fmt: skip
    assert got == [
        (at(6, 10), "武汉云帆软件有限公司", "form", 2, "洪山区", None),
        (at(7, 12), "江汉区经信局", "recommendation", 1, "江汉区", "代交"),
        (at(7, 9), "芯智信息技术有限公司", "form", 1, None, None),
    ]


def test_replace_makes_the_file_the_truth_for_what_was_imported_from_it(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    head = ",".join(HEADINGS)
    a, b = "2026/7/6 10:00,甲公司,甲项目,场景,申报书,2,,,", "2026/7/6 11:00,乙公司,乙项目,场景,申报书,1,,,"
    path.write_text(f"{head}\n{a}\n{b}\n", encoding="utf-8")
    with Session(engine) as s:
        first = import_log(s, path, "张敏", tz=TZ, deadline=DEADLINE)
        s.commit()
        # Staff corrected 乙's copies in the spreadsheet and added a row.
        b2, c = "2026/7/6 11:00,乙公司,乙项目,场景,申报书,2,,,", "2026/7/6 12:00,丙公司,丙项目,平台,申报书,2,,,"
        path.write_text(f"{head}\n{a}\n{b2}\n{c}\n", encoding="utf-8")
        res = import_log(s, path, "张敏", tz=TZ, deadline=DEADLINE, replace=True)
        s.commit()
        assert (len(res.created), res.already, res.removed) == (2, 1, [first.created[1]])
        live = [(e.org_name, e.copies) for e in s.exec(select(PaperEntry).where(col(PaperEntry.deleted).is_(False)))]
        assert sorted(live) == [("丙公司", 2), ("乙公司", 2), ("甲公司", 2)]
        gone = history(s, first.created[1])
        assert [(r.action, r.values["copies"]) for r in gone] == [("create", 1), ("delete", 1)]


def test_the_template_has_headings_and_drop_down_lists_and_imports_back(engine: Engine, tmp_path: Path) -> None:
    data = template_bytes(districts=["江汉区", "洪山区", "市直单位"])
    path = tmp_path / "template.xlsx"
    path.write_bytes(data)
    wb = openpyxl.load_workbook(path)
    ws = wb["纸质材料登记"]
    assert [c.value for c in ws[2]] == list(HEADINGS)
    assert "A1:I1" in {str(r) for r in ws.merged_cells.ranges}
    validations = {str(dv.sqref): dv for dv in ws.data_validations.dataValidation}
    assert validations["D3:D1000"].formula1 == "'选项'!$A$1:$A$4"
    assert validations["E3:E1000"].formula1 == "'选项'!$B$1:$B$3"
    assert validations["G3:G1000"].formula1 == "'选项'!$C$1:$C$3"
    assert validations["F3:F1000"].type == "whole"
    opts = wb["选项"]
    assert opts.sheet_state == "hidden"
    assert [opts.cell(i, 1).value for i in range(1, 5)] == [
        "典型应用场景",
        "模型和智能体",
        "公共服务平台",
        "智能终端产品",
    ]
    assert [opts.cell(i, 2).value for i in range(1, 4)] == ["申报书", "推荐意见", "汇总表"]
    assert [opts.cell(i, 3).value for i in range(1, 4)] == ["江汉区", "洪山区", "市直单位"]
    assert ws["A3"].number_format == "yyyy/m/d h:mm"

    # Staff fill it in with the drop-down choices; it imports as is.
    filled = [datetime(2026, 7, 7, 16, 59), "武汉云帆软件有限公司", "占道经营智能识别系统", "典型应用场景", "申报书", 2,
              "洪山区", "张敏"]  # fmt: skip
    for c, v in enumerate(filled, 1):
        ws.cell(3, c).value = v
    wb.save(path)
    with Session(engine) as s:
        res = import_log(s, path, "张敏", tz=TZ, deadline=DEADLINE)
        s.commit()
        assert res.ok and len(res.created) == 1 and res.blank_rows == 0
        e = s.exec(select(PaperEntry)).one()
        assert (e.received_at, e.form_type, e.item, e.copies, e.district) == (
            at(7, 16, 59),
            "scenario",
            "form",
            2,
            "洪山区",
        )


def test_every_edit_is_kept_in_the_history_with_an_audit_event(engine: Engine) -> None:
    with Session(engine) as s:
        values = {"received_at": at(7, 10), "org_name": "武汉云帆软件有限公司", "project_name": "占道经营智能识别系统",
                  "form_type": "scenario", "item": "form", "copies": 1, "district": "洪山区",
                  "received_by": "张敏"}  # fmt: skip
        e = add_entry(s, values, "张敏")
        assert e.id is not None
        edit_entry(s, e.id, {"copies": 2, "note": "补交一份"}, "李静", "第二份下午送到")
        edit_entry(s, e.id, {"org_name": "武汉云帆软件股份有限公司"}, "李静", "核对营业执照")
        edit_entry(s, e.id, {"copies": 2}, "李静")  # no change: no new version
        delete_entry(s, e.id, "王磊", "重复登记")
        delete_entry(s, e.id, "王磊", "不是重复", restore=True)
        s.commit()
        revs = history(s, e.id)
        assert [(r.version, r.action, r.user, r.reason) for r in revs] == [
            (1, "create", "张敏", None),
            (2, "edit", "李静", "第二份下午送到"),
            (3, "edit", "李静", "核对营业执照"),
            (4, "delete", "王磊", "重复登记"),
            (5, "restore", "王磊", "不是重复"),
        ]
        assert [r.values["copies"] for r in revs] == [1, 2, 2, 2, 2]
        assert revs[2].values["org_name"] == "武汉云帆软件股份有限公司" and revs[1].values["note"] == "补交一份"
        assert [r.values["deleted"] for r in revs] == [False, False, False, True, False]
        entry = s.get(PaperEntry, e.id)
        assert entry is not None and (entry.version, entry.org_key, entry.deleted) == (5, "云帆软件", False)
        audit = s.exec(select(AuditEvent).where(AuditEvent.target == f"paper:{e.id}").order_by(col(AuditEvent.id)))
        assert [(a.action, a.user) for a in audit] == [
            ("paper.add", "张敏"), ("paper.edit", "李静"), ("paper.edit", "李静"), ("paper.delete", "王磊"),
            ("paper.restore", "王磊"),
        ]  # fmt: skip
        edit_audit = s.exec(select(AuditEvent).where(AuditEvent.action == "paper.edit")).first()
        assert edit_audit is not None and edit_audit.detail["changes"] == {"copies": [1, 2], "note": [None, "补交一份"]}


def test_old_excel_and_unknown_files_are_refused_with_advice(tmp_path: Path) -> None:
    xls = tmp_path / "log.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    assert "save the log as .xlsx" in (read_log(xls, tz=TZ).file_error or "")
    broken = tmp_path / "log.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really")
    assert "not a readable .xlsx file" in (read_log(broken, tz=TZ).file_error or "")
    assert RowError("", 3, "", "", "x").__str__() == "row 3: x"


# -- the CLI ---------------------------------------------------------------------------------------------


def test_intake_paper_commands(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url=db_url)
    bad = bad_log(tmp_path / "bad.xlsx")
    res = run_intake("paper", "import", str(bad), "-u", "张敏", config=config)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert lines[0].startswith(f"{bad}: row 4, column A (接收时间): '7月7日下午4点半'")
    assert f"{bad}: row 5, column F (份数): '若干' is not a number of copies (write 1, 2, …)" in lines
    assert lines[-1] == f"{bad}: 4 row(s) rejected; nothing imported (fix them and import the file again)"

    res = run_intake("paper", "template", "-o", str(tmp_path / "t.xlsx"), config=config)
    assert res.returncode == 0 and (tmp_path / "t.xlsx").exists()
    assert run_intake("paper", "template", "-o", str(tmp_path / "t.xlsx"), config=config).returncode == 2

    good = real_log(tmp_path / "good.xlsx")
    res = run_intake("paper", "import", str(good), "--check", config=config)
    assert res.returncode == 0 and "nothing written (--check)" in res.stdout, res.stderr
    res = run_intake("paper", "import", str(good), "-u", "张敏", config=config)
    assert res.returncode == 0, res.stderr
    assert "4 imported, 0 already imported" in res.stdout

    res = run_intake("paper", "add", "--org", "湖北天元数据科技股份有限公司", "--project", "鹰眼智能巡检机器人",
                     "--direction", "终端", "--copies", "两份", "--received-at", "2026/7/7 16:10", "-u", "王磊",
                     config=config)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (
        "2026-07-07 16:10 湖北天元数据科技股份有限公司《鹰眼智能巡检机器人》（智能终端产品） 申报书 2 份" in res.stdout
    )
    res = run_intake("paper", "add", "--org", "某单位", "--project", "某项目", "--received-at", "7月7日下午4点半",
                     "-u", "王磊", config=config)  # fmt: skip
    assert res.returncode == 2 and "--received-at (接收时间)" in res.stderr

    listed = json.loads(run_intake("paper", "list", "--format", "json", config=config).stdout)
    assert [e["org_name"] for e in listed] == [
        "光谷（武汉）智能科技有限责任公司", "芯智(武汉)信息技术有限公司", "湖北天元数据科技股份有限公司",
        "武汉云帆软件有限公司", "江汉区科技和经济信息化局",
    ]  # fmt: skip
    added = listed[2]
    assert (added["copies"], added["received_by"], added["match"], added["late"]) == (2, "王磊", "orphan", False)
    assert listed[-1]["late"] is True and listed[-1]["match"] == "district"

    eid = str(added["id"])
    res = run_intake("paper", "edit", eid, "--copies", "1", "-u", "李静", "-r", "只收到一份", config=config)
    assert res.returncode == 0 and "(version 2)" in res.stdout, res.stderr
    hist = json.loads(run_intake("paper", "history", eid, "--format", "json", config=config).stdout)
    assert [(h["version"], h["action"], h["user"], h["values"]["copies"]) for h in hist] == [
        (1, "create", "王磊", 2), (2, "edit", "李静", 1)
    ]  # fmt: skip
    assert run_intake("paper", "delete", eid, "-u", "李静", "-r", "登记错了", config=config).returncode == 0
    listed = json.loads(run_intake("paper", "list", "--format", "json", config=config).stdout)
    assert int(eid) not in [e["id"] for e in listed]
    listed = json.loads(run_intake("paper", "list", "--format", "json", "--deleted", config=config).stdout)
    assert [e["deleted"] for e in listed if e["id"] == int(eid)] == [True]
    res = run_intake("paper", "edit", "9999", "--copies", "1", "-u", "李静", config=config)
    assert res.returncode == 1 and "no paper entry 9999" in res.stderr
