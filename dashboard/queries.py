"""The dashboard's reads: application filters and search in SQL (one query per page), overview counts."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Text, cast, func, literal, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col
from sqlmodel import select as orm_select

from review.status import MERGED
from store.acks_models import AckOutbox
from store.models import Application, Decision, DocumentRow, MailboxCheckpoint, Message

FORM_TYPES = ("scenario", "model", "platform", "terminal")
STATUSES = ("complete", "incomplete", "late")
# Paper status as reconciliation reports it now (dashboard.recon caches the report).
PAPER_FILTERS = {
    "matched": "已收齐",
    "missing": "未登记",
    "ambiguous": "待确认",
    "copies_short": "份数不足",
    "late": "逾期送达",
}
SORTS: dict[str, Any] = {
    "receipt": col(Application.receipt_no),
    "org": col(Application.org_name),
    "project": col(Application.project_name),
    "received": col(Application.first_received_at),
    "status": col(Application.status),
    "district": col(Application.district),
}


@dataclass
class AppFilter:
    """The applications list's query string: filters, search, sort, page."""

    status: str = ""
    form_type: str = ""
    district: str = ""
    problem: str = ""
    paper: str = ""
    q: str = ""
    sort: str = "receipt"
    desc: bool = False
    page: int = 1

    def clean(self) -> AppFilter:
        from review.checks import PROBLEM_CODES

        return AppFilter(
            status=self.status if self.status in STATUSES else "",
            form_type=self.form_type if self.form_type in FORM_TYPES else "",
            district=self.district.strip()[:40],
            problem=self.problem if self.problem in PROBLEM_CODES else "",
            paper=self.paper if self.paper in PAPER_FILTERS else "",
            q=" ".join(self.q.split())[:100],
            sort=self.sort if self.sort in SORTS else "receipt",
            desc=bool(self.desc),
            page=max(1, min(int(self.page or 1), 100_000)),
        )

    def query(self, **changes: Any) -> str:
        """This filter as a query string, with some values changed (links for sorting and paging)."""
        values = {**asdict(self), **changes}
        pairs = [(k, ("1" if v else "") if isinstance(v, bool) else str(v)) for k, v in values.items()]
        return urlencode([(k, v) for k, v in pairs if v not in ("", "0") and not (k == "page" and v == "1")])

    @property
    def active(self) -> bool:
        return any((self.status, self.form_type, self.district, self.problem, self.paper, self.q))


def like_pattern(needle: str) -> str:
    """A LIKE pattern finding `needle` literally (wildcards typed by staff are not wildcards)."""
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column: Any, pattern: str, dialect: str) -> ColumnElement[bool]:
    # SQLite's LIKE folds ASCII case by itself; PostgreSQL needs ILIKE. Chinese has no case.
    expr: Any = column if isinstance(column, ColumnElement) else col(column)
    if dialect == "postgresql":
        return expr.ilike(pattern, escape="\\")
    return expr.like(pattern, escape="\\")


def has_problem(code: str, dialect: str) -> ColumnElement[bool]:
    """The application's stored problems include `code` (waived or not)."""
    if dialect == "postgresql":
        # The value is bound as JSONB (a list), not as a string the driver would quote again.
        return col(Application.problems).op("@>")(literal([{"code": code}], JSONB))
    # JSON text as orjson writes it (no spaces); the closing quote keeps "late" from matching "late_revision".
    return cast(Application.problems, Text).like(like_pattern(f'"code":"{code}"'), escape="\\")


def id_in(ids: set[int], dialect: str) -> ColumnElement[bool]:
    """application.id among `ids`, as one bound value (a JSON array / a PostgreSQL array) rather than
    thousands of parameters, which cost more to bind and plan than the query itself."""
    from sqlalchemy import Integer, any_, bindparam, text
    from sqlalchemy.dialects.postgresql import ARRAY

    values = sorted(ids)
    if dialect == "postgresql":
        return col(Application.id) == any_(bindparam("app_ids", values, type_=ARRAY(Integer)))
    rows = text("SELECT value FROM json_each(:app_ids)").bindparams(app_ids=json.dumps(values))
    return col(Application.id).in_(rows.columns(value=Integer))


def where_clauses(
    f: AppFilter, dialect: str, paper_ids: set[int] | None = None, text_ids: set[int] | None = None
) -> list[ColumnElement[bool]]:
    """SQL conditions of the filter; `paper_ids`: the applications whose paper status is f.paper;
    `text_ids`: those the search text found (search_ids)."""
    conds: list[ColumnElement[bool]] = [col(Application.status) != MERGED]
    if f.status:
        conds.append(col(Application.status) == f.status)
    if f.form_type:
        conds.append(col(Application.form_type) == f.form_type)
    if f.district:
        conds.append(col(Application.district) == f.district)
    if f.problem:
        conds.append(has_problem(f.problem, dialect))
    if f.paper:
        conds.append(id_in(paper_ids or set(), dialect))
    if f.q:
        conds.append(id_in(text_ids or set(), dialect))
    return conds


