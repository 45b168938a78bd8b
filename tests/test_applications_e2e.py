"""Applications end to end: a small season polled from the real Dovecot through the real `intake` CLI,
then the applications, problems, statuses, receipts, decisions and exports as staff see them."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openpyxl import load_workbook

from parsers.types import Kind
from review.exports import ALL_COLUMNS, SCHEMA_PATH, SUMMARY_SHEETS
from tests.seasongen import DEADLINE, Applicant, AppPlan, BuiltApplication, build_applications, compose, season_time
from tests.support import intake_env, run_intake, write_config

STAGES = ["parse_message", "store_attachments", "parse_documents", "applications"]
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
# Licence images are OCR'd (a second or more each): three units send one, the others' applications
# either share their unit's licence or are expected to miss it.
ALL = frozenset({"word", "pdf", "commitment", "license", "evidence"})
NO_LICENSE = ALL - {"license"}


def drop_last_page(pdf: bytes) -> bytes:
    """The form's PDF without its last page: the 承诺书 page the template ends with."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    doc.del_page(len(doc) - 1)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


@dataclass
class Mail:
    name: str
    raw: bytes
    internaldate: datetime


@dataclass
class Season:
    mails: list[Mail]
    built: dict[str, BuiltApplication]


def make_season() -> Season:
    """Eight emails, seven applications, all four directions (receipts in arrival order):

    P-0001 D's platform, complete, then a corrected Word after the deadline (late_revision only);
    S-0001 and M-0001: unit A's one project in two directions (duplicate_direction on both);
    S-0002 G's scenario whose PDF lacks the 承诺书 page and no separate 承诺书 (missing_commitment);
    S-0003 E's scenario with a blank 负责人姓名 (missing_field), E's licence comes with its terminal;
    T-0001 E's terminal at 16:59:59 (on time, complete);
    M-0002 D's model at 17:00:00.000 (late, although its Date header says 16:59:30).
    """
    a, d, e, g = (Applicant.make(s) for s in (401, 402, 403, 404))
    twin = "基于多模态大模型的城市道路病害智能巡检系统"
    plans = {
        "D-platform": AppPlan(Kind.form_platform, seed=411, applicant=d, files=ALL),
        "A-scenario": AppPlan(Kind.form_scenario, seed=412, applicant=a, files=ALL, values={"project_name": twin}),
        "A-model": AppPlan(Kind.form_model, seed=413, applicant=a, files=NO_LICENSE, values={"project_name": twin}),
        "G-scenario": AppPlan(Kind.form_scenario, seed=414, applicant=g, files={"word", "pdf", "evidence"}),
        "E-scenario": AppPlan(
            Kind.form_scenario, seed=415, applicant=e, files=NO_LICENSE, values={"leader_name": None}
        ),
        "E-terminal": AppPlan(Kind.form_terminal, seed=416, applicant=e, files=ALL),
        "D-model": AppPlan(Kind.form_model, seed=417, applicant=d, files=NO_LICENSE),
    }
    built = dict(zip(plans, build_applications(list(plans.values())), strict=True))
    g_pdf_name, g_pdf = built["G-scenario"].files["pdf"]
    built["G-scenario"].files["pdf"] = (g_pdf_name, drop_last_page(g_pdf))

    def mail(name: str, key: str, at: datetime, *, sent: datetime | None = None, subject: str = "申报材料",
             items: set[str] | None = None) -> Mail:  # fmt: skip
        b = built[key]
        raw = compose(b.applicant.sender, f"{subject}-{b.applicant.org}", b.attachments(items), sent=sent or at)
        return Mail(name, raw, at)

    word_name, word = built["D-platform"].files["word"]
    correction = compose(
        d.sender, "更正：附件3申报书（以此为准）", [(word_name.replace(".docx", "（更正）.docx"), word)],
        sent=season_time(0, 17, 30),
    )  # fmt: skip
    mails = [
        mail("D-platform", "D-platform", season_time(-3)),
        mail("A-scenario", "A-scenario", season_time(-2)),
        mail("A-model", "A-model", season_time(-2, 11)),
        mail("G-scenario", "G-scenario", season_time(-1)),
        mail("E-scenario", "E-scenario", season_time(-1, 12)),
        mail("E-terminal", "E-terminal", DEADLINE - timedelta(seconds=1)),
        mail("D-model", "D-model", DEADLINE, sent=DEADLINE - timedelta(seconds=30)),
        Mail("D-correction", correction, season_time(0, 17, 30)),
    ]
    return Season(mails, built)


