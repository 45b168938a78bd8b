"""Write the bundled demo mailbox (demo/mailbox/*.eml + arrivals.toml) from the test generators.

    .venv/bin/python demo/make_mailbox.py

A small season: the four forms (one a stamped scan), a district archive with two applications, its
汇总表 and 推荐意见, a resubmission, one application after the deadline, one with no 承诺书, a QQ
auto-reply, a bounce, a question, and a QQ 超大附件 link. Regenerate only when the generators change.
"""

from __future__ import annotations

import shutil
import sys
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from parsers.types import Kind  # noqa: E402
from tests import mailgen, seasongen  # noqa: E402
from tests.seasongen import Applicant, AppPlan, build_applications, compose, season_time  # noqa: E402

OUT = REPO / "demo" / "mailbox"


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    arrivals: list[tuple[str, datetime]] = []

    def put(name: str, raw: bytes, at: datetime) -> None:
        (OUT / f"{name}.eml").write_bytes(raw)
        arrivals.append((f"{name}.eml", at))

    plans = [
        AppPlan(Kind.form_scenario, seed=11),
        AppPlan(Kind.form_model, seed=12, variant="tick_wingdings2"),
        AppPlan(Kind.form_platform, seed=13, files={"word", "pdf", "license", "evidence"}),  # no 承诺书
        AppPlan(Kind.form_terminal, seed=14, scan=True),
        AppPlan(Kind.form_scenario, seed=15, applicant=Applicant.make(15, domain="163.com")),  # late
        AppPlan(Kind.form_model, seed=16, applicant=Applicant.make(16, domain="jianghan.gov.cn")),  # district
        AppPlan(Kind.form_scenario, seed=17, applicant=Applicant.make(17, domain="jianghan.gov.cn")),  # district
    ]
    built = build_applications(plans)
    for i, app in enumerate(built[:4]):
        a = app.applicant
        at = season_time(-6 + i, 9 + i)
        subject = f"{app.files['word'][0].split(' ')[0]}申报材料-{a.org}"
        put(
            f"{i + 1:02d}-submission", compose(a.sender, subject, app.attachments(), sent=at, sender_name=a.contact), at
        )

    # A resubmission of the first application: corrected Word version, "以此为准".
    first = built[0]
    at = season_time(-1, 15, 30)
    put(
        "05-resubmission",
        compose(
            first.applicant.sender,
            f"更正：{first.project}申报书（以此为准）",
            [first.files["word"]],
            sent=at,
            body="前次材料有误，以此版为准。",
        ),
        at,
    )

    # After the deadline.
    late = built[4]
    at = season_time(0, 17, 3, 12)
    put(
        "06-late",
        compose(
            late.applicant.sender,
            f"附件1申报材料-{late.applicant.org}",
            late.attachments(),
            sent=season_time(0, 16, 58),
        ),
        at,
    )

    # A district sends two applications, the 汇总表 and the 推荐意见 in one GBK-named zip.
    from tests import formgen

    d1, d2 = built[5], built[6]
    rows = [
        {
            "section": "model",
            "seq": 1,
            "district": "江汉区",
            "org_name": d1.applicant.org,
            "project_name": d1.project,
            "direction": "智能体",
            "description": "面向城市治理的智能体。",
            "contact_name": d1.applicant.contact,
            "contact_phone": "027-85310000",
        },
        {
            "section": "scenario",
            "seq": 1,
            "district": "江汉区",
            "org_name": d2.applicant.org,
            "project_name": d2.project,
            "direction": "AI+一网统管",
            "description": "一网统管应用场景。",
            "contact_name": d2.applicant.contact,
            "contact_phone": "027-85310001",
        },
    ]
    summary = formgen.make_summary(
        rows, recommender="江汉区经济和信息化局", contact_name="李明", contact_phone="027-85310002"
    )
    rec = formgen.make_recommendation("江汉区", [(d1.applicant.org, d1.project), (d2.applicant.org, d2.project)])
    members = [(f"{d1.applicant.org}/{n}", b) for n, b in d1.attachments()]
    members += [(f"{d2.applicant.org}/{n}", b) for n, b in d2.attachments()]
    members += [("附件5 江汉区汇总表.docx", summary.data), ("江汉区推荐意见.docx", rec.data)]
    at = season_time(-2, 11)
    put(
        "07-district",
        compose(
            "office@jianghan.gov.cn",
            "江汉区“人工智能+社会治理”申报材料汇总",
            [("江汉区申报材料.zip", seasongen.zip_files(members))],
            sent=at,
            sender_name="江汉区经信局",
        ),
        at,
    )

    # Mail that is not a submission.
    corpus = {name: raw for name, raw, _ in mailgen.corpus()}
    for name, key, at in [
        ("08-auto-reply", "qq_auto_reply", season_time(-3, 10)),
        ("09-bounce", "bounce_dsn", season_time(-3, 12)),
        ("10-cloud-link", "qq_cloud", season_time(-1, 9)),
    ]:
        put(name, corpus[key], at)
    put(
        "11-question",
        compose(
            "zhangsan@example.com",
            "咨询：联合申报单位最多几家？",
            [],
            sent=season_time(-4, 14),
            body="您好，请问同一项目最多可以几家单位联合申报？",
        ),
        season_time(-4, 14),
    )

    lines = ["# INTERNALDATE of each demo message (when the server received it)."]
    lines += [f'"{name}" = {at.isoformat()}' for name, at in arrivals]
    (OUT / "arrivals.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.glob("*.eml"))
    print(f"{len(arrivals)} messages, {total // 1024} KB in {OUT}")


if __name__ == "__main__":
    main()