def search_ids(s: Session, needle: str) -> set[int]:
    """Applications with the needle in the receipt, org, project, credit code, sender, any form field
    (contacts, phones, joint applicants, narrative sections), or the extracted text or name of any of
    their documents. One scan of the document text, however many pages are then shown."""
    dialect = s.get_bind().dialect.name
    p = like_pattern(needle)
    conn = s.connection()
    in_apps = select(col(Application.id)).where(
        col(Application.status) != MERGED,
        or_(
            _contains(Application.receipt_no, p, dialect),
            _contains(Application.org_name, p, dialect),
            _contains(Application.project_name, p, dialect),
            _contains(Application.credit_code, p, dialect),
            _contains(Application.sender, p, dialect),
            _contains(cast(Application.fields, Text), p, dialect),
        ),
    )
    found = {i for i in conn.execute(in_apps).scalars() if i is not None}
    return found | {i for i in conn.execute(_docs_containing(needle, p, dialect)).scalars() if i is not None}


def _docs_containing(needle: str, pattern: str, dialect: str) -> Any:
    """Applications of the documents whose text or file name contains the needle.

    Three characters or more are answered from the trigram index of migration 0007 (SQLite: the FTS5 table
    document_fts; PostgreSQL: GIN trigram indexes that ILIKE uses); shorter needles scan the text.
    """
    from sqlalchemy import text

    # FTS5 answers LIKE from its index only without an ESCAPE clause: needles holding a LIKE wildcard
    # (rare in names) take the scan, which escapes them.
    if dialect == "sqlite" and len(needle) >= 3 and not any(ch in needle for ch in "%_\\"):
        return text(
            "SELECT application_pk FROM document WHERE id IN "
            "(SELECT rowid FROM document_fts WHERE text LIKE :p OR filename LIKE :p)"
        ).bindparams(p=f"%{needle}%")
    # A plain scan: no condition the planner could answer from the application_pk index, which would
    # turn the scan into 20,000 random row lookups (twice as slow here).
    return select(col(DocumentRow.application_pk)).where(
        or_(_contains(DocumentRow.text, pattern, dialect), _contains(DocumentRow.filename, pattern, dialect))
    )


LIST_COLUMNS = tuple(
    col(c)
    for c in (
        Application.id,
        Application.receipt_no,
        Application.form_type,
        Application.status,
        Application.district,
        Application.org_name,
        Application.project_name,
        Application.credit_code,
        Application.first_received_at,
        Application.problems,
    )
)


@dataclass
class Page:
    rows: list[Any]
    total: int
    page: int
    pages: int
    waived: dict[int, set[str]]