@pytest.fixture(scope="module")
def season() -> Season:
    return make_season()


def export(config: Path, env: dict[str, str], *args: str) -> Any:
    r = run_intake("export", *args, config=config, env=env)
    assert r.returncode == 0, r.stderr
    return r


def test_a_polled_season_becomes_checked_applications_and_exports(
    season: Season, mailbox: Any, db_url: str, tmp_path: Path
) -> None:
    for m in season.mails:
        mailbox.append(m.raw, internaldate=m.internaldate)
    config = write_config(tmp_path, mailbox=mailbox, db_url=db_url, sections={"pipeline": {"stages": STAGES}})
    env = intake_env(mailbox)
    r = run_intake("poll", config=config, env=env)
    assert r.returncode == 0, r.stderr

    items = json.loads(export(config, env, "--format", "json").stdout)
    jsonschema.validate(items, SCHEMA)
    apps = {i["receipt_no"]: i for i in items}
    b = season.built

    def codes(receipt: str) -> list[str]:
        return [p["code"] for p in apps[receipt]["problems"]]

    # The email-side problems of each application, then the paper side: the test runs after the 2026 deadline
    # with no paper copy logged and no district 汇总表 received, so every application also has paper_missing
    # (an error once the deadline has passed) and not_in_summary (SPEC 4).
    paper = ["paper_missing", "not_in_summary"]
    expected = {
        "AI2026-P-0001": ("D-platform", "incomplete", ["late_revision", *paper]),
        "AI2026-S-0001": ("A-scenario", "incomplete", ["duplicate_direction", *paper]),
        "AI2026-M-0001": ("A-model", "incomplete", ["duplicate_direction", *paper]),
        "AI2026-S-0002": ("G-scenario", "incomplete", ["missing_commitment", "missing_license", *paper]),
        "AI2026-S-0003": ("E-scenario", "incomplete", ["missing_field", *paper]),
        "AI2026-T-0001": ("E-terminal", "incomplete", paper),
        "AI2026-M-0002": ("D-model", "late", ["late", *paper]),
    }
    assert {k: (apps[k]["status"], codes(k)) for k in apps} == {k: (s, c) for k, (_n, s, c) in expected.items()}
    for receipt, (name, _status, _codes) in expected.items():
        app = apps[receipt]
        assert app["org_name"] == b[name].applicant.org, receipt
        assert app["credit_code"] == b[name].applicant.credit_code, receipt
        assert app["project_name"] == b[name].project, receipt
        assert app["late"] == (receipt == "AI2026-M-0002")

    # 16:59:59 is on time, 17:00:00 is late; the evidence names both clocks.
    assert apps["AI2026-T-0001"]["received_at"] == "2026-07-07T16:59:59+08:00"
    assert apps["AI2026-M-0002"]["received_at"] == "2026-07-07T17:00:00+08:00"
    late = apps["AI2026-M-0002"]["problems"][0]["detail"]
    # Only the form came late: the unit's 承诺书 and licence arrived with its platform, days before.
    assert late.startswith("截止时间 2026-07-07 17:00:00后才首次收到：申报书 Word 版、申报书 PDF 盖章扫描件。")
    assert "首次收到于 2026-07-07 17:00:00（服务器接收时间 INTERNALDATE）" in late
    assert "邮件 Date 头 2026-07-07 16:59:30（早于截止时间）" in late
    # The unit's licence (sent with its platform) serves the model application.
    assert apps["AI2026-M-0002"]["versions"]["license"] == 0 and "missing_license" not in codes("AI2026-M-0002")
    # The corrected Word after the deadline is kept, not used.
    words = [(d["version"], d["of_record"]) for d in apps["AI2026-P-0001"]["documents"] if d["item"] == "word"]
    assert words == [(1, True), (2, False)]
    assert "仍以截止前的版本" in apps["AI2026-P-0001"]["problems"][0]["detail"]
    assert apps["AI2026-S-0003"]["problems"][0]["detail"] == "必填项为空：负责人姓名（leader_name）"
    assert "受理编号 AI2026-M-0001" in apps["AI2026-S-0001"]["problems"][0]["detail"]
    assert "受理编号 AI2026-S-0001" in apps["AI2026-M-0001"]["problems"][0]["detail"]

    # Room 213 logs the late applicant's two paper copies (on time): only `late` and the district's missing
    # 汇总表 (a warning) remain. Staff accept the late one: status follows, the problems stay.
    late_app = b["D-model"]
    r = run_intake("paper", "add", "--org", late_app.applicant.org, "--project", late_app.project,
                   "--direction", "模型", "--copies", "2", "--received-at", "2026/7/7 16:30", "--user", "饶丽君",
                   config=config, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    shown = json.loads(run_intake("applications", "--search", late_app.applicant.org, "--format", "json",
                                  config=config, env=env).stdout)  # fmt: skip
    assert {i["receipt_no"]: [p["code"] for p in i["problems"]] for i in shown} == {
        "AI2026-M-0002": ["late", "not_in_summary"],  # its paper copies are logged now
        "AI2026-P-0001": ["late_revision", "paper_missing", "not_in_summary"],  # the same unit's other project
    }
    r = run_intake("decide", "AI2026-M-0002", "accept-late", "--reason", "Date 头早于截止时间", "--user", "王莹",
                   config=config, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "status now incomplete" not in r.stdout and "status now complete" in r.stdout
    r = run_intake("decide", "AI2026-S-0002", "waive", "no_seal", "--reason", "x", "--user", "王莹",
                   config=config, env=env)  # fmt: skip
    assert r.returncode == 1 and "has no problem 'no_seal'" in r.stderr
    r = run_intake("decide", "AI2026-S-0002", "waive", "missing_license", "--user", "王莹", config=config, env=env)
    assert r.returncode == 2 and "--reason is required" in r.stderr

    listed = run_intake("applications", "--status", "late", "--format", "json", config=config, env=env)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    listed = run_intake("applications", "--problem", "duplicate_direction", "--format", "json", config=config, env=env)
    assert [i["receipt_no"] for i in json.loads(listed.stdout)] == ["AI2026-M-0001", "AI2026-S-0001"]
    listed = run_intake("applications", "--search", b["E-terminal"].applicant.credit_code, "--format", "json",
                        config=config, env=env)  # fmt: skip
    assert [i["receipt_no"] for i in json.loads(listed.stdout)] == ["AI2026-S-0003", "AI2026-T-0001"]
    missing = run_intake("show", "AI2026-M-0099", config=config, env=env)
    assert missing.returncode == 1 and "no application with receipt number 'AI2026-M-0099'" in missing.stderr
    no_file = run_intake("export", "--format", "xlsx", config=config, env=env)
    assert no_file.returncode == 2 and "--output" in no_file.stderr
    shown = run_intake("show", "AI2026-M-0002", config=config, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "已豁免：王莹" in shown.stdout and "同意逾期受理" in shown.stdout

    items = json.loads(export(config, env, "--format", "json").stdout)
    jsonschema.validate(items, SCHEMA)
    m2 = next(i for i in items if i["receipt_no"] == "AI2026-M-0002")
    assert (m2["status"], m2["late"], m2["late_accepted"]) == ("complete", True, True)
    assert m2["problems"][0]["waived"]["by"] == "王莹"

    xlsx = tmp_path / "汇总表.xlsx"
    export(config, env, "--format", "xlsx", "-o", str(xlsx))
    wb = load_workbook(xlsx)
    assert wb.sheetnames == [t for t, _f, _h in SUMMARY_SHEETS] + ["全部申报"]
    rows = {t: list(wb[t].iter_rows(values_only=True)) for t in wb.sheetnames}
    for title, _form_type, headings in SUMMARY_SHEETS:
        assert rows[title][0] == headings
    assert [(r[0], r[2], r[3]) for r in rows["典型应用场景"][1:]] == [
        (1, b["A-scenario"].applicant.org, b["A-scenario"].project),
        (2, b["G-scenario"].applicant.org, b["G-scenario"].project),
        (3, b["E-scenario"].applicant.org, b["E-scenario"].project),
    ]
    assert [r[3] for r in rows["模型和智能体"][1:]] == [b["A-model"].project, b["D-model"].project]
    assert [r[3] for r in rows["公共服务平台"][1:]] == [b["D-platform"].project]
    assert [r[3] for r in rows["智能终端产品"][1:]] == [b["E-terminal"].project]
    terminal = rows["智能终端产品"][1]
    assert terminal[5:] == (b["E-terminal"].form.expected_fields["contact_name"],
                            b["E-terminal"].form.expected_fields["contact_phone"])  # fmt: skip
    assert isinstance(terminal[4], str) and 0 < len(terminal[4]) <= 110
    assert [r[0] for r in rows["全部申报"][1:]] == sorted(expected)

    csv_out = export(config, env, "--format", "csv")
    assert csv_out.stdout.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(csv_out.stdout.removeprefix("\ufeff"))))
    assert table[0] == [h for h, _ in ALL_COLUMNS] and len(table) == 8
