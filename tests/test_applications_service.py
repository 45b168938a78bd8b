"""Applications in the database: incremental regroups equal a full one, arrival order and replays
change nothing, receipts are stable and never reused (real pipeline, SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from intake.config import load_config
from parsers.types import Kind
from review.service import regroup
from store.engine import make_engine
from store.models import Application, DocumentRow, Message
from tests.seasongen import Applicant, AppPlan, build_applications, compose, season_time
from tests.support import run_intake, write_config

STAGES = ["parse_message", "store_attachments", "parse_documents", "applications"]
# Licence images need OCR (a second or more each): most applications here send the licence as a PDF-less
# bundle without it, and the checks' own tests cover licences.
LIGHT = frozenset({"word", "pdf", "commitment", "evidence"})


@pytest.fixture(scope="module")
def season_mail(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bytes]]:
    """A small season as .eml bytes: resubmissions, two directions of one unit, a separate licence."""
    a, b, c = Applicant.make(101), Applicant.make(102, domain="126.com"), Applicant.make(103, domain="163.com")
    built = build_applications(
        [
            AppPlan(Kind.form_model, seed=101, applicant=a, files=LIGHT),
            AppPlan(Kind.form_scenario, seed=102, applicant=a, files={"word", "pdf"}),
            AppPlan(Kind.form_terminal, seed=103, applicant=b, files=LIGHT),
            AppPlan(Kind.form_platform, seed=104, applicant=c, files={"word", "pdf", "license"}),
        ]
    )
    model, scenario, terminal, platform = built
    mails = [
        ("model", compose(a.sender, "附件2申报材料", model.attachments(), sent=season_time(-5))),
        ("scenario", compose(a.sender, "附件1申报材料", scenario.attachments(), sent=season_time(-4))),
        ("terminal", compose(b.sender, "附件4申报材料", terminal.attachments({"word", "pdf"}), sent=season_time(-3))),
        # The same unit sends its 承诺书 and proof later, from another address.
        (
            "terminal-extra",
            compose(
                "other@" + b.sender.split("@")[1],
                "补充材料",
                terminal.attachments({"commitment", "evidence"}),
                sent=season_time(-2),
            ),
        ),
        # A corrected Word version of the model application.
        ("model-v2", compose(a.sender, "更正：附件2申报书（以此为准）", [model.files["word"]], sent=season_time(-1))),
        ("platform", compose(c.sender, "附件3申报材料", platform.attachments(), sent=season_time(-1, 15))),
    ]
    return mails


def _write(tmp: Path, mails: list[tuple[str, bytes]]) -> list[Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (name, raw) in enumerate(mails):
        p = tmp / f"{i:02d}-{name}.eml"
        p.write_bytes(raw)
        paths.append(p)
    return paths


def _snapshot(db_url: str) -> dict[str, Any]:
    """The grouping as stable facts: each application's documents by (message sha, document sha, path)."""
    engine = make_engine(db_url)
    with Session(engine) as s:
        msgs = {m.id: m.sha256 for m in s.exec(select(Message))}
        apps = {a.id: a for a in s.exec(select(Application))}
        groups: dict[int | None, set[tuple[str, str, str]]] = {}
        for d in s.exec(select(DocumentRow)):
            groups.setdefault(d.application_pk, set()).add((msgs[d.message_pk], d.sha256, d.member_path))
    engine.dispose()
    live = {a.receipt_no: frozenset(groups.get(a.id, set())) for a in apps.values() if a.status != "merged"}
    return {
        "partition": frozenset(live.values()),
        "unassigned": frozenset(groups.get(None, set())),
        "by_receipt": live,
        "statuses": {a.receipt_no: (a.status, sorted(p["code"] for p in a.problems)) for a in apps.values()},
    }


def test_incremental_regroups_equal_a_full_regroup_and_keep_receipts(
    season_mail: list[tuple[str, bytes]], db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, db_url=db_url, sections={"pipeline": {"stages": STAGES}})
    for p in _write(tmp_path / "in", season_mail):
        res = run_intake("ingest", str(p), config=config)  # one message at a time, as the season goes
        assert res.returncode == 0, res.stderr
    incremental = _snapshot(db_url)
    assert len(incremental["partition"]) == 4  # model (with its correction), scenario, terminal, platform
    receipts = sorted(incremental["by_receipt"])
    assert [r.split("-")[1] for r in receipts] == ["M", "P", "S", "T"]
    assert all(r.startswith("AI2026-") and len(r.split("-")[2]) == 4 for r in receipts)

    cfg = load_config(config)
    engine = make_engine(cfg.db_url)
    with Session(engine) as s:
        result = regroup(s, cfg, full=True)
        s.commit()
    engine.dispose()
    assert result.created == [] and result.merged == []
    assert _snapshot(db_url) == incremental

    # Ingesting everything again changes nothing.
    res = run_intake("ingest", str(tmp_path / "in"), config=config)
    assert res.returncode == 0 and "0 new" in res.stderr
    assert _snapshot(db_url) == incremental

    # Replaying a message re-parses it (new document rows) but the applications keep their numbers.
    listed = json.loads(run_intake("messages", "--format", "json", config=config).stdout)
    ids = [str(m["id"]) for m in listed]
    assert run_intake("replay", *ids, config=config).returncode == 0
    assert _snapshot(db_url)["by_receipt"] == incremental["by_receipt"]


