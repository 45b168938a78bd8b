"""Regroup and recheck applications in the database: documents in, Application rows out.

`regroup(session, config, message_ids=...)` is what the pipeline runs after each message; it works on the
closure of what the message can affect — the organisations its documents name, every document of those
organisations' applications, the sender's other applications, and the unassigned documents (which may
have just found their application) — so its cost does not grow with the season. `regroup(..., full=True)`
redoes everything; both give the same result because grouping is a pure function of the documents.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, update
from sqlmodel import Session, col, select

from intake.config import Config
from parsers.types import Format, Kind, Problem
from review.grouping import DISTRICT_KINDS, group
from review.model import ITEMS, AppView, CheckContext, DocView, MessageView
from review.receipts import take_receipts
from store.models import (
    Application,
    AssignmentOverride,
    Decision,
    DocumentRow,
    Message,
    ReceiptCounter,
    insert_values,
)
from store.types import utcnow

log = logging.getLogger(__name__)

TEXT_FOR_GROUPING = 1500
_DISTRICT = re.compile(
    r"(江岸|江汉|硚口|汉阳|武昌|青山|洪山|东西湖|汉南|蔡甸|江夏|黄陂|新洲)区|东湖(新技术)?开发区|东湖高新区|武汉经开区|经济技术开发区|长江新区"
)

# Other areas add problems computed outside the application's documents (the paper log, the districts'
# 汇总表): callables (session, config, apps) -> {application id: [Problem]}.
ProblemSource = Callable[[Session, Config, list[Application]], dict[int, list[Problem]]]
PROBLEM_SOURCES: list[ProblemSource] = []


def register_problem_source(fn: ProblemSource) -> ProblemSource:
    if fn not in PROBLEM_SOURCES:
        PROBLEM_SOURCES.append(fn)
    return fn


@dataclass
class RegroupResult:
    applications: int = 0
    created: list[str] = field(default_factory=list)  # receipt numbers
    merged: list[str] = field(default_factory=list)
    changed: int = 0
    documents: int = 0
    unassigned: int = 0
    touched_ids: list[int] = field(default_factory=list)


def check_context(config: Config) -> CheckContext:
    return CheckContext(
        deadline=config.call.deadline,
        grace=config.call.grace_period,
        tz=config.call.tz,
        call_code=config.call.code,
    )


def _serialize(session: Session, config: Config | None = None) -> None:
    """One regroup at a time per database: a row lock on PostgreSQL, the write lock on SQLite."""
    key = ("~regroup", "~")
    res = session.exec(
        update(ReceiptCounter)
        .where(col(ReceiptCounter.call_code) == key[0], col(ReceiptCounter.form_type) == key[1])
        .values(last=ReceiptCounter.last + 1)
    )
    if res.rowcount == 0:
        session.add(ReceiptCounter(call_code=key[0], form_type=key[1], last=1))
        session.flush()


# -- loading ---------------------------------------------------------------------------------------------

_DOC_COLUMNS = (
    DocumentRow.id,
    DocumentRow.message_pk,
    DocumentRow.parent_pk,
    DocumentRow.filename,
    DocumentRow.member_path,
    DocumentRow.sha256,
    DocumentRow.kind,
    DocumentRow.format,
    DocumentRow.fields,
    DocumentRow.received_at,
    DocumentRow.seal,
    DocumentRow.has_commitment_page,
    DocumentRow.problems,
    DocumentRow.warnings,
    DocumentRow.org_code,
    DocumentRow.org_name_key,
    DocumentRow.project_key,
    DocumentRow.application_pk,
    DocumentRow.assigned_by,
    DocumentRow.assign_note,
)


Assignment = tuple[int | None, str | None, str | None]


def _load_docs(session: Session, where: Any) -> tuple[list[DocView], dict[int, Assignment]]:
    """DocViews (text cut to what grouping reads) and each document's current assignment."""
    rows = session.exec(
        select(*_DOC_COLUMNS, func.substr(DocumentRow.text, 1, TEXT_FOR_GROUPING)).where(where)  # type: ignore[call-overload]
    ).all()
    mids = {r[1] for r in rows}
    messages = _load_messages(session, mids)
    docs: list[DocView] = []
    current: dict[int, Assignment] = {}
    for r in rows:
        (
            did,
            mid,
            parent,
            filename,
            member,
            sha,
            kind,
            fmt,
            fields,
            received,
            seal,
            commit_page,
            problems,
            warnings,
            code,
            name,
            proj,
            app_pk,
            how,
            note,
            text,
        ) = r
        mv = messages.get(mid)
        if mv is None:
            continue
        docs.append(
            DocView(
                id=did,
                message=mv,
                kind=Kind(kind),
                format=Format(fmt),
                filename=filename,
                sha256=sha,
                fields=fields or {},
                text=text or "",
                received_at=received,
                member_path=member or "",
                parent_pk=parent,
                seal=seal,
                has_commitment_page=bool(commit_page),
                problems=problems or [],
                warnings=warnings or [],
                org_code=code,
                org_name_key=name,
                project_key=proj,
            )
        )
        current[did] = (app_pk, how, note)
    return docs, current


