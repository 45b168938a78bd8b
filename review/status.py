"""An application's status from its computed problems and the staff decisions on it (SPEC 4).

The one place the status rule lives: `late` if a `late` problem is not waived, else `incomplete` if any
error is not waived, else `complete`. Decisions never remove a computed problem; they mark it waived.
A decision is `waive` (a problem code), `accept_late` (waives `late`) or `revoke` (cancels another).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Protocol

from parsers.types import Problem

WAIVE, ACCEPT_LATE, REVOKE = "waive", "accept_late", "revoke"
ACTIONS = (WAIVE, ACCEPT_LATE, REVOKE)
STATUSES = ("complete", "incomplete", "late")
# A regroup that joined two applications leaves the younger one as a pointer with this status.
MERGED = "merged"
STATUS_LABEL = {"complete": "材料齐全", "incomplete": "材料不齐", "late": "逾期", MERGED: "已合并"}


class DecisionLike(Protocol):
    """What the status rule reads of a decision (store.models.Decision has it)."""

    id: int | None
    action: str
    problem_code: str | None
    reason: str
    user: str
    created_at: datetime
    revokes: int | None


@dataclass(frozen=True)
class Waiver:
    """Why a problem code is waived: the decision in force for it."""

    code: str
    decision_id: int | None
    by: str
    at: datetime
    reason: str
    action: str

    def as_dict(self, tz: tzinfo | None = None) -> dict[str, Any]:
        at = self.at.astimezone(tz) if tz is not None else self.at
        return {"by": self.by, "at": at.isoformat(), "reason": self.reason, "decision": self.decision_id}


def _order(d: DecisionLike) -> tuple[datetime, int]:
    return (d.created_at, d.id or 0)


def revoked_ids(decisions: Iterable[DecisionLike]) -> set[int]:
    return {d.revokes for d in decisions if d.action == REVOKE and d.revokes is not None}


def active_decisions(decisions: Iterable[DecisionLike]) -> list[DecisionLike]:
    """Waivers and acceptances in force: not revoked, oldest first."""
    ds = list(decisions)
    gone = revoked_ids(ds)
    return sorted((d for d in ds if d.action != REVOKE and d.id not in gone), key=_order)


def waived_code(d: DecisionLike) -> str | None:
    """The problem code a decision waives (accept_late waives `late`)."""
    if d.action == ACCEPT_LATE:
        return "late"
    if d.action == WAIVE:
        return d.problem_code
    return None


def waivers(decisions: Iterable[DecisionLike]) -> dict[str, Waiver]:
    """Problem code -> the waiver in force (the newest active decision for that code)."""
    out: dict[str, Waiver] = {}
    for d in active_decisions(decisions):
        code = waived_code(d)
        if code:
            out[code] = Waiver(code, d.id, d.user, d.created_at, d.reason, d.action)
    return out


def _as_dict(p: Problem | Mapping[str, Any]) -> Mapping[str, Any]:
    return p.as_dict() if isinstance(p, Problem) else p


def status_of(problems: Sequence[Problem | Mapping[str, Any]], decisions: Iterable[DecisionLike] = ()) -> str:
    """`late` / `incomplete` / `complete` (SPEC 4), counting only problems that are not waived."""
    waived = waivers(decisions)
    live = [q for q in map(_as_dict, problems) if q.get("code") not in waived]
    if any(q.get("code") == "late" for q in live):
        return "late"
    if any(q.get("severity") == "error" for q in live):
        return "incomplete"
    return "complete"


def annotate(
    problems: Sequence[Problem | Mapping[str, Any]], decisions: Iterable[DecisionLike], tz: tzinfo | None = None
) -> list[dict[str, Any]]:
    """The problems as exported: {code, severity, detail}, plus `waived` {by, at, reason} when waived."""
    waived = waivers(decisions)
    out: list[dict[str, Any]] = []
    for p in map(_as_dict, problems):
        q = {"code": p.get("code"), "severity": p.get("severity"), "detail": p.get("detail", "")}
        w = waived.get(str(p.get("code")))
        if w is not None:
            q["waived"] = w.as_dict(tz)
        out.append(q)
    return out


class ApplicationLike(Protocol):
    status: str
    late: bool
    problems: list[dict[str, Any]]


def apply_decisions(app_row: ApplicationLike, decisions: Iterable[DecisionLike]) -> str:
    """Recompute a stored application's status from its stored problems and decisions (in place).

    `late` is the fact that a required item arrived late (a computed `late` problem), whatever staff
    decided — the regroup service writes it the same way; an accepted late application keeps late=True
    and gets a status without it. A merged application keeps its status: it is only a pointer.
    """
    if app_row.status == MERGED:
        return MERGED
    app_row.status = status_of(app_row.problems, decisions)
    app_row.late = any(p.get("code") == "late" for p in app_row.problems)
    return app_row.status
