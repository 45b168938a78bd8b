"""Staff decisions on applications: waive a problem, accept a late application, revoke either — each a
Decision row plus an AuditEvent (who, when, what, why) in one transaction, then the status recomputed."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from review.checks import code_label
from review.status import ACCEPT_LATE, ACTIONS, MERGED, REVOKE, WAIVE, active_decisions, apply_decisions, waivers
from store.models import Application, AuditEvent, Decision
from store.types import utcnow


class DecisionError(ValueError):
    """A decision that cannot be taken (unknown receipt, no such problem, already waived, ...)."""


def normalize_action(action: str) -> str:
    """`accept-late` (as typed on the command line) is `accept_late`."""
    a = action.strip().lower().replace("-", "_")
    if a not in ACTIONS:
        raise DecisionError(f"unknown action {action!r}: use waive, accept-late or revoke")
    return a


def find_application(session: Session, receipt_no: str, *, lock: bool = False) -> Application:
    q = select(Application).where(Application.receipt_no == receipt_no.strip())
    if lock:
        # Two staff deciding on one application at once: the second waits and sees the first's decision.
        q = q.with_for_update()
    app = session.exec(q).first()
    if app is None:
        raise DecisionError(f"no application with receipt number {receipt_no!r}")
    return app


def decisions_of(session: Session, application_id: int) -> list[Decision]:
    return list(
        session.exec(
            select(Decision)
            .where(Decision.application_pk == application_id)
            .order_by(col(Decision.created_at), col(Decision.id))
        )
    )


def _refresher() -> Callable[[Session, Application], Any] | None:
    """review.service.refresh_status when the regroup service provides it (it owns the locking against
    a concurrent regroup); until then the status rule is applied here."""
    try:
        service = importlib.import_module("review.service")
    except ModuleNotFoundError as e:
        if e.name != "review.service":
            raise
        return None
    fn = getattr(service, "refresh_status", None)
    return fn if callable(fn) else None


def refresh(session: Session, app: Application) -> str:
    """Recompute the stored status of one application after its decisions changed."""
    fn = _refresher()
    if fn is not None:
        session.flush()
        fn(session, app)
        return app.status
    return apply_decisions(app, decisions_of(session, app.id or 0))


def decide(
    session: Session,
    receipt_no: str,
    action: str,
    code: str | int | None,
    reason: str,
    user: str,
    *,
    now: datetime | None = None,
    commit: bool = True,
) -> Decision:
    """Record a staff decision and recompute the application's status.

    `action`: `waive` (`code` is the problem code), `accept_late` (`code` None or "late"), or `revoke`
    (`code` is the id of the decision to cancel). `reason` and `user` are required. Raises
    DecisionError with a message for staff when the decision cannot be taken; nothing is written then.
    With `commit` (the default) the Decision, the AuditEvent and the new status are committed together.
    """
    act = normalize_action(action)
    reason, user = (reason or "").strip(), (user or "").strip()
    if not reason:
        raise DecisionError("a reason is required (--reason): decisions are audited")
    if not user:
        raise DecisionError("a user name is required (--user): decisions are audited")
    now = now or utcnow()
    try:
        app = find_application(session, receipt_no, lock=True)
        if app.status == MERGED:
            target = session.get(Application, app.merged_into) if app.merged_into else None
            where = f" into {target.receipt_no}" if target else ""
            raise DecisionError(f"{app.receipt_no} was merged{where}: decide on the application that lives on")
        assert app.id is not None
        existing = decisions_of(session, app.id)
        codes = [str(p.get("code")) for p in app.problems]
        in_force = waivers(existing)
        decision = Decision(application_pk=app.id, action=act, reason=reason, user=user, created_at=now, revokes=None)
        if act == WAIVE:
            c = str(code or "").strip()
            if not c:
                raise DecisionError("waive needs the problem code to waive")
            _check_code(app, c, codes, in_force)
            decision.problem_code = c
        elif act == ACCEPT_LATE:
            if code not in (None, "", "late"):
                raise DecisionError(f"accept-late takes no problem code (got {code!r})")
            _check_code(app, "late", codes, in_force)
            decision.problem_code = "late"
        else:
            target_decision = _revocable(app, existing, code)
            decision.revokes = target_decision.id
            decision.problem_code = target_decision.problem_code
        before = app.status
        session.add(decision)
        session.flush()
        after = refresh(session, app)
        app.updated_at = now
        session.add(app)
        session.add(
            AuditEvent(
                at=now,
                user=user,
                action=f"decision.{act}",
                target=f"application:{app.receipt_no}",
                detail={
                    "decision_id": decision.id,
                    "action": act,
                    "problem_code": decision.problem_code,
                    "revokes": decision.revokes,
                    "reason": reason,
                    "status_before": before,
                    "status_after": after,
                },
            )
        )
        session.flush()
        if commit:
            session.commit()
            session.refresh(decision)
        return decision
    except BaseException:
        if commit:
            # Nothing half-written, and the row lock released; a caller's own transaction is its own.
            session.rollback()
        raise


def _check_code(app: Application, code: str, codes: list[str], in_force: dict[str, Any]) -> None:
    if code not in codes:
        present = ", ".join(sorted(set(codes))) or "none"
        what = "is not late" if code == "late" else f"has no problem {code!r} ({code_label(code)})"
        raise DecisionError(f"{app.receipt_no} {what}; its problems: {present}")
    w = in_force.get(code)
    if w is not None:
        raise DecisionError(
            f"{code} on {app.receipt_no} is already waived by {w.by} (decision {w.decision_id}); "
            "revoke that decision first to change it"
        )


def _revocable(app: Application, existing: list[Decision], code: str | int | None) -> Decision:
    try:
        target_id = int(str(code).strip().lstrip("#"))
    except (TypeError, ValueError):
        raise DecisionError(f"revoke needs the id of the decision to revoke (got {code!r})") from None
    target = next((d for d in existing if d.id == target_id), None)
    if target is None:
        ids = ", ".join(str(d.id) for d in active_decisions(existing)) or "none"
        raise DecisionError(f"{app.receipt_no} has no decision {target_id}; decisions in force: {ids}")
    if target.action == REVOKE:
        raise DecisionError(f"decision {target_id} is itself a revocation and cannot be revoked")
    if any(d.action == REVOKE and d.revokes == target_id for d in existing):
        raise DecisionError(f"decision {target_id} is already revoked")
    return target