def _load_messages(session: Session, ids: Iterable[int]) -> dict[int, MessageView]:
    out: dict[int, MessageView] = {}
    ids = list(ids)
    for i in range(0, len(ids), 900):
        chunk = ids[i : i + 900]
        for m in session.exec(
            select(  # type: ignore[call-overload, misc]  # eleven columns: beyond the typed overloads
                Message.id,
                Message.sha256,
                Message.from_addr,
                Message.reply_to,
                Message.subject,
                Message.sent_at,
                Message.received_at,
                Message.received_source,
                Message.cloud_links,
                Message.headers,
                Message.msg_class,
            ).where(col(Message.id).in_(chunk))
        ):
            mid, sha, frm, reply, subj, sent, recv, src, links, headers, klass = m
            if klass != "submission":
                continue
            out[mid] = MessageView(
                id=mid,
                sha256=sha,
                from_addr=frm,
                reply_to=tuple(reply or ()),
                subject=subj or "",
                sent_at=sent,
                received_at=recv,
                received_source=src,
                cloud_links=tuple(links or ()),
                received_chain=tuple((headers or {}).get("received", [])),
            )
    return out


def _closure(session: Session, message_ids: set[int]) -> Any:
    """The WHERE clause selecting every document this regroup must consider."""
    doc = DocumentRow
    seed = session.exec(
        select(doc.org_code, doc.org_name_key, doc.application_pk).where(col(doc.message_pk).in_(message_ids))
    ).all()
    codes = {c for c, _, _ in seed if c}
    names = {n for _, n, _ in seed if n}
    app_ids = {a for _, _, a in seed if a}
    senders = {s.lower() for s in session.exec(select(Message.from_addr).where(col(Message.id).in_(message_ids))) if s}
    if senders:
        sender_msgs: set[int] = {
            m for m in session.exec(select(Message.id).where(func.lower(Message.from_addr).in_(senders))) if m
        }
        app_ids |= {
            a
            for a in session.exec(
                select(doc.application_pk).where(
                    col(doc.message_pk).in_(sender_msgs), col(doc.application_pk).is_not(None)
                )
            )
            if a
        }
        message_ids = message_ids | sender_msgs
    # Overrides point documents at applications that must be regrouped with them.
    while True:
        conds = [col(doc.message_pk).in_(message_ids), col(doc.application_pk).is_(None)]
        if codes:
            conds.append(col(doc.org_code).in_(codes))
        if names:
            conds.append(col(doc.org_name_key).in_(names))
        if app_ids:
            conds.append(col(doc.application_pk).in_(app_ids))
        rows = session.exec(select(doc.org_code, doc.org_name_key, doc.application_pk).where(or_(*conds))).all()
        new_codes = {c for c, _, _ in rows if c} - codes
        new_names = {n for _, n, _ in rows if n} - names
        new_apps: set[int] = {a for _, _, a in rows if a} - app_ids
        # Applications whose organisation key is one of ours (their documents may all have been replaced).
        keys = codes | new_codes | names | new_names
        if keys:
            found = session.exec(
                select(Application.id).where(col(Application.org_key).in_(keys), Application.status != "merged")
            )
            new_apps |= {a for a in found if a is not None} - app_ids
        if not (new_codes or new_names or new_apps):
            return or_(*conds)
        codes |= new_codes
        names |= new_names
        app_ids |= {a for a in new_apps if a is not None}


# -- the regroup -----------------------------------------------------------------------------------------


