"""Benchmark: export 5,000 applications (20,000 documents) to the 附件5 xlsx, against a plain read of the
same rows in the same run.

    .venv/bin/python bench/bench_review.py                  # 5,000 applications, SQLite
    .venv/bin/python bench/bench_review.py --apps 1000 --db postgresql+psycopg://...

The database is filled directly, as the regroup service leaves it: per application one email, its Word
form (all SPEC 3 fields, realistic texts), PDF, 承诺书 and licence, an Application row with its fields,
record and problems (a fifth incomplete, some late, some with a waiver). Measured: a plain ORM read of
the application, document and message rows (the floor), then the xlsx, JSON and CSV exports. Target:
xlsx <= 10 s.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROBLEMS = [
    [],
    [],
    [],
    [{"code": "missing_license", "severity": "error", "detail": "未收到营业执照（事业单位法人证书）副本复印件"}],
    [{"code": "no_seal", "severity": "warning", "detail": "PDF 版《申报书.pdf》未检测到红色公章，请人工核对是否盖章"}],
    [
        {"code": "late", "severity": "error",
         "detail": "截止时间 2026-07-07 17:00:00后才首次收到：申报书 Word 版。" * 3},
        {"code": "missing_evidence", "severity": "warning",
         "detail": "未收到证明材料（专利、软著、获奖、检测报告、运行证明等）"},
    ],
]  # fmt: skip


def fill(url: str, n_apps: int) -> None:
    from sqlalchemy import insert
    from sqlmodel import Session

    from review.status import status_of
    from store.engine import make_engine, migrate
    from store.models import Application, Decision, DocumentRow, Message, insert_values
    from tests import formgen
    from tests.seasongen import FORM_KINDS, LETTER, season_time

    engine = make_engine(url, durable=False)
    migrate(engine)
    rng = random.Random(4)
    messages, docs, apps, decisions = [], [], [], []
    counters = {k: 0 for k in FORM_KINDS}
    for i in range(n_apps):
        kind = FORM_KINDS[i % 4]
        counters[kind] += 1
        at = season_time(-30 + (i * 30) // n_apps, 9, 0) + timedelta(seconds=i)
        values = formgen.base_values(kind, rng)
        org, code = values["org_name"] + str(i), values["credit_code"]
        values.update(org_name=org, applicant=org)
        messages.append(insert_values(
            Message, id=i + 1, sha256=f"{i:064x}", size=100_000, source="bench", source_ref=f"bench#{i}",
            received_at=at, received_source="internaldate", state="processed", message_id=f"<b{i}@qq.com>",
            from_addr=f"user{i}@qq.com", subject="申报材料", sent_at=at, msg_class="submission"))  # fmt: skip
        record = {}
        for j, (k, fmt, item) in enumerate((
            (kind.value, "docx", "word"), (kind.value, "pdf_text", "pdf"), ("commitment", "docx", "commitment"),
            ("license", "image", "license"),
        )):  # fmt: skip
            did = i * 4 + j + 1
            record[item] = [did]
            docs.append(insert_values(
                DocumentRow, id=did, message_pk=i + 1, seq=j, filename=f"{org}-{item}.{fmt}", size=40_000,
                sha256=f"{i:060x}{j:04x}", kind=k, format=fmt, fields=values if item == "word" else {},
                text=f"{org} {values['project_name']} " * 20, received_at=at, application_pk=i + 1,
                assigned_by="form" if j < 2 else "content"))  # fmt: skip
        record["evidence"] = []
        problems = PROBLEMS[i % len(PROBLEMS)]
        waived = bool(problems) and i % 7 == 0
        if waived:
            decisions.append(insert_values(
                Decision, application_pk=i + 1, action="waive", problem_code=problems[0]["code"],
                reason="已电话核实", user="王莹", created_at=at + timedelta(days=1)))  # fmt: skip
        status = status_of(problems, [])
        if waived:
            status = status_of([p for p in problems if p["code"] != problems[0]["code"]], [])
        apps.append(insert_values(
            Application, id=i + 1, call_code="AI2026", form_type=kind.form_type,
            receipt_no=f"AI2026-{LETTER[kind]}-{counters[kind]:04d}", org_key=org, org_name=org, credit_code=code,
            project_name=values["project_name"], district=rng.choice(formgen.DISTRICTS) + "区",
            sender=f"user{i}@qq.com", status=status, late=status == "late", problems=problems, fields=values,
            record=record, doc_keys=[f"{i + 1}:{i:060x}0000"], first_received_at=at, last_received_at=at))  # fmt: skip
    with Session(engine) as s:
        for rows, model in ((messages, Message), (apps, Application), (docs, DocumentRow), (decisions, Decision)):
            for chunk in range(0, len(rows), 1000):
                s.exec(insert(model), params=rows[chunk : chunk + 1000])
        s.commit()
    engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--apps", type=int, default=5000)
    ap.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = ap.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='bench-review-')}/intake.db"
    print(f"filling {args.apps} applications ({args.apps * 4} documents) ...", file=sys.stderr)
    fill(url, args.apps)

    from openpyxl import load_workbook
    from sqlmodel import Session, select

    from intake.config import load_config
    from review.exports import export_csv, export_json, export_xlsx
    from store.engine import make_engine
    from store.models import Application, Decision, DocumentRow, Message

    cfg = load_config(None, db_url=url)
    engine = make_engine(url, durable=False)

    t0 = time.perf_counter()
    with Session(engine) as s:
        n = (len(s.exec(select(Application)).all()), len(s.exec(select(DocumentRow)).all()),
             len(s.exec(select(Message)).all()), len(s.exec(select(Decision)).all()))  # fmt: skip
    plain = time.perf_counter() - t0

    results = []
    out = Path(tempfile.mkdtemp(prefix="bench-review-out-")) / "汇总表.xlsx"
    for label, run in (
        ("export xlsx (annex 5 sheets + all)", lambda s: export_xlsx(s, cfg, out)),
        ("export json", lambda s: len(export_json(s, cfg))),
        ("export csv", lambda s: len(export_csv(s, cfg))),
    ):
        t0 = time.perf_counter()
        with Session(engine) as s:
            run(s)
        results.append((label, time.perf_counter() - t0))
    engine.dispose()
    wb = load_workbook(out, read_only=True)
    rows = {name: sum(1 for _ in wb[name].iter_rows(values_only=True)) - 1 for name in wb.sheetnames}
    wb.close()

    print()
    print(f"{n[0]} applications, {n[1]} documents, {n[2]} messages, {n[3]} decisions ({engine.dialect.name})")
    print(f"{'plain read of the same rows (ORM)':36s}{plain:8.2f} s   1.00x")
    for label, t in results:
        print(f"{label:36s}{t:8.2f} s   {t / plain:5.2f}x")
    print(f"xlsx: {out.stat().st_size / 1e6:.1f} MB, rows per sheet {rows}")
    xlsx = results[0][1]
    ok = xlsx <= 10.0 and rows.get("全部申报") == args.apps
    print(f"target: xlsx export of {args.apps} applications <= 10 s: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
