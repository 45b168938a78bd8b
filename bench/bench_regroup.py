"""Benchmark: regroup and recheck every application from the database, against a plain read of the rows.

    .venv/bin/python bench/bench_regroup.py                  # 5,000 applications, 20,000 documents, SQLite
    .venv/bin/python bench/bench_regroup.py --apps 1000 --db postgresql+psycopg://...

The database is filled directly (no parsing): per application one email with its Word form, PDF, 承诺书
and licence, realistic names and valid credit codes. Measured in one run: a plain read of the same
document and message rows (the floor), the first full regroup (creates every application and receipt),
and a second full regroup (recheck; nothing changes). Target: a full regroup+recheck <= 5 s.
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


def fill(url: str, n_apps: int) -> None:
    from sqlalchemy import insert

    from review.identity import document_identity
    from store.engine import make_engine, migrate
    from store.models import DocumentRow, Message, insert_values
    from tests import formgen
    from tests.seasongen import FORM_KINDS, season_time

    engine = make_engine(url, durable=False)
    migrate(engine)
    rng = random.Random(5)
    messages, docs = [], []
    for i in range(n_apps):
        kind = FORM_KINDS[i % 4]
        org = formgen.org_name(rng) + f"{i}"
        code = formgen.credit_code(rng)
        at = season_time(-30 + (i * 30) // n_apps, 9, 0) + timedelta(seconds=i)
        messages.append(
            insert_values(
                Message,
                id=i + 1,
                sha256=f"{i:064x}",
                size=100_000,
                source="bench",
                source_ref=f"bench#{i}",
                received_at=at,
                received_source="internaldate",
                state="processed",
                message_id=f"<b{i}@x>",
                from_addr=f"user{i}@qq.com",
                subject="申报材料",
                sent_at=at,
                msg_class="submission",
            )
        )
        values = formgen.base_values(kind, rng)
        values.update(org_name=org, applicant=org, credit_code=code)
        base = {"message_pk": i + 1, "received_at": at, "size": 40_000}
        for j, (k, fmt, fields, text) in enumerate(
            [
                (kind.value, "docx", values, ""),
                (
                    kind.value,
                    "pdf_text",
                    {k: values[k] for k in ("org_name", "credit_code", "project_name") if k in values},
                    "",
                ),
                ("commitment", "docx", {}, f"承诺书\n申请单位（盖章）：{org}\n2026年6月28日"),
                (
                    "license",
                    "image",
                    {"org_name": org, "credit_code": code},
                    f"营业执照\n统一社会信用代码 {code}\n名称 {org}",
                ),
            ]
        ):
            from parsers.types import Kind

            c, nkey, p = document_identity(Kind(k), fields, text)
            docs.append(
                insert_values(
                    DocumentRow,
                    **base,
                    seq=j,
                    filename=f"{i}-{j}.{fmt}",
                    sha256=f"{i:060x}{j:04x}",
                    kind=k,
                    format=fmt,
                    fields=fields,
                    text=text,
                    seal=True if fmt == "pdf_text" else None,
                    org_code=c,
                    org_name_key=nkey,
                    project_key=p,
                )
            )
    from sqlmodel import Session

    with Session(engine) as s:
        for chunk in range(0, len(messages), 2000):
            s.exec(insert(Message), params=messages[chunk : chunk + 2000])
        for chunk in range(0, len(docs), 2000):
            s.exec(insert(DocumentRow), params=docs[chunk : chunk + 2000])
        s.commit()
    engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--apps", type=int, default=5000)
    ap.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = ap.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='bench-regroup-')}/intake.db"
    print(f"filling {args.apps} applications ({args.apps * 4} documents) ...", file=sys.stderr)
    fill(url, args.apps)

    from sqlmodel import Session, col, select

    from intake.config import load_config
    from review.service import _load_docs, regroup
    from store.engine import make_engine
    from store.models import Application, DocumentRow

    cfg = load_config(None, db_url=url)
    engine = make_engine(url, durable=False)

    t0 = time.perf_counter()
    with Session(engine) as s:
        rows = s.exec(select(DocumentRow)).all()
        n_plain = len(rows)
    plain = time.perf_counter() - t0

    t0 = time.perf_counter()
    with Session(engine) as s:
        _docs, _ = _load_docs(s, col(DocumentRow.id).is_not(None))
    load = time.perf_counter() - t0

    timings = []
    for label in ("first regroup (creates)", "second regroup (recheck)"):
        t0 = time.perf_counter()
        with Session(engine) as s:
            res = regroup(s, cfg, full=True)
            s.commit()
        timings.append((label, time.perf_counter() - t0, res))
    with Session(engine) as s:
        apps = s.exec(select(Application)).all()
        statuses: dict[str, int] = {}
        for a in apps:
            statuses[a.status] = statuses.get(a.status, 0) + 1
    engine.dispose()

    print()
    print(f"{args.apps} applications, {n_plain} documents ({engine.dialect.name})")
    print(f"{'plain read of the document rows (ORM)':44s}{plain:8.2f} s   1.00x")
    print(f"{'grouping read (DocViews + messages)':44s}{load:8.2f} s   {load / plain:5.2f}x")
    for label, t, res in timings:
        print(
            f"{label:44s}{t:8.2f} s   {t / plain:5.2f}x   ({res.applications} applications, "
            f"{len(res.created)} created, {res.changed} changed, {res.unassigned} unassigned)"
        )
    print(f"statuses: {statuses}")
    ok = all(t <= 5.0 for _, t, _ in timings) and len(apps) == args.apps
    print(f"target: regroup + recheck <= 5 s: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