def regroup(
    session: Session, config: Config, *, message_ids: Iterable[int] | None = None, full: bool = False
) -> RegroupResult:
    """Recompute applications for `message_ids` (their closure) or for everything (`full`)."""
    # Tens of thousands of short-lived objects, none in reference cycles: the cyclic collector would
    # rescan them again and again (half the time of a full regroup). Paused for this bounded step only.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _regroup(session, config, message_ids=message_ids, full=full)
    finally:
        if was_enabled:
            gc.enable()


def _regroup(session: Session, config: Config, *, message_ids: Iterable[int] | None, full: bool) -> RegroupResult:
    _serialize(session, config)
    if full:
        where: Any = col(DocumentRow.id).is_not(None)
    else:
        mids = set(message_ids or ())
        if not mids:
            return RegroupResult()
        where = _closure(session, mids)
    docs, current = _load_docs(session, where)
    docs = [d for d in docs if d.kind not in DISTRICT_KINDS]
    overrides = _overrides(session, docs)
    grouping = group(docs)
    _note_unreadable(grouping.apps, grouping.unassigned)
    result = RegroupResult(documents=len(docs), unassigned=len(grouping.unassigned))

    # Existing applications this regroup may update: those owning any of the documents, and those of the
    # same organisations (after a replay their documents have new ids, but the same stable keys).
    org_keys = {a.org_key for a in grouping.apps}
    existing_ids = {a for a, _, _ in current.values() if a}
    if full:
        q = select(Application)
    else:
        q = select(Application).where(
            or_(col(Application.id).in_(existing_ids), col(Application.org_key).in_(org_keys))
        )
    existing = {a.id: a for a in session.exec(q) if a.id is not None}
    matches = _match(grouping.apps, existing, current)

    now = utcnow()
    ctx = check_context(config)
    decisions = _decisions(session, [a.id for a in existing.values() if a.id])
    # New applications: numbers taken in one block per form type, rows inserted in one statement, then
    # loaded like the existing ones (constructing sqlmodel objects costs a millisecond each).
    new_views = [v for v in grouping.apps if id(v) not in matches]
    if new_views:
        counts: dict[str, int] = {}
        for v in new_views:
            counts[v.form_type] = counts.get(v.form_type, 0) + 1
        numbers = {ft: iter(rs) for ft, rs in take_receipts(session, config.call.code, counts).items()}
        params = [
            insert_values(
                Application,
                call_code=config.call.code,
                form_type=v.form_type,
                receipt_no=next(numbers[v.form_type]),
                org_key=v.org_key,
                created_at=now,
                updated_at=now,
            )
            for v in new_views
        ]
        inserted = session.exec(
            insert(Application).returning(col(Application.id), col(Application.receipt_no)), params=params
        ).all()
        new_ids = {receipt: rid for rid, receipt in inserted}
        for i in range(0, len(inserted), 900):
            chunk = [rid for rid, _ in inserted[i : i + 900]]
            for row in session.exec(select(Application).where(col(Application.id).in_(chunk))):
                existing[row.id or 0] = row
        for v, p in zip(new_views, params, strict=True):
            matches[id(v)] = existing[new_ids[p["receipt_no"]]]
            result.created.append(p["receipt_no"])
    rows_by_view: list[tuple[AppView, Application]] = []
    used: set[int] = set()
    for view in grouping.apps:
        row = matches[id(view)]
        assert row.id is not None
        used.add(row.id)
        view.id, view.receipt_no = row.id, row.receipt_no
        rows_by_view.append((view, row))

    if overrides:
        by_receipt = {row.receipt_no: view for view, row in rows_by_view}
        placed: list[tuple[DocView, AppView | None]] = [
            (d, v) for v in grouping.apps for d in v.docs if d.item not in ("word", "pdf")
        ]
        placed += [(d, None) for d in grouping.unassigned]
        for d, holder in placed:
            target = overrides.get(d.sha256)
            if target is None or target not in by_receipt or by_receipt[target] is holder:
                continue
            if holder is None:
                grouping.unassigned = [x for x in grouping.unassigned if x.id != d.id]
            else:
                holder.docs = [x for x in holder.docs if x.id != d.id]
            by_receipt[target].docs.append(d)
            d.assigned_by, d.assign_note = "staff", None

    # Checks, then the rows.
    from review.checks import run_checks
    from review.status import status_of

    for view, row in rows_by_view:
        problems = list(run_checks(view, ctx))
        result.changed += _write_app(row, view, problems, decisions.get(row.id or 0, []), ctx, status_of, now)
    owner_of_key = {k: r.id for _v, r in rows_by_view for k in r.doc_keys}
    for app_id, row in existing.items():
        if app_id in used or row.status == "merged":
            continue
        # Its documents went to other applications: it lives on only as a pointer (its number is retired).
        survivor = next((owner_of_key[k] for k in row.doc_keys if k in owner_of_key), None)
        row.status = "merged"
        row.merged_into = survivor
        row.updated_at = now
        session.add(row)
        result.merged.append(row.receipt_no)
    session.flush()
    extra = _extra_problems(session, config, [r for _, r in rows_by_view])
    for _view, row in rows_by_view:
        rid = row.id or 0
        if extra.get(rid):
            row.problems = row.problems + [_problem_dict(p) for p in extra[rid]]
            row.status = status_of(row.problems, decisions.get(rid, []))
            row.late = any(p["code"] == "late" for p in row.problems)
            session.add(row)

    _write_assignments(session, grouping.apps, grouping.unassigned, current)
    result.applications = len(rows_by_view)
    result.touched_ids = [r.id for _, r in rows_by_view if r.id is not None]
    return result


