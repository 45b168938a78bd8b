"""The reconciliation report for the dashboard, recomputed only when its inputs changed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from dashboard.web import DashState
from store.models import Application, DocumentRow
from store.paper_models import PaperEntry, ReconcileOverride


def fingerprint(s: Session) -> tuple[Any, ...]:
    """Cheap aggregates that change whenever anything reconciliation reads changes."""
    conn = s.connection()
    paper = conn.execute(select(func.count(), func.max(PaperEntry.updated_at), func.max(PaperEntry.id))).one()
    overrides = conn.execute(select(func.max(ReconcileOverride.id))).scalar()
    apps = conn.execute(select(func.count(), func.max(Application.updated_at), func.max(Application.id))).one()
    summaries = conn.execute(
        select(func.count(), func.max(DocumentRow.id)).where(col(DocumentRow.kind) == "summary")
    ).one()
    return (tuple(paper), overrides, tuple(apps), tuple(summaries))


def fingerprint_documents(s: Session) -> tuple[Any, ...]:
    """Changes when a document arrives or moves (a regroup updates the applications it touches)."""
    conn = s.connection()
    docs = conn.execute(select(func.count(), func.max(DocumentRow.id))).one()
    apps = conn.execute(select(func.count(), func.max(Application.updated_at))).one()
    return (tuple(docs), tuple(apps))


def report(st: DashState, s: Session) -> Any:
    """review.reconcile's Report of what the store holds now (cached per fingerprint)."""
    from review import reconcile

    fp = fingerprint(s)
    with st.lock:
        cached = st.cache.get("reconcile")
        if cached is not None and cached[0] == fp:
            return cached[1]
    cfg = st.config
    rep = reconcile.run(s, reconcile.Settings.from_config(cfg), reconcile.cutoff_of(cfg))
    with st.lock:
        st.cache["reconcile"] = (fp, rep)
    return rep


def refresh_problems(st: DashState, s: Session) -> int:
    """Paper or matches changed: write the reconciliation problems and statuses onto the applications
    (review.reconcile.apply), as `intake paper` does. The caller commits."""
    from review import reconcile

    _report, changed = reconcile.apply(s, st.config)
    return int(changed)


def schedule_refresh(st: DashState) -> None:
    """Bring the applications' paper problems up to date in a background thread, after the response:
    reconciliation reads every application, too slow for the paper desk's one-keystroke save. Requests
    arriving while a refresh runs make it run once more, not once each."""
    import threading

    with st.lock:
        if st.cache.get("refresh_running"):
            st.cache["refresh_again"] = True
            return
        st.cache["refresh_running"] = True

    def work() -> None:
        import logging

        try:
            while True:
                with st.lock:
                    st.cache["refresh_again"] = False
                with Session(st.services.engine, expire_on_commit=False) as s:
                    from review import reconcile

                    rep, _changed = reconcile.apply(s, st.config)
                    s.commit()
                    fp = fingerprint(s)
                with st.lock:
                    st.cache["reconcile"] = (fp, rep)
                    if not st.cache.get("refresh_again"):
                        st.cache["refresh_running"] = False
                        return
        except Exception:
            logging.getLogger(__name__).exception("reconciliation refresh failed")
            with st.lock:
                st.cache["refresh_running"] = False

    threading.Thread(target=work, name="reconcile-refresh", daemon=True).start()


def wait_refreshed(st: DashState, timeout: float = 30.0) -> bool:
    """For tests and benchmarks: wait until no background refresh is running."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with st.lock:
            if not st.cache.get("refresh_running"):
                return True
        time.sleep(0.02)
    return False