def test_arrival_order_does_not_change_the_applications(season_mail: list[tuple[str, bytes]], tmp_path: Path) -> None:
    results = []
    for trial, seed in enumerate([None, 7, 11]):
        mails = list(season_mail)
        if seed is not None:
            random.Random(seed).shuffle(mails)
        work = tmp_path / f"t{trial}"
        work.mkdir()
        config = write_config(work, db_url=f"sqlite:///{work / 'intake.db'}", sections={"pipeline": {"stages": STAGES}})
        # Files are processed in the order given (their arrival time is read only when they are parsed).
        paths = _write(work / "in", mails)
        assert run_intake("ingest", *map(str, paths), config=config).returncode == 0
        results.append(_snapshot(f"sqlite:///{work / 'intake.db'}"))
    assert results[0]["partition"] == results[1]["partition"] == results[2]["partition"]
    assert results[0]["unassigned"] == results[1]["unassigned"] == results[2]["unassigned"]


def test_staff_assign_an_unassigned_document_and_it_sticks(tmp_path: Path) -> None:
    import io

    from PIL import Image

    from store.models import AuditEvent

    a, b = Applicant.make(201), Applicant.make(202)
    built = build_applications(
        [
            AppPlan(Kind.form_model, seed=201, applicant=a, files={"word"}),
            AppPlan(Kind.form_scenario, seed=202, applicant=b, files={"word"}),
        ]
    )
    photo = io.BytesIO()
    Image.new("RGB", (400, 300), (120, 160, 90)).save(photo, "JPEG")
    raw = compose(
        "office@district.gov.cn",
        "两家单位的申报材料",
        [built[0].files["word"], built[1].files["word"], ("现场照片.jpg", photo.getvalue())],
        sent=season_time(-2),
    )
    (tmp_path / "m.eml").write_bytes(raw)
    config = write_config(tmp_path, sections={"pipeline": {"stages": STAGES}})
    assert run_intake("ingest", str(tmp_path / "m.eml"), config=config).returncode == 0

    loose = json.loads(run_intake("documents", "--unassigned", "--format", "json", config=config).stdout)
    assert [(d["filename"], d["note"]) for d in loose] == [
        ("现场照片.jpg", "同一邮件或发件人对应多个申报，无法确定归属")
    ]
    apps = json.loads(run_intake("applications", "--format", "json", config=config).stdout)
    target = next(x["receipt_no"] for x in apps if x["org_name"] == b.org)

    res = run_intake(
        "assign", str(loose[0]["id"]), target, "--reason", "照片上是该单位的场景", "--user", "饶丽君", config=config
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(run_intake("documents", "--unassigned", "--format", "json", config=config).stdout) == []
    mine = json.loads(run_intake("documents", "--receipt", target, "--format", "json", config=config).stdout)
    assert ("现场照片.jpg", "staff") in [(d["filename"], d["assigned_by"]) for d in mine]

    # A replay re-parses the email (new document rows): the staff decision still holds.
    listed = json.loads(run_intake("messages", "--format", "json", config=config).stdout)
    assert run_intake("replay", str(listed[0]["id"]), config=config).returncode == 0
    mine = json.loads(run_intake("documents", "--receipt", target, "--format", "json", config=config).stdout)
    assert ("现场照片.jpg", "staff") in [(d["filename"], d["assigned_by"]) for d in mine]

    engine = make_engine(f"sqlite:///{tmp_path / 'data/intake.db'}")
    with Session(engine) as s:
        events = list(s.exec(select(AuditEvent)))
    engine.dispose()
    assert [(e.user, e.action, e.detail["receipt_no"], e.detail["reason"]) for e in events] == [
        ("饶丽君", "assign_document", target, "照片上是该单位的场景")
    ]
    bad = run_intake("assign", "9999", target, "--reason", "x", "--user", "y", config=config)
    assert bad.returncode == 1 and "no document with id 9999" in bad.stderr
