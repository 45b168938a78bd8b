"""Benchmark: reconcile 5,000 applications with 5,000 paper entries, against a bare process.cdist.

    .venv/bin/python bench/bench_reconcile.py                      # 5,000 × 5,000, 3 runs, plus SQLite
    .venv/bin/python bench/bench_reconcile.py --apps 2000 --entries 2000 --seed 3 --no-db

Data: tests/papergen — distinct companies (a fifth with a second project, some with one project in two
directions), a paper log covering ~92 % of them with the name variants staff write (full/half width,
（武汉） moved, legal forms swapped or dropped, 市 prefixes, 《》, spaces, line breaks) and pinyin-IME typos
(a homophone, or a character dropped, doubled or swapped) in a third of the project names and a sixth of
the organisation names, some hand-ins split in two entries, and ~4 % entries of companies that never
emailed (orphans), often sister companies of applicants.

Measured in one run, median of --repeat: the whole in-memory reconciliation (keys, credit/exact/fuzzy
matching, per-application status and problems) from cold key caches; a bare ``process.cdist`` with
``fuzz.ratio`` of every entry against every application on the same (normalised "org|project") strings,
the floor a vectorised matcher cannot go under; and, unless --no-db, the same from a SQLite store (load
of the rows included). Precision and recall are of the matched entries against the generator's truth
(an entry left ambiguous counts as not matched). Targets: <= 2 s, precision and recall >= 0.98.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rapidfuzz import fuzz, process  # noqa: E402

from review import reconcile as rc  # noqa: E402
from tests import papergen  # noqa: E402


def _cold() -> None:
    # Keys are cached per string: every timed run starts without them, as a new process would.
    rc._org_keys.cache_clear()
    rc._project_key.cache_clear()


def inputs_of(season: papergen.Season) -> rc.Inputs:
    apps = [rc.AppRec(a.id, a.receipt_no, a.form_type, a.org_name, a.project_name, a.credit_code, a.district)
            for a in season.apps]  # fmt: skip
    entries = [
        rc.EntryRec(e.id, e.received_at, e.org_name, e.project_name, e.form_type, e.item, e.copies, e.district,
                    e.received_by, e.note, e.credit_code)
        for e in season.entries
    ]  # fmt: skip
    return rc.Inputs(apps, entries, [])


def score(report: rc.Report, truth: dict[int, int | None]) -> tuple[float, float, Counter[str]]:
    tp = fp = 0
    outcome: Counter[str] = Counter()
    for er in report.entries:
        expected = truth[er.entry.id]
        got = er.link.app.id if er.link.status == "matched" and er.link.app else None
        if got is not None:
            tp += got == expected
            fp += got != expected
        kind = "orphan" if expected is None else "true"
        outcome[f"{kind} → {er.link.status}{'' if got is None or got == expected else ' (wrong)'}"] += 1
    positives = sum(v is not None for v in truth.values())
    return tp / max(tp + fp, 1), tp / max(positives, 1), outcome


def timed(fn: object, repeat: int) -> tuple[float, object]:
    times: list[float] = []
    result: object = None
    for _ in range(repeat):
        _cold()
        t0 = time.perf_counter()
        result = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def fill_sqlite(season: papergen.Season, url: str) -> None:
    from sqlalchemy import insert

    from review.names import org_key, project_key
    from store.engine import make_engine, migrate
    from store.models import Application, insert_values
    from store.paper_models import PaperEntry

    engine = make_engine(url, durable=False)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(Application),
            [insert_values(Application, call_code="AI2026", form_type=a.form_type, receipt_no=a.receipt_no,
                           org_key=a.credit_code, org_name=a.org_name, project_name=a.project_name,
                           credit_code=a.credit_code, district=a.district) for a in season.apps],
        )  # fmt: skip
        conn.execute(
            insert(PaperEntry),
            [insert_values(PaperEntry, received_at=e.received_at, org_name=e.org_name, project_name=e.project_name,
                           form_type=e.form_type, item=e.item, copies=e.copies, district=e.district,
                           received_by=e.received_by, org_key=org_key(e.org_name),
                           project_key=project_key(e.project_name), source="bench", created_by="bench")
             for e in season.entries],
        )  # fmt: skip
    engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apps", type=int, default=5000)
    ap.add_argument("--entries", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-db", action="store_true", help="Skip the SQLite end-to-end run.")
    args = ap.parse_args()

    season = papergen.make_season(args.apps, seed=args.seed)
    # Exactly --entries paper entries: the generator's log (in arrival order) cut or cycled to size.
    if len(season.entries) < args.entries:
        sys.exit(f"the generated log has only {len(season.entries)} entries; lower --entries or raise --apps")
    season.entries = season.entries[: args.entries]
    season.truth = {e.id: season.truth[e.id] for e in season.entries}
    settings = rc.Settings()
    cutoff = papergen.DEADLINE
    inputs = inputs_of(season)
    n_orphans = sum(v is None for v in season.truth.values())
    print(f"{len(season.apps)} applications × {len(season.entries)} paper entries "
          f"({n_orphans} of companies that never emailed), seed {args.seed}")  # fmt: skip

    t_ours, report = timed(lambda: rc.reconcile(inputs, settings, cutoff, cutoff), args.repeat)
    assert isinstance(report, rc.Report)
    precision, recall, outcome = score(report, season.truth)

    # The floor: one bare cdist on the same strings, normalised the same way, nothing else.
    q_str = [f"{k.org}|{k.project}" for k in (rc.Keys.of(e.org_name, e.project_name) for e in season.entries)]
    t_str = [f"{k.org}|{k.project}" for k in (rc.Keys.of(a.org_name, a.project_name) for a in season.apps)]
    base_times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        process.cdist(q_str, t_str, scorer=fuzz.ratio, dtype=np.uint8, workers=-1)
        base_times.append(time.perf_counter() - t0)
    t_base = statistics.median(base_times)

    print(f"reconcile (in memory, cold key caches): {t_ours:.3f} s")
    print(f"bare process.cdist fuzz.ratio, same strings: {t_base:.3f} s  → ratio {t_ours / t_base:.2f}×")
    print(f"precision {precision:.4f}, recall {recall:.4f}")
    for k, v in sorted(outcome.items()):
        print(f"  {k}: {v}")

    t_db = None
    if not args.no_db:
        from sqlmodel import Session

        from store.engine import make_engine

        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            fill_sqlite(season, url)
            engine = make_engine(url)
            with Session(engine) as s:
                t_db, db_report = timed(lambda: rc.run(s, settings, cutoff, cutoff), args.repeat)
            engine.dispose()
        assert isinstance(db_report, rc.Report)
        db_p, db_r, _ = score_by_position(db_report, season)
        print(f"from SQLite (load + reconcile): {t_db:.3f} s; precision {db_p:.4f}, recall {db_r:.4f}")

    ok = t_ours <= 2.0 and precision >= 0.98 and recall >= 0.98
    print(f"target: <= 2 s with precision and recall >= 0.98: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


def score_by_position(report: rc.Report, season: papergen.Season) -> tuple[float, float, Counter[str]]:
    """Database ids follow insertion order: map them back to the generator's ids."""
    entry_ids = [e.id for e in season.entries]
    by_db = {er.entry.id: er for er in report.entries}
    remapped = sorted(by_db)
    truth = {db_id: season.truth[gen_id] for db_id, gen_id in zip(remapped, entry_ids, strict=True)}
    return score(report, truth)


if __name__ == "__main__":
    sys.exit(main())
