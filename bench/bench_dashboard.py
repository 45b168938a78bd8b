"""Benchmark: server time of every dashboard page with 5,000 applications and 20,000 documents, against a
plain read of the same rows in the same run.

    .venv/bin/python bench/bench_dashboard.py                 # SQLite, 5,000 applications
    .venv/bin/python bench/bench_dashboard.py --apps 1000 --db postgresql+psycopg://...

The database is filled as bench/bench_regroup.py does (no parsing), regrouped once in full (receipts,
problems), and every document is given extracted text (--text-kb, default 3 KB) so that full-text search
scans a realistic volume. Each page is requested in-process through the whole app (session cookie, guard
middleware, queries, templates) --repeat times after a warm-up; the baseline is a plain SELECT of the rows
the page shows. Target: every page <= 200 ms (median and p95 reported).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_MS = 200.0
WORDS = [
    "城市治理",
    "智能巡检",
    "数据平台",
    "模型训练",
    "算力调度",
    "应急指挥",
    "网格管理",
    "视频分析",
    "公共服务",
    "交通信号",
    "隐患排查",
    "工单流转",
]


def add_text(url: str, kb: int) -> None:
    """Give every document `kb` KB of extracted text (what the parsers store), in bulk."""
    from sqlalchemy import bindparam, update
    from sqlmodel import Session, col, select

    from store.engine import make_engine
    from store.models import DocumentRow

    rng = random.Random(7)
    engine = make_engine(url, durable=False)
    with Session(engine) as s:
        ids = list(s.exec(select(DocumentRow.id)))
        params = []
        for i in ids:
            words = []
            size = 0
            while size < kb * 1024:
                w = rng.choice(WORDS)
                words.append(w)
                size += len(w.encode()) + 1
            params.append({"_id": i, "t": f"文档{i}：" + " ".join(words)})
        stmt = update(DocumentRow).where(col(DocumentRow.id) == bindparam("_id")).values(text=bindparam("t"))
        for k in range(0, len(params), 2000):
            s.connection().execute(stmt, params[k : k + 2000])
        s.commit()
    engine.dispose()


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    fn()  # warm-up: caches, first compilation of statements and templates
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--apps", type=int, default=5000)
    ap.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    ap.add_argument("--text-kb", type=int, default=3, help="extracted text per document, in KB")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    url = args.db or f"sqlite:///{tmp}/intake.db"

    from bench.bench_regroup import fill

    print(f"filling {args.apps} applications ({args.apps * 4} documents) ...", file=sys.stderr)
    fill(url, args.apps)
    add_text(url, args.text_kb)

    from sqlalchemy import func
    from sqlalchemy import select as sa_select
    from sqlmodel import Session, col, select

    from intake.config import load_config
    from intake.services import build_services
    from review.service import regroup
    from store.models import Application, DocumentRow, Message

    cfg_path = tmp / "config.toml"
    cfg_path.write_text(
        f'[store]\nurl = "{url}"\ndata_dir = "{tmp / "data"}"\n[mailbox]\nenabled = false\n', encoding="utf-8"
    )
    cfg = load_config(cfg_path)
    services = build_services(cfg)
    t0 = time.perf_counter()
    with Session(services.engine) as s:
        res = regroup(s, cfg, full=True)
        s.commit()
    print(f"full regroup: {res.applications} applications in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    from dashboard.app import create_app
    from dashboard.users import add_user

    with Session(services.engine) as s:
        add_user(s, "bench", "staff", "bench-password", by="bench")
        s.commit()
        sample = s.exec(select(Application).order_by(col(Application.id)).offset(args.apps // 2).limit(1)).one()
        doc = s.exec(select(DocumentRow).where(DocumentRow.application_pk == sample.id)).first()
        msg_id = doc.message_pk if doc else 1
        n_docs = s.exec(select(func.count()).select_from(DocumentRow)).one()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    import re

    client = TestClient(create_app(services))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    r = client.post(
        "/login",
        data={"username": "bench", "password": "bench-password", "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    needle = sample.org_name[2:6] if sample.org_name else "科技"

    engine = services.engine
    page = cfg.dashboard.page_size

    def plain(q: Any) -> Callable[[], Any]:
        def run() -> Any:
            with engine.connect() as conn:
                return conn.execute(q).all()

        return run

    a = Application
    apps_all = sa_select(col(a.id), col(a.status), col(a.form_type), col(a.district), col(a.problems))
    apps_page = sa_select(col(a.id), col(a.receipt_no), col(a.org_name), col(a.project_name), col(a.problems)).order_by(
        col(a.receipt_no)
    )
    cases: list[tuple[str, str, Callable[[], Any]]] = [
        ("overview", "/", plain(apps_all)),
        ("applications", "/applications", plain(apps_page.limit(page))),
        (
            "applications, filtered + sorted",
            "/applications?status=incomplete&form_type=model&sort=org&desc=1",
            plain(apps_page.where(col(a.status) == "incomplete", col(a.form_type) == "model").limit(page)),
        ),
        (
            "applications, problem code",
            "/applications?problem=missing_evidence",
            plain(apps_page.limit(page)),
        ),
        (
            "applications, full-text search",
            f"/applications?q={needle}",
            plain(apps_page.where(col(a.org_name).like(f"%{needle}%")).limit(page)),
        ),
        (
            "applications, document text search",
            "/applications?q=交通信号 隐患",
            plain(sa_select(col(DocumentRow.id), col(DocumentRow.text)).limit(page)),
        ),
        ("applications, paper filter", "/applications?paper=missing", plain(apps_page.limit(page))),
        (
            "application detail",
            f"/applications/{sample.receipt_no}",
            plain(sa_select(DocumentRow).where(col(DocumentRow.application_pk) == sample.id)),
        ),
        (
            "document page",
            f"/documents/{doc.id if doc else 1}",
            plain(sa_select(DocumentRow).where(col(DocumentRow.id) == (doc.id if doc else 1))),
        ),
        ("messages", "/messages", plain(sa_select(Message).order_by(col(Message.received_at).desc()).limit(page))),
        (
            "message detail",
            f"/messages/{msg_id}",
            plain(sa_select(Message).where(col(Message.id) == msg_id)),
        ),
        ("paper desk", "/paper", plain(apps_page.limit(15))),
        ("paper suggestions", f"/paper/suggest?q={needle}", plain(apps_page)),
        ("paper unmatched", "/paper/unmatched", plain(apps_page)),
        ("reconciliation", "/reconcile", plain(apps_page)),
        (
            "unassigned documents",
            "/unassigned",
            plain(sa_select(DocumentRow).where(col(DocumentRow.application_pk).is_(None)).limit(page)),
        ),
    ]
    # A search never made before (nothing cached): a new fragment of another company's name each time.
    with Session(services.engine) as s:
        names = [n for n in s.exec(select(Application.org_name).limit(args.repeat * 3)) if n]
    fresh = iter(n[2:5] + str(i) for i, n in enumerate(names))
    cases.append(("search, new text every time (uncached)", "", plain(apps_page.limit(page))))
    rows = []
    ok = True
    for name, path, base in cases:
        if not path:

            def get(fresh: Any = fresh) -> None:
                resp = client.get(f"/applications?q={next(fresh)}")
                assert resp.status_code == 200

            t_page = timed(get, args.repeat)
            t_base = timed(base, args.repeat)
            med, base_med, worst = statistics.median(t_page), statistics.median(t_base), p95(t_page)
            ok &= worst <= TARGET_MS
            rows.append((name, med, worst, base_med, med / base_med if base_med else float("inf")))
            continue

        def get(path: str = path) -> None:
            resp = client.get(path)
            assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])

        t_page = timed(get, args.repeat)
        t_base = timed(base, args.repeat)
        med, base_med = statistics.median(t_page), statistics.median(t_base)
        worst = p95(t_page)
        ok &= worst <= TARGET_MS
        rows.append((name, med, worst, base_med, med / base_med if base_med else float("inf")))

    print()
    print(f"{args.apps} applications, {n_docs} documents, {args.text_kb} KB text each ({engine.dialect.name}); ms")
    print(f"{'page':38s}{'median':>9s}{'p95':>9s}{'plain read':>12s}{'ratio':>8s}")
    for name, med, worst, base_med, ratio in rows:
        print(f"{name:38s}{med:9.1f}{worst:9.1f}{base_med:12.1f}{ratio:8.1f}")
    print(f"target: every page <= {TARGET_MS:.0f} ms (p95): {'met' if ok else 'NOT met'}")
    services.close()
    engine.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