def _note_unreadable(apps: list[AppView], unassigned: list[DocView]) -> None:
    """An unreadable file that grouping could not place still concerns every application its email brought."""
    by_msg: dict[int, list[str]] = {}
    for d in unassigned:
        if d.unreadable:
            by_msg.setdefault(d.message.id, []).extend(
                p.get("detail", d.filename) for p in d.problems if p.get("code") == "unreadable_attachment"
            )
    if not by_msg:
        return
    for a in apps:
        a.messages = [
            dataclasses.replace(m, unreadable=tuple(by_msg[m.id])) if m.id in by_msg else m for m in a.messages
        ]


def refresh_status(session: Session, app: Application) -> str:
    """Recompute one application's status from its stored problems and decisions (after a staff decision).

    Takes the regroup lock first, so a regroup running at the same time cannot write a status computed
    from decisions it read before this one was committed.
    """
    from review.status import apply_decisions

    _serialize(session, None)
    session.refresh(app)
    decisions = _decisions(session, [app.id or 0]).get(app.id or 0, [])
    status = apply_decisions(app, decisions)
    session.add(app)
    return status


def _overrides(session: Session, docs: list[DocView]) -> dict[str, str]:
    shas = list({d.sha256 for d in docs})
    out: dict[str, str] = {}
    for i in range(0, len(shas), 900):
        for o in session.exec(
            select(AssignmentOverride)
            .where(col(AssignmentOverride.document_sha256).in_(shas[i : i + 900]))
            .order_by(col(AssignmentOverride.id))
        ):
            out[o.document_sha256] = o.receipt_no
    return out


def _decisions(session: Session, app_ids: list[int]) -> dict[int, list[Decision]]:
    out: dict[int, list[Decision]] = {}
    for i in range(0, len(app_ids), 900):
        for d in session.exec(select(Decision).where(col(Decision.application_pk).in_(app_ids[i : i + 900]))):
            out.setdefault(d.application_pk, []).append(d)
    return out


def _doc_key(d: DocView) -> str:
    return f"{d.message.id}:{d.sha256}"


def _match(
    apps: list[AppView], existing: dict[int, Application], current: dict[int, Assignment]
) -> dict[int, Application]:
    """Which existing row each new group continues: most shared form documents, then the oldest receipt."""
    rows_by_key: dict[str, set[int]] = {}
    for rid, row in existing.items():
        for k in row.doc_keys:
            rows_by_key.setdefault(k, set()).add(rid)
    scores: list[tuple[int, int, int]] = []  # (-overlap, row id, view index)
    for i, view in enumerate(apps):
        overlap: dict[int, int] = {}
        shared: dict[int, set[str]] = {}
        for d in view.docs:
            if d.item not in ("word", "pdf"):
                continue
            owner = current.get(d.id, (None, None, None))[0]
            if owner in existing:
                overlap[owner] = overlap.get(owner, 0) + 1
            k = _doc_key(d)
            for rid in rows_by_key.get(k, ()):
                shared.setdefault(rid, set()).add(k)
        for rid in set(overlap) | set(shared):
            if existing[rid].form_type != view.form_type:
                continue
            scores.append((-max(overlap.get(rid, 0), len(shared.get(rid, ()))), rid, i))
    out: dict[int, Application] = {}
    taken_rows: set[int] = set()
    taken_views: set[int] = set()
    for _neg, rid, i in sorted(scores):
        if rid in taken_rows or i in taken_views:
            continue
        taken_rows.add(rid)
        taken_views.add(i)
        out[id(apps[i])] = existing[rid]
    return out