def list_applications(
    s: Session, f: AppFilter, page_size: int, paper_ids: set[int] | None = None, text_ids: set[int] | None = None
) -> Page:
    dialect = s.get_bind().dialect.name
    conds = where_clauses(f, dialect, paper_ids, text_ids)
    conn = s.connection()
    total = conn.execute(select(func.count()).select_from(Application).where(*conds)).scalar_one()
    pages = max(1, -(-total // page_size))
    page = min(f.page, pages)
    order = SORTS[f.sort]
    order_by = [order.desc().nulls_last() if f.desc else order.asc().nulls_last()]
    if f.sort != "receipt":
        order_by.append(col(Application.receipt_no).asc())
    rows = list(
        conn.execute(
            select(*LIST_COLUMNS).where(*conds).order_by(*order_by).limit(page_size).offset((page - 1) * page_size)
        ).all()
    )
    return Page(rows, total, page, pages, waived_codes(s, [r.id for r in rows]))


def filtered_receipts(
    s: Session, f: AppFilter, paper_ids: set[int] | None = None, text_ids: set[int] | None = None
) -> list[str]:
    dialect = s.get_bind().dialect.name
    q = (
        select(col(Application.receipt_no))
        .where(*where_clauses(f, dialect, paper_ids, text_ids))
        .order_by(col(Application.receipt_no))
    )
    return list(s.connection().execute(q).scalars())


def waived_codes(s: Session, app_ids: list[int]) -> dict[int, set[str]]:
    """Problem codes waived by a decision in force, per application."""
    from review.status import waivers

    if not app_ids:
        return {}
    by_app: dict[int, list[Decision]] = {}
    for d in s.exec(orm_select(Decision).where(col(Decision.application_pk).in_(app_ids))):
        by_app.setdefault(d.application_pk, []).append(d)
    return {a: set(waivers(ds)) for a, ds in by_app.items()}


def districts(s: Session) -> list[str]:
    q = (
        select(col(Application.district))
        .where(col(Application.district).is_not(None), col(Application.status) != MERGED)
        .distinct()
        .order_by(col(Application.district))
    )
    return [d for d in s.connection().execute(q).scalars() if d]


# -- the overview ------------------------------------------------------------------------------------------------


@dataclass
class Overview:
    total: int
    by_status_type: dict[tuple[str, str], int]
    by_status: Counter[str]
    by_type: Counter[str]
    by_district: list[tuple[str, Counter[str]]]
    problems: list[tuple[str, int, int]]  # code, applications, of which waived
    arrivals: list[datetime]
    messages_by_class: Counter[str]
    quarantined: int
    pending: int
    acks: Counter[str]
    checkpoints: list[Any]
    unassigned: int


def overview(s: Session) -> Overview:
    conn = s.connection()
    live = col(Application.status) != MERGED
    by_status_type: dict[tuple[str, str], int] = {}
    for status, form_type, n in conn.execute(
        select(col(Application.status), col(Application.form_type), func.count())
        .where(live)
        .group_by(col(Application.status), col(Application.form_type))
    ):
        by_status_type[(status, form_type)] = n
    by_status: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    for (status, form_type), n in by_status_type.items():
        by_status[status] += n
        by_type[form_type] += n
    per_district: dict[str, Counter[str]] = {}
    for district, status, n in conn.execute(
        select(col(Application.district), col(Application.status), func.count())
        .where(live)
        .group_by(col(Application.district), col(Application.status))
    ):
        per_district.setdefault(district or "（未识别）", Counter())[status] += n
    by_district = sorted(per_district.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))

    # Problems: the JSON column read once (a few thousand small arrays), waivers from the decisions table.
    from review.status import waivers

    decisions: dict[int, list[Decision]] = {}
    for d in s.exec(orm_select(Decision)):
        decisions.setdefault(d.application_pk, []).append(d)
    apps_with = problem_counts(s)
    waived_with: Counter[str] = Counter()
    merged = set(conn.execute(select(col(Application.id)).where(col(Application.status) == MERGED)).scalars())
    for app_id, ds in decisions.items():
        if app_id not in merged:
            # A waiver exists only for a problem the application has (review.decisions checks).
            waived_with.update(waivers(ds).keys())
    problems_out = sorted(((c, n, waived_with[c]) for c, n in apps_with.items()), key=lambda t: (-t[1], t[0]))

    arrivals: list[datetime] = [
        r
        for r in conn.execute(
            select(col(Message.received_at)).where(
                col(Message.msg_class) == "submission", col(Message.received_at).is_not(None)
            )
        ).scalars()
        if r is not None
    ]
    classes: Counter[str] = Counter(
        {
            k or "unparsed": n
            for k, n in conn.execute(select(col(Message.msg_class), func.count()).group_by(col(Message.msg_class)))
        }
    )
    states: dict[str, int] = dict(
        conn.execute(select(col(Message.state), func.count()).group_by(col(Message.state))).all()
    )
    acks: Counter[str] = Counter(
        dict(conn.execute(select(col(AckOutbox.status), func.count()).group_by(col(AckOutbox.status))).all())
    )
    checkpoints = list(
        conn.execute(
            select(
                col(MailboxCheckpoint.account),
                col(MailboxCheckpoint.folder),
                col(MailboxCheckpoint.last_poll_at),
                col(MailboxCheckpoint.last_success_at),
                col(MailboxCheckpoint.last_error),
                col(MailboxCheckpoint.last_error_at),
            )
        ).all()
    )
    unassigned = conn.execute(select(func.count()).select_from(DocumentRow).where(unassigned_condition())).scalar_one()
    return Overview(
        total=sum(by_status.values()),
        by_status_type=by_status_type,
        by_status=by_status,
        by_type=by_type,
        by_district=by_district,
        problems=problems_out,
        arrivals=arrivals,
        messages_by_class=classes,
        quarantined=int(states.get("quarantined", 0)),
        pending=int(states.get("new", 0)),
        acks=acks,
        checkpoints=checkpoints,
        unassigned=unassigned,
    )


def problem_counts(s: Session) -> Counter[str]:
    """Live applications per problem code, counted by the database (JSON functions), not in Python."""
    from sqlalchemy import text

    if s.get_bind().dialect.name == "postgresql":
        sql = (
            "SELECT p->>'code', count(DISTINCT a.id) FROM application a "
            "CROSS JOIN LATERAL jsonb_array_elements(a.problems) p WHERE a.status != 'merged' GROUP BY 1"
        )
    else:
        sql = (
            "SELECT json_extract(p.value, '$.code'), count(DISTINCT a.id) FROM application a, "
            "json_each(a.problems) p WHERE a.status != 'merged' GROUP BY 1"
        )
    return Counter({str(code): int(n) for code, n in s.connection().execute(text(sql)) if code})


def unassigned_condition() -> ColumnElement[bool]:
    """Documents grouping could not place: not a district's 汇总表 / 推荐意见 (those belong to a district),
    not an archive (its members are the documents), not inside an application."""
    return (
        col(DocumentRow.application_pk).is_(None)
        & col(DocumentRow.kind).not_in(("summary", "recommendation"))
        & (col(DocumentRow.format) != "archive")
    )