def _problem_dict(p: Problem | dict[str, Any]) -> dict[str, Any]:
    return p if isinstance(p, dict) else p.as_dict()


def _write_app(
    row: Application,
    view: AppView,
    problems: list[Problem],
    decisions: list[Decision],
    ctx: CheckContext,
    status_of: Callable[..., str],
    now: datetime,
) -> int:
    fields = view.fields(ctx.cutoff)
    form_docs = [d for d in view.docs if d.item in ("word", "pdf")]
    received = [d.received_at for d in form_docs if d.received_at] or [
        d.received_at for d in view.docs if d.received_at
    ]
    record: dict[str, Any] = {}
    for item in ITEMS:
        if item == "evidence":
            record[item] = [d.id for d in view.versions(item)]
        else:
            d = view.of_record(item, ctx.cutoff)
            record[item] = [d.id] if d else []
    address = str(fields.get("org_address") or "")
    m = _DISTRICT.search(address)
    first_msg = (
        min(form_docs, key=lambda d: (d.received_at is None, d.received_at or now, d.id)).message if form_docs else None
    )
    values: dict[str, Any] = {
        "org_key": view.org_key,
        "org_name": view.org_name,
        "credit_code": view.credit_code,
        "project_name": view.project_name,
        "district": m.group(0) if m else row.district,
        "sender": (
            first_msg.reply_to[0] if first_msg and first_msg.reply_to else first_msg.from_addr if first_msg else None
        ),
        "problems": [_problem_dict(p) for p in problems],
        "fields": fields,
        "record": record,
        "doc_keys": sorted({_doc_key(d) for d in form_docs}),
        "first_received_at": min(received) if received else None,
        "last_received_at": max((d.received_at for d in view.docs if d.received_at), default=None),
        "merged_into": None,
    }
    problem_dicts = [_problem_dict(p) for p in problems]
    values["status"] = status_of(problem_dicts, decisions)
    # `late` is the fact (something arrived late), whatever staff decided; the status says the rest.
    values["late"] = any(p["code"] == "late" for p in problem_dicts)
    changed = 0
    for k, v in values.items():
        if getattr(row, k) != v:
            setattr(row, k, v)
            changed = 1
    if changed:
        row.updated_at = now
    return changed


def _problem_sources() -> list[ProblemSource]:
    """The paper log and the districts' 汇总表 (issue 5) always, then what other areas registered."""
    from review.reconcile import problem_source

    return [problem_source, *(s for s in PROBLEM_SOURCES if s is not problem_source)]


def _extra_problems(session: Session, config: Config, rows: list[Application]) -> dict[int, list[Problem]]:
    out: dict[int, list[Problem]] = {}
    for source in _problem_sources():
        for app_id, problems in source(session, config, rows).items():
            out.setdefault(app_id, []).extend(problems)
    return out


def _write_assignments(
    session: Session, apps: list[AppView], unassigned: list[DocView], current: dict[int, Assignment]
) -> None:
    """Store where each document went, touching only the rows whose assignment changed."""
    updates: list[dict[str, Any]] = []
    placed = [(d, view.id) for view in apps for d in view.docs] + [(d, None) for d in unassigned]
    for d, app_id in placed:
        new = (app_id, d.assigned_by, d.assign_note)
        if current.get(d.id) != new:
            updates.append({"_id": d.id, "app": app_id, "how": d.assigned_by, "note": d.assign_note})
    if updates:
        stmt = (
            update(DocumentRow)
            .where(col(DocumentRow.id) == bindparam("_id"))
            .values(application_pk=bindparam("app"), assigned_by=bindparam("how"), assign_note=bindparam("note"))
        )
        session.connection().execute(stmt, updates)
