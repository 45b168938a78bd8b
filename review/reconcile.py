"""Three-way reconciliation: applications ↔ paper log ↔ district 汇总表 rows (SPEC 7, issue 5).

Matching, for each paper entry (申报书) and each 汇总表 row, finds the application it is about:

1. by credit code when the entry has one and an application carries it (the project name then picks
   among that organisation's applications);
2. else by the exact normalised (organisation, project) keys of review.names — most entries;
3. else fuzzily, vectorised: rapidfuzz ``process.cdist`` of ``fuzz.ratio`` of every entry's organisation
   key against every application's (the one dense matrix); the pairs reaching ``org_floor`` are the
   candidates, and for those alone ``process.cpdist`` scores the trade names (字号) and the project keys.
   Score: ``org_weight·org + (1-org_weight)·project`` (org: the mean of whole name and trade name) minus
   ``direction_penalty`` when the 方向 differs; the project must reach ``project_floor``; sister
   companies (same trade name, other industry) and other districts' public bodies are no candidates.
   The best candidate is a match when it reaches ``match_threshold`` and beats the next one by
   ``margin``; a candidate at or above ``review_threshold`` otherwise makes the entry *ambiguous* (staff
   choose); below that it is an orphan.

The defaults were tuned on tests/papergen logs (bench/bench_reconcile.py: precision and recall ~0.998).
Staff decisions (ReconcileOverride, newest per subject wins) are applied before any of that, so they
survive re-runs. Everything is recomputed from the tables on each call: nothing here caches results.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
from rapidfuzz import fuzz, process
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from parsers.types import Problem, Severity
from parsers.validators import normalize_name
from review.names import credit_key, org_loose_key, project_key, trade_name
from store.models import Application, AuditEvent, DocumentRow
from store.paper_models import PaperEntry, ReconcileOverride
from store.types import utcnow

if TYPE_CHECKING:
    from intake.config import Config

log = logging.getLogger(__name__)

FORM_TYPES = ("scenario", "model", "platform", "terminal")
FORM_TYPE_LABEL = {
    "scenario": "典型应用场景",
    "model": "模型和智能体",
    "platform": "公共服务平台",
    "terminal": "智能终端产品",
}
ITEMS = ("form", "recommendation", "summary")
ITEM_LABEL = {"form": "申报书", "recommendation": "推荐意见", "summary": "汇总表"}
# The problems this module owns on an application: replaced (never duplicated) on every recheck.
OWN_CODES = frozenset({"paper_missing", "paper_copies_short", "not_in_summary"})
# A late paper hand-in is a `late` problem (SPEC 4: a required item arrived after the deadline) whose
# detail starts with this, which is how a recheck tells it from the electronic `late` of the checks.
PAPER_LATE_PREFIX = "纸质申报书"

DEFAULT_DISTRICTS = (
    "江岸区", "江汉区", "硚口区", "汉阳区", "武昌区", "青山区", "洪山区", "东西湖区", "汉南区", "蔡甸区",
    "江夏区", "黄陂区", "新洲区", "武汉经开区", "东湖高新区", "长江新区", "市直单位",
)  # fmt: skip
# Other names the development zones go by in documents and logs.
_DISTRICT_ALIASES = {
    "东湖高新区": ("东湖新技术开发区", "东湖开发区", "东湖高新", "光谷"),
    "武汉经开区": ("武汉经济技术开发区", "经济技术开发区", "经开区", "沌口"),
    "长江新区": ("长江新城",),
    "市直单位": ("市直",),
}


@dataclass(frozen=True)
class Settings:
    """Thresholds and call facts reconciliation needs; `from_config` reads [reconcile], [paper], [call]."""

    match_threshold: float = 78.0
    review_threshold: float = 65.0
    margin: float = 5.0
    org_floor: float = 75.0
    project_floor: float = 70.0
    org_weight: float = 0.4
    direction_penalty: float = 15.0
    check_summary: bool = True
    required_copies: int = 2
    districts: tuple[str, ...] = DEFAULT_DISTRICTS
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    # Matrices are computed on all cores; tests may pin 1 for determinism of timing, not of results.
    workers: int = -1

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        r, p = config.reconcile, config.paper
        return cls(
            match_threshold=r.match_threshold,
            review_threshold=r.review_threshold,
            margin=r.margin,
            org_floor=r.org_floor,
            project_floor=r.project_floor,
            org_weight=r.org_weight,
            direction_penalty=r.direction_penalty,
            check_summary=r.check_summary,
            required_copies=p.required_copies,
            districts=tuple(p.districts),
            tz=config.call.tz,
        )


def cutoff_of(config: Config) -> datetime:
    """The instant at or after which a hand-in is late ("17:00 前": strictly before; plus any grace)."""
    return config.call.deadline + config.call.grace_period


# -- keys ------------------------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[、,，;；/／]+")


def lead_org(name: str | None) -> str | None:
    """The first (lead) unit of a cell that lists several ("甲公司、乙公司"): that is the applicant."""
    if not name:
        return None
    parts = [p for p in _SEPARATORS.split(name) if p.strip()]
    return parts[0] if parts else None


@dataclass(frozen=True)
class Keys:
    """What matching compares: normalised organisation and project keys, direction, credit code."""

    org: str
    project: str
    form_type: str | None = None
    code: str | None = None
    trade: str = ""  # the trade name (字号): see review.names.org_trade_key
    tail: str = ""  # what follows the trade name: industry words (智能科技), or a public body's function

    @classmethod
    def of(
        cls, org_name: str | None, project_name: str | None, form_type: str | None = None, credit: str | None = None
    ) -> Keys:
        org, trade, tail = _org_keys(org_name)
        return cls(
            org,
            _project_key(project_name),
            form_type if form_type in FORM_TYPES else None,
            credit_key(credit),
            trade,
            tail,
        )


# Names repeat (one company, several projects; generic project names): keys are computed once per string.
@lru_cache(maxsize=65536)
def _org_keys(name: str | None) -> tuple[str, str, str]:
    lead = lead_org(name)
    org = org_loose_key(lead) or ""
    trade = trade_name(org) if org else ""
    tail = org[len(trade) :] if trade and org.startswith(trade) else ""
    return org, trade, tail


@lru_cache(maxsize=65536)
def _project_key(name: str | None) -> str:
    return project_key(name) or ""


def canonical_district(text: str | None, districts: Sequence[str] = DEFAULT_DISTRICTS) -> str | None:
    """The configured district a free text names ("江汉区经信局", "东湖新技术开发区", "江汉"), else None."""
    if not text:
        return None
    return _canonical_district(text, tuple(districts))


@lru_cache(maxsize=4096)
def _canonical_district(text: str, districts: tuple[str, ...]) -> str | None:
    s = normalize_name(text)
    return next((d for stem, d in _district_stems(districts) if stem in s), None)


@lru_cache(maxsize=16)
def _district_stems(districts: tuple[str, ...]) -> list[tuple[str, str]]:
    """(normalised stem, district), longest stem first: "东西湖区" before "西湖", aliases included."""
    stems: list[tuple[str, str]] = []
    for d in districts:
        names = {d, *_DISTRICT_ALIASES.get(d, ())}
        if d.endswith("区") and len(d) > 2:
            names.add(d[:-1])
        stems += [(normalize_name(n), d) for n in names if n]
    return sorted(stems, key=lambda x: -len(x[0]))


# -- the matcher -----------------------------------------------------------------------------------------

# Tails (industry words) this similar or more are the same company written two ways (信息技术 / 信息科技).
_TAIL_SIMILAR = 60
# Stand-ins for a missing name: they score 0 against everything (two empty strings would score 100).
_NO_QUERY, _NO_TARGET = "\x00", "\x01"


def _cdist(queries: list[str], targets: list[str], workers: int) -> np.ndarray:
    """``process.cdist`` of ``fuzz.ratio`` (uint8), computed once per distinct string when names repeat
    enough to pay for spreading the result back (one company's projects, generic project names)."""
    q_ids, q_uniq = _distinct(queries)
    t_ids, t_uniq = _distinct(targets)
    if len(q_uniq) * len(t_uniq) > 0.5 * len(queries) * len(targets):
        return process.cdist(queries, targets, scorer=fuzz.ratio, dtype=np.uint8, workers=workers)
    small = process.cdist(q_uniq, t_uniq, scorer=fuzz.ratio, dtype=np.uint8, workers=workers)
    return small[q_ids][:, t_ids]


def _distinct(strings: list[str]) -> tuple[np.ndarray, list[str]]:
    index: dict[str, int] = {}
    ids = np.fromiter((index.setdefault(x, len(index)) for x in strings), dtype=np.intp, count=len(strings))
    return ids, list(index)


@dataclass
class Match:
    """Where one query (paper entry or 汇总表 row) goes: a target index, or candidates, or nowhere."""

    status: str  # matched | ambiguous | orphan
    target: int | None = None
    score: float = 0.0
    how: str = ""  # credit_code | exact | fuzzy | staff
    candidates: list[tuple[int, float]] = field(default_factory=list)


class Matcher:
    """Matches queries to a fixed list of targets (applications); build once, match many."""

    def __init__(self, targets: Sequence[Keys], settings: Settings) -> None:
        self.settings = settings
        self.targets = list(targets)
        self.t_org = [k.org or _NO_TARGET for k in targets]
        self.t_trade = [k.trade or _NO_TARGET for k in targets]
        self.t_proj = [k.project or _NO_TARGET for k in targets]
        self.t_type = np.array([FORM_TYPES.index(k.form_type) if k.form_type else -1 for k in targets], dtype=np.int8)
        self.exact: dict[tuple[str, str], list[int]] = {}
        self.by_code: dict[str, list[int]] = {}
        for j, k in enumerate(targets):
            if k.org and k.project:
                self.exact.setdefault((k.org, k.project), []).append(j)
            if k.code:
                self.by_code.setdefault(k.code, []).append(j)
        # Integer weights summing to 100 (the org one even: it weighs the sum of two scores): scores stay
        # int16 (in hundredths of a point) through the matrix.
        self.w_org = 2 * round(settings.org_weight * 50)
        self.w_proj = 100 - self.w_org

    def pair_score(self, q: Keys, j: int) -> float:
        """The score one query would get against one target (shown for staff-made matches)."""
        t = self.targets[j]
        org = (
            100.0
            if q.code and q.code == t.code
            else (
                fuzz.ratio(q.org or _NO_QUERY, t.org or _NO_TARGET)
                + fuzz.ratio(q.trade or _NO_QUERY, t.trade or _NO_TARGET)
            )
            / 2
        )
        proj = fuzz.ratio(q.project or _NO_QUERY, t.project or _NO_TARGET)
        pen = self.settings.direction_penalty if q.form_type and t.form_type and q.form_type != t.form_type else 0
        return round((self.w_org * org + self.w_proj * proj) / 100 - pen, 1)

    def match(self, queries: Sequence[Keys]) -> list[Match]:
        out: list[Match | None] = [None] * len(queries)
        residual: list[int] = []
        for i, q in enumerate(queries):
            if q.code and q.code in self.by_code:
                residual.append(i)  # the credit-code path restricts candidates: done in the matrix pass
                continue
            hits = self.exact.get((q.org, q.project), [])
            if q.form_type and hits:
                hits = [j for j in hits if self.targets[j].form_type in (q.form_type, None)]
            if len(hits) == 1:
                out[i] = Match("matched", hits[0], 100.0, "exact")
            else:
                residual.append(i)
        if residual and self.targets:
            for i, m in zip(residual, self._fuzzy([queries[i] for i in residual]), strict=True):
                out[i] = m
        return [m if m is not None else Match("orphan") for m in out]

    def candidates(self, qs: Sequence[Keys]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (query, target) pair that may match, with its score in hundredths of a point:
        (rows, cols, scores), int arrays of one length.

        One dense matrix only: the whole organisation names, every query against every target
        (``process.cdist``). A pair must reach ``org_floor`` there, which leaves a handful of targets per
        query; trade names and projects are then scored for those pairs alone (``process.cpdist``).
        """
        s = self.settings
        full = _cdist([q.org or _NO_QUERY for q in qs], self.t_org, s.workers)
        code_rows: list[int] = []
        for r, q in enumerate(qs):
            if q.code and q.code in self.by_code:
                # The credit code names the organisation: only its applications are candidates, at 100.
                code_rows.append(r)
                full[r] = 0
                full[r, self.by_code[q.code]] = 100
        rows, cols = np.nonzero(full >= s.org_floor)
        f = full[rows, cols].astype(np.int32)
        del full
        r_list, c_list = rows.tolist(), cols.tolist()

        def pairwise(queries: list[str], targets: list[str]) -> Any:
            # One score per surviving (row, column) pair, not the whole matrix again.
            return process.cpdist(queries, targets, scorer=fuzz.ratio, dtype=np.int32, workers=s.workers)

        trade = pairwise([qs[r].trade or _NO_QUERY for r in r_list], [self.t_trade[c] for c in c_list])
        proj = pairwise([qs[r].project or _NO_QUERY for r in r_list], [self.t_proj[c] for c in c_list])
        if code_rows:
            trade[np.isin(rows, code_rows)] = 100
        # Organisation score: the whole name and the trade name count half each, so that two companies
        # sharing only industry words ("…网络科技") score low, and a sister company ("光谷智能科技" for
        # "光谷数字科技") does not score 100.
        score = (f + trade) * (self.w_org // 2) + proj * self.w_proj
        q_type = np.array([FORM_TYPES.index(q.form_type) if q.form_type else -1 for q in qs], dtype=np.int8)
        qt, tt = q_type[rows], self.t_type[cols]
        score -= ((qt >= 0) & (tt >= 0) & (qt != tt)) * round(s.direction_penalty * 100)
        keep = (proj >= s.project_floor) & ~self._not_the_same(qs, r_list, c_list)
        return rows[keep], cols[keep], score[keep]

    def _not_the_same(self, qs: Sequence[Keys], rows: list[int], cols: list[int]) -> np.ndarray:
        """Pairs that look alike but are two organisations: the same trade name with an entirely different
        rest (光谷智能科技 / 光谷软件: sister companies; 江汉区大数据中心 / 江汉区城市运行管理中心: two
        bodies of one district), and public bodies of two districts (江汉区… / 江岸区…: one character
        apart, not a slip). Tails are compared once per distinct pair of tails."""
        out = np.zeros(len(rows), dtype=bool)
        if not rows:
            return out
        pairs = [(qs[r], self.targets[c]) for r, c in zip(rows, cols, strict=True)]
        other_district = np.fromiter(
            (a.trade != b.trade and a.trade.endswith("区") and b.trade.endswith("区") for a, b in pairs),
            dtype=bool,
            count=len(pairs),
        )
        same_trade = [i for i, (a, b) in enumerate(pairs) if a.trade == b.trade and a.tail and b.tail]
        if same_trade:
            tails = sorted({pairs[i][0].tail for i in same_trade} | {pairs[i][1].tail for i in same_trade})
            tail_id = {t: i for i, t in enumerate(tails)}
            sim = process.cdist(tails, tails, scorer=fuzz.ratio, dtype=np.uint8)
            qi = np.array([tail_id[pairs[i][0].tail] for i in same_trade])
            ti = np.array([tail_id[pairs[i][1].tail] for i in same_trade])
            out[np.array(same_trade)[sim[qi, ti] < _TAIL_SIMILAR]] = True
        return out | other_district

    def _fuzzy(self, qs: list[Keys]) -> list[Match]:
        s = self.settings
        rows, cols, score = self.candidates(qs)
        code_rows = {r for r, q in enumerate(qs) if q.code and q.code in self.by_code}
        # Candidates grouped by query, best first (ties: the older application, i.e. the lower index).
        order = np.lexsort((cols, -score, rows))
        rows, cols, score = rows[order], cols[order], score[order]
        starts = np.searchsorted(rows, np.arange(len(qs) + 1))
        match_c, review_c, margin_c = (round(x * 100) for x in (s.match_threshold, s.review_threshold, s.margin))
        out: list[Match] = []
        for r in range(len(qs)):
            lo, hi = int(starts[r]), int(starts[r + 1])
            how = "credit_code" if r in code_rows else "fuzzy"
            if lo == hi:
                out.append(Match("orphan", None, 0.0, how))
                continue
            s1 = int(score[lo])
            s2 = int(score[lo + 1]) if hi - lo > 1 else -(2**31)
            if s1 >= match_c and s1 - s2 >= margin_c:
                out.append(Match("matched", int(cols[lo]), s1 / 100, how))
            elif s1 >= review_c:
                cand = [(int(cols[i]), int(score[i]) / 100) for i in range(lo, hi) if score[i] >= review_c][:5]
                out.append(Match("ambiguous", None, s1 / 100, how, cand))
            else:
                out.append(Match("orphan", None, 0.0, how, [(int(cols[lo]), s1 / 100)]))
        return out


# -- inputs ----------------------------------------------------------------------------------------------


@dataclass
class AppRec:
    id: int
    receipt_no: str
    form_type: str
    org_name: str | None
    project_name: str | None
    credit_code: str | None = None
    district: str | None = None

    @property
    def keys(self) -> Keys:
        return Keys.of(self.org_name, self.project_name, self.form_type, self.credit_code)


@dataclass
class EntryRec:
    id: int
    received_at: datetime
    org_name: str
    project_name: str | None
    form_type: str | None
    item: str
    copies: int
    district: str | None = None
    received_by: str | None = None
    note: str | None = None
    credit_code: str | None = None

    @property
    def subject(self) -> str:
        return f"paper:{self.id}"

    @property
    def keys(self) -> Keys:
        return Keys.of(self.org_name, self.project_name, self.form_type, self.credit_code)


@dataclass
class SummaryDoc:
    """One electronic 汇总表 (DocumentRow of kind summary) with its parsed rows."""

    id: int
    sha256: str
    filename: str
    received_at: datetime | None
    recommender: str | None
    rows: list[dict[str, Any]]


@dataclass
class RowRec:
    """One row of a 汇总表: its key is stable across replays (document content hash + row index)."""

    key: str
    doc: SummaryDoc
    index: int
    district: str | None
    section: str | None
    seq: Any
    org_name: str | None
    project_name: str | None

    @property
    def subject(self) -> str:
        return f"summary:{self.key}"

    @property
    def keys(self) -> Keys:
        return Keys.of(self.org_name, self.project_name, self.section)


@dataclass
class Override:
    action: str  # match | unmatch
    receipt_no: str | None
    user: str
    at: datetime | None = None
    reason: str = ""


@dataclass
class Inputs:
    apps: list[AppRec]
    entries: list[EntryRec]
    summaries: list[SummaryDoc]
    overrides: dict[str, Override] = field(default_factory=dict)
    # Receipt numbers of merged applications -> the receipt of the application they live on in.
    aliases: dict[str, str] = field(default_factory=dict)


# -- results ---------------------------------------------------------------------------------------------


@dataclass
class Link:
    """A paper entry's or 汇总表 row's outcome."""

    status: str  # matched | ambiguous | orphan | district (推荐意见 / 汇总表 paper entries)
    app: AppRec | None = None
    score: float = 0.0
    how: str = ""
    candidates: list[tuple[AppRec, float]] = field(default_factory=list)
    note: str = ""


@dataclass
class EntryResult:
    entry: EntryRec
    link: Link
    late: bool


@dataclass
class RowResult:
    row: RowRec
    link: Link


@dataclass
class AppResult:
    app: AppRec
    district: str | None
    paper_status: str = "missing"  # matched | missing | ambiguous | copies_short | late
    paper_score: float | None = None
    copies: int = 0
    entries: list[EntryResult] = field(default_factory=list)
    paper_candidates: list[tuple[EntryResult, float]] = field(default_factory=list)
    summary_status: str = "unknown"  # listed | ambiguous | not_listed | no_summary | unknown
    summary_rows: list[RowResult] = field(default_factory=list)
    summary_candidates: list[tuple[RowResult, float]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass
class DistrictResult:
    district: str
    summary: SummaryDoc | None = None
    superseded: list[SummaryDoc] = field(default_factory=list)
    paper_summary: list[EntryRec] = field(default_factory=list)
    paper_recommendation: list[EntryRec] = field(default_factory=list)
    applications: int = 0
    listed: int = 0


@dataclass
class Report:
    settings: Settings
    cutoff: datetime
    now: datetime
    apps: list[AppResult]
    entries: list[EntryResult]
    rows: list[RowResult]
    districts: list[DistrictResult]
    # Staff decisions that point at an application that no longer exists: matching ignored them.
    stale_overrides: list[str] = field(default_factory=list)

    def app(self, app_id: int) -> AppResult | None:
        return next((a for a in self.apps if a.app.id == app_id), None)


# -- reconciliation (pure) -------------------------------------------------------------------------------

_Subject = TypeVar("_Subject", EntryRec, RowRec)


def summary_rows(docs: Iterable[SummaryDoc], districts: Sequence[str]) -> tuple[list[RowRec], dict[str, Any]]:
    """The rows of the 汇总表 in force: per district the newest one replaces older versions (更正).

    Returns the rows and, per district, (document in force, superseded documents).
    """
    seen: set[str] = set()
    by_district: dict[str, list[SummaryDoc]] = {}
    loose: list[SummaryDoc] = []
    for d in sorted(docs, key=lambda d: (d.received_at is None, d.received_at or datetime.max.astimezone(), d.id)):
        if d.sha256 in seen:
            continue  # the same file sent twice
        seen.add(d.sha256)
        key = _doc_district(d, districts)
        if key is None:
            loose.append(d)
        else:
            by_district.setdefault(key, []).append(d)
    in_force = [(k, v[-1]) for k, v in by_district.items()] + [(None, d) for d in loose]
    rows: list[RowRec] = []
    for key, d in in_force:
        for i, r in enumerate(d.rows):
            if not isinstance(r, dict):
                continue
            rows.append(
                RowRec(
                    key=f"{d.sha256[:16]}:{i}",
                    doc=d,
                    index=i,
                    district=canonical_district(str(r.get("district") or ""), districts) or key,
                    section=r.get("section") if r.get("section") in FORM_TYPES else None,
                    seq=r.get("seq"),
                    org_name=_str(r.get("org_name")),
                    project_name=_str(r.get("project_name")),
                )
            )
    meta = {k: (v[-1], v[:-1]) for k, v in by_district.items()}
    return rows, meta


def _str(v: Any) -> str | None:
    return str(v) if v not in (None, "") else None


def _doc_district(d: SummaryDoc, districts: Sequence[str]) -> str | None:
    votes = Counter(
        c for r in d.rows if isinstance(r, dict) and (c := canonical_district(str(r.get("district") or ""), districts))
    )
    if votes:
        return votes.most_common(1)[0][0]
    return canonical_district(d.recommender, districts) or canonical_district(d.filename, districts)


def reconcile(
    inputs: Inputs,
    settings: Settings,
    cutoff: datetime,
    now: datetime | None = None,
    *,
    focus: Collection[int] | None = None,
) -> Report:
    """Match everything and derive, per application, its paper and summary status and problems.

    `focus`: the ids of the applications the caller needs (a recheck of a few): only the entries and
    汇总表 rows that could concern them are matched — against every application, so each outcome is the
    one a full run gives — and the report holds those applications only.
    """
    now = now or utcnow()
    apps = inputs.apps
    by_receipt = {a.receipt_no: a for a in apps}
    index_of = {a.id: i for i, a in enumerate(apps)}
    matcher = Matcher([a.keys for a in apps], settings)
    stale: list[str] = []

    def resolve(receipt: str | None) -> AppRec | None:
        seen = set()
        while receipt and receipt not in by_receipt and receipt in inputs.aliases and receipt not in seen:
            seen.add(receipt)
            receipt = inputs.aliases[receipt]
        return by_receipt.get(receipt) if receipt else None

    def links(subjects: list[str], keys: list[Keys]) -> list[Link]:
        out: list[Link | None] = [None] * len(subjects)
        auto: list[int] = []
        for i, subj in enumerate(subjects):
            o = inputs.overrides.get(subj)
            if o is None:
                auto.append(i)
            elif o.action == "unmatch":
                out[i] = Link("orphan", how="staff", note=f"{o.user} 确认无对应申报")
            else:
                target = resolve(o.receipt_no)
                if target is None:
                    stale.append(f"{subj} → {o.receipt_no}")
                    auto.append(i)
                    continue
                score = matcher.pair_score(keys[i], index_of[target.id])
                out[i] = Link("matched", target, score, "staff", note=f"{o.user} 确认")
        for i, m in zip(auto, matcher.match([keys[i] for i in auto]), strict=True):
            out[i] = Link(
                m.status,
                apps[m.target] if m.target is not None else None,
                m.score,
                m.how,
                [(apps[j], sc) for j, sc in m.candidates],
            )
        return [x if x is not None else Link("orphan") for x in out]

    # Paper: only 申报书 entries belong to an application; 推荐意见 and 汇总表 belong to a district.
    forms = [e for e in inputs.entries if e.item == "form"]
    rows, meta = summary_rows(inputs.summaries, settings.districts)
    if focus is not None:
        near = Matcher([a.keys for a in apps if a.id in focus], settings)
        forms = _concerning(near, forms, inputs.overrides)
        rows = _concerning(near, rows, inputs.overrides)
    entry_links = dict(
        zip((e.id for e in forms), links([e.subject for e in forms], [e.keys for e in forms]), strict=True)
    )
    entries = [
        EntryResult(e, entry_links[e.id] if e.item == "form" else Link("district"), late=e.received_at >= cutoff)
        for e in inputs.entries
        if e.item != "form" or e.id in entry_links
    ]

    row_results = [
        RowResult(r, lk) for r, lk in zip(rows, links([r.subject for r in rows], [r.keys for r in rows]), strict=True)
    ]

    results = {
        a.id: AppResult(a, canonical_district(a.district, settings.districts))
        for a in apps
        if focus is None or a.id in focus
    }
    for er in entries:
        lk = er.link
        if lk.status == "matched" and lk.app is not None and lk.app.id in results:
            results[lk.app.id].entries.append(er)
        elif lk.status == "ambiguous":
            for a, sc in lk.candidates:
                if a.id in results:
                    results[a.id].paper_candidates.append((er, sc))
    for rr in row_results:
        lk = rr.link
        if lk.status == "matched" and lk.app is not None and lk.app.id in results:
            results[lk.app.id].summary_rows.append(rr)
        elif lk.status == "ambiguous":
            for a, sc in lk.candidates:
                if a.id in results:
                    results[a.id].summary_candidates.append((rr, sc))

    for res in results.values():
        if res.district is None:
            # Not in the form's address: the district the paper was logged under.
            res.district = next(
                (d for er in res.entries if (d := canonical_district(er.entry.district, settings.districts))), None
            )
        _paper_status(res, settings, cutoff)
        _summary_status(res, meta)
        res.problems = _problems(res, settings, cutoff, now, meta)

    districts = _districts(inputs.entries, meta, list(results.values()), settings)
    return Report(settings, cutoff, now, list(results.values()), entries, row_results, districts, stale)


def _concerning(near: Matcher, items: list[_Subject], overrides: dict[str, Override]) -> list[_Subject]:
    """The entries (or rows) with a candidate among `near`'s applications, or with a staff decision."""
    hit: set[int] = set()
    if items and near.targets:
        cand_rows, _cols, _scores = near.candidates([x.keys for x in items])
        hit = set(cand_rows.tolist())
    return [x for i, x in enumerate(items) if i in hit or x.subject in overrides]


def _paper_status(res: AppResult, settings: Settings, cutoff: datetime) -> None:
    if not res.entries:
        res.paper_status = "ambiguous" if res.paper_candidates else "missing"
        return
    on_time = [er for er in res.entries if not er.late]
    counted = on_time or res.entries
    res.copies = sum(er.entry.copies for er in counted)
    res.paper_score = min(er.link.score for er in res.entries)
    if not on_time:
        res.paper_status = "late"
    elif res.copies < settings.required_copies:
        res.paper_status = "copies_short"
    else:
        res.paper_status = "matched"


def _summary_status(res: AppResult, meta: dict[str, Any]) -> None:
    if res.summary_rows:
        res.summary_status = "listed"
    elif res.summary_candidates:
        res.summary_status = "ambiguous"
    elif res.district is None:
        res.summary_status = "unknown"
    elif res.district in meta:
        res.summary_status = "not_listed"
    else:
        res.summary_status = "no_summary"


def _local(dt: datetime | None, tz: ZoneInfo) -> str:
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M") if dt else "未知"


def _problems(
    res: AppResult, settings: Settings, cutoff: datetime, now: datetime, meta: dict[str, Any]
) -> list[Problem]:
    tz = settings.tz
    out: list[Problem] = []
    need = settings.required_copies
    if res.paper_status == "missing":
        before = now < cutoff
        out.append(
            Problem(
                "paper_missing",
                Severity.warning if before else Severity.error,
                f"未登记纸质申报书（应于 {_local(cutoff, tz)} 前送达 213 室，一式{need}份）"
                if before
                else f"截止时间 {_local(cutoff, tz)} 前未登记纸质申报书",
            )
        )
    elif res.paper_status == "ambiguous":
        # The paper is probably there: staff must say which entry is this application's. A warning, since
        # an unconfirmed match is our uncertainty, not the applicant's fault.
        cands = "；".join(
            f"登记#{er.entry.id} {er.entry.org_name}《{er.entry.project_name or ''}》（匹配度 {sc:.0f}）"
            for er, sc in res.paper_candidates[:3]
        )
        out.append(Problem("paper_missing", Severity.warning, f"纸质登记待人工确认，疑似条目：{cands}"))
    else:
        late = [er for er in res.entries if er.late]
        if res.paper_status == "late":
            first = min(er.entry.received_at for er in late)
            out.append(
                Problem(
                    "late",
                    Severity.error,
                    f"{PAPER_LATE_PREFIX}于 {_local(first, tz)} 送达，晚于截止时间 {_local(cutoff, tz)}",
                )
            )
        if res.copies < need:
            extra = (
                f"（另有 {sum(er.entry.copies for er in late)} 份逾期送达）"
                if late and res.paper_status != "late"
                else ""
            )
            out.append(
                Problem(
                    "paper_copies_short", Severity.warning, f"纸质申报书登记 {res.copies} 份，应为一式{need}份{extra}"
                )
            )
    if settings.check_summary and res.summary_status != "listed":
        d = res.district
        if res.summary_status == "ambiguous":
            cands = "；".join(
                f"{rr.row.district or ''}汇总表第{rr.row.seq or rr.row.index + 1}行 {rr.row.org_name or ''}"
                f"《{rr.row.project_name or ''}》（匹配度 {sc:.0f}）"
                for rr, sc in res.summary_candidates[:3]
            )
            detail = f"汇总表中的疑似条目待人工确认：{cands}"
        elif res.summary_status == "not_listed" and d is not None:
            detail = f"{d}汇总表（{meta[d][0].filename}）未列出本项目"
        elif res.summary_status == "no_summary" and d is not None:
            detail = f"所在区（{d}）尚未报送汇总表"
        else:
            detail = "所在区不明，且未在任何区（单位）汇总表中找到本项目"
        out.append(Problem("not_in_summary", Severity.warning, detail))
    return out


def _districts(
    entries: list[EntryRec], meta: dict[str, Any], apps: list[AppResult], settings: Settings
) -> list[DistrictResult]:
    out: dict[str, DistrictResult] = {}

    def get(name: str) -> DistrictResult:
        return out.setdefault(name, DistrictResult(name))

    for name, (doc, older) in meta.items():
        dr = get(name)
        dr.summary, dr.superseded = doc, list(older)
    for e in entries:
        if e.item == "form":
            continue
        found = canonical_district(e.district, settings.districts) or canonical_district(e.org_name, settings.districts)
        dr = get(found or e.district or e.org_name)
        (dr.paper_summary if e.item == "summary" else dr.paper_recommendation).append(e)
    for a in apps:
        if a.district:
            dr = get(a.district)
            dr.applications += 1
            dr.listed += a.summary_status == "listed"
    order = {d: i for i, d in enumerate(settings.districts)}
    return sorted(out.values(), key=lambda d: (order.get(d.district, len(order)), d.district))


# -- the database side -----------------------------------------------------------------------------------


def load_inputs(session: Session, settings: Settings, app_rows: Iterable[Application] = ()) -> Inputs:
    """Live applications, paper entries, 汇总表 documents and staff overrides from the store.

    `app_rows` (already flushed, with ids) take precedence over what the database holds for the same ids:
    a recheck passes the rows it is about to write.
    """
    fresh = {r.id: r for r in app_rows if r.id is not None}
    conn = session.connection()
    apps: list[AppRec] = []
    aliases: dict[str, str] = {}
    receipt_by_id: dict[int, str] = {}
    merged: list[tuple[str, int]] = []
    for r in conn.execute(
        sa_select(
            *_columns(
                Application,
                "id",
                "receipt_no",
                "form_type",
                "org_name",
                "project_name",
                "credit_code",
                "district",
                "status",
                "merged_into",
            )
        )
    ):
        row = fresh.get(r.id)
        status, merged_into = (row.status, row.merged_into) if row is not None else (r.status, r.merged_into)
        receipt_by_id[r.id] = r.receipt_no
        if status == "merged" or merged_into is not None:
            if merged_into is not None:
                merged.append((r.receipt_no, merged_into))
            continue
        if row is not None:
            apps.append(
                AppRec(
                    r.id, row.receipt_no, row.form_type, row.org_name, row.project_name, row.credit_code, row.district
                )
            )
        else:
            apps.append(AppRec(r.id, r.receipt_no, r.form_type, r.org_name, r.project_name, r.credit_code, r.district))
    for receipt, target in merged:
        if target in receipt_by_id:
            aliases[receipt] = receipt_by_id[target]
    apps.sort(key=lambda a: a.id)

    entries = [
        EntryRec(
            e.id,
            e.received_at if e.received_at.tzinfo else e.received_at.replace(tzinfo=UTC),
            e.org_name,
            e.project_name,
            e.form_type,
            e.item,
            e.copies,
            e.district,
            e.received_by,
            e.note,
            e.credit_code,
        )
        for e in conn.execute(
            sa_select(*_columns(PaperEntry, *_ENTRY_COLUMNS))
            .where(col(PaperEntry.deleted).is_(False))
            .order_by(col(PaperEntry.id))
        )
    ]
    summaries = [
        SummaryDoc(
            d.id,
            d.sha256,
            d.filename,
            d.received_at,
            _str((d.fields or {}).get("recommender")),
            list((d.fields or {}).get("rows") or []),
        )
        for d in conn.execute(
            sa_select(*_columns(DocumentRow, "id", "sha256", "filename", "received_at", "fields"))
            .where(col(DocumentRow.kind) == "summary")
            .order_by(col(DocumentRow.id))
        )
    ]
    return Inputs(apps, entries, summaries, load_overrides(session), aliases)


_ENTRY_COLUMNS = (
    "id", "received_at", "org_name", "project_name", "form_type", "item", "copies", "district", "received_by",
    "note", "credit_code",
)  # fmt: skip


def _columns(model: Any, *names: str) -> list[Any]:
    # Core selects of a few columns: loading whole sqlmodel objects costs ~1 ms each (pydantic).
    return [model.__table__.c[n] for n in names]


def load_overrides(session: Session) -> dict[str, Override]:
    """The staff decision in force per subject (the newest row; `clear` removes it)."""
    out: dict[str, Override] = {}
    for o in session.exec(select(ReconcileOverride).order_by(col(ReconcileOverride.id))):
        if o.action == "clear":
            out.pop(o.subject, None)
        else:
            out[o.subject] = Override(o.action, o.receipt_no, o.user, o.created_at, o.reason)
    return out


def run(
    session: Session,
    settings: Settings,
    cutoff: datetime,
    now: datetime | None = None,
    app_rows: Iterable[Application] = (),
) -> Report:
    """Reconcile what the store holds now."""
    return reconcile(load_inputs(session, settings, app_rows), settings, cutoff, now)


def paper_problems(
    session: Session,
    app_rows: Sequence[Application],
    now: datetime,
    deadline: datetime,
    settings: Settings | None = None,
) -> dict[int, list[Problem]]:
    """The reconciliation problems of `app_rows` (flushed, with ids): paper_missing, paper_copies_short,
    not_in_summary and a paper `late`. `deadline` is the instant from which a hand-in is late (the
    configured deadline plus any grace: CheckContext.cutoff). Matching runs over all live applications,
    since whether an entry is ambiguous depends on the others."""
    inputs = load_inputs(session, settings or Settings(), app_rows)
    wanted = {r.id for r in app_rows if r.id is not None}
    # A recheck touches a few applications: match only what could concern them (the result is the same).
    focus = wanted if len(wanted) * 4 <= len(inputs.apps) else None
    report = reconcile(inputs, settings or Settings(), deadline, now, focus=focus)
    return {a.app.id: a.problems for a in report.apps if a.app.id in wanted}


def problem_source(session: Session, config: Config, rows: list[Application]) -> dict[int, list[Problem]]:
    """review.service's ProblemSource: what a regroup adds to the applications it rechecks."""
    if not rows:
        return {}
    return paper_problems(session, rows, utcnow(), cutoff_of(config), Settings.from_config(config))


# The configuration hooks run under (thresholds, deadline): set by `configure`, else read the way the CLI
# command running now was told (--config / --db), else the built-in defaults (the shipped config.toml).
_CONFIGURED: list[Config] = []


def configure(config: Config | None) -> None:
    """Tell the export hook which configuration to reconcile under (None: back to finding it)."""
    _CONFIGURED[:] = [config] if config is not None else []


def _active_config() -> Config | None:
    if _CONFIGURED:
        return _CONFIGURED[0]
    try:
        import click

        ctx = click.get_current_context(silent=True)
    except ImportError:
        return None
    if ctx is None or "config" not in ctx.params:
        return None
    from intake.cli import _config

    try:
        return _config(ctx.params["config"], ctx.params.get("db"))
    except Exception:  # the command itself has loaded it already; never fail an export over this
        log.warning("reconciliation: cannot read %s, using defaults", ctx.params["config"], exc_info=True)
        return None


def export_section(session: Session, rows: Sequence[Any]) -> dict[int, dict[str, Any]]:
    """review.exports' `paper` section hook: {application id: {status, entries, ...}}."""
    return paper_for(session, [r.id for r in rows if r.id is not None], config=_active_config())


def register_export_section() -> None:
    """Fill the `paper` section of `intake export` (review.exports) from reconciliation. Called by the CLI
    at start-up (intake/commands/paper.py); importing this module registers nothing by itself."""
    from review.exports import register_section

    register_section("paper", export_section)


def register_problem_source() -> None:
    """Make every regroup add the reconciliation problems to the applications it rechecks (review.service).

    Not done by the CLI yet: the applications area decides when rechecks start to consult the paper log
    (after the deadline, every application without a logged paper copy becomes incomplete).
    """
    from review.service import register_problem_source as register

    register(problem_source)


def paper_for(
    session: Session,
    application_ids: Iterable[int],
    *,
    config: Config | None = None,
    settings: Settings | None = None,
    deadline: datetime | None = None,
    now: datetime | None = None,
) -> dict[int, dict[str, Any]]:
    """The `paper` object of the JSON export for each application id: {status, entries, ...} (SPEC 9).

    Pass `config` (or `settings` and `deadline`, the late cutoff); ids not found (merged, unknown) are absent.
    """
    if config is not None:
        settings = settings or Settings.from_config(config)
        deadline = deadline or cutoff_of(config)
    settings = settings or Settings()
    if deadline is None:
        from intake.config import CallConfig

        deadline = CallConfig().deadline
    report = run(session, settings, deadline, now)
    wanted = set(application_ids)
    return {a.app.id: app_paper_json(a, settings.tz) for a in report.apps if a.app.id in wanted}


def is_own_problem(p: dict[str, Any]) -> bool:
    """Whether a stored problem came from reconciliation (and is replaced by the next one)."""
    return p.get("code") in OWN_CODES or (
        p.get("code") == "late" and str(p.get("detail") or "").startswith(PAPER_LATE_PREFIX)
    )


def apply(session: Session, config: Config, now: datetime | None = None) -> tuple[Report, int]:
    """Reconcile and write the problems (and the status they imply) onto every live application.

    Returns the report and how many applications changed. Other problems are kept as they are.
    """
    from review.status import status_of
    from store.models import Decision

    settings = Settings.from_config(config)
    now = now or utcnow()
    report = run(session, settings, cutoff_of(config), now)
    ids = [a.app.id for a in report.apps]
    rows = {r.id: r for r in _chunked(session, ids)}
    decisions: dict[int, list[Decision]] = {}
    for i in range(0, len(ids), 900):
        for d in session.exec(select(Decision).where(col(Decision.application_pk).in_(ids[i : i + 900]))):
            decisions.setdefault(d.application_pk, []).append(d)
    changed = 0
    for res in report.apps:
        row = rows.get(res.app.id)
        if row is None:
            continue
        problems = [p for p in row.problems if not is_own_problem(p)] + [p.as_dict() for p in res.problems]
        status = status_of(problems, decisions.get(res.app.id, []))
        if problems != row.problems or status != row.status:
            row.problems, row.status, row.late = problems, status, status == "late"
            row.updated_at = now
            session.add(row)
            changed += 1
    session.flush()
    return report, changed


def _chunked(session: Session, ids: list[int]) -> list[Application]:
    out: list[Application] = []
    for i in range(0, len(ids), 900):
        out += session.exec(select(Application).where(col(Application.id).in_(ids[i : i + 900]))).all()
    return out


# -- staff decisions -------------------------------------------------------------------------------------


def set_override(
    session: Session, subject: str, action: str, user: str, *, receipt_no: str | None = None, reason: str = ""
) -> ReconcileOverride:
    """Record a staff decision on a paper entry or 汇总表 row, with an AuditEvent; it survives re-runs.

    action: "match" (to receipt_no), "unmatch" (belongs to no application), "clear" (automatic again).
    """
    if action not in ("match", "unmatch", "clear"):
        raise ValueError(f"unknown action {action!r}: use match, unmatch or clear")
    if not re.fullmatch(r"paper:\d+|summary:[0-9a-f]{16}:\d+", subject):
        raise ValueError(f"{subject!r} is not a paper entry (paper:12) or a 汇总表 row (summary:<key>)")
    if action == "match":
        if not receipt_no:
            raise ValueError("match needs a receipt number")
        if session.exec(select(Application).where(Application.receipt_no == receipt_no)).first() is None:
            raise LookupError(f"no application {receipt_no}")
    else:
        receipt_no = None
    if subject.startswith("paper:"):
        entry = session.get(PaperEntry, int(subject.split(":")[1]))
        if entry is None or entry.deleted:
            raise LookupError(f"no paper entry {subject.split(':')[1]}")
    previous = load_overrides(session).get(subject)
    row = ReconcileOverride(subject=subject, action=action, receipt_no=receipt_no, user=user, reason=reason)
    session.add(row)
    session.add(
        AuditEvent(
            user=user,
            action=f"reconcile.{action}",
            target=subject,
            detail={
                "receipt_no": receipt_no,
                "reason": reason,
                "previous": {"action": previous.action, "receipt_no": previous.receipt_no} if previous else None,
            },
        )
    )
    session.flush()
    return row


# -- JSON ------------------------------------------------------------------------------------------------


def _iso(dt: datetime | None, tz: ZoneInfo) -> str | None:
    return dt.astimezone(tz).isoformat() if dt else None


def entry_json(e: EntryRec, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "id": e.id,
        "received_at": _iso(e.received_at, tz),
        "org_name": e.org_name,
        "project_name": e.project_name,
        "form_type": e.form_type,
        "item": e.item,
        "copies": e.copies,
        "district": e.district,
        "received_by": e.received_by,
        "note": e.note,
    }


def _app_ref(a: AppRec, score: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id,
        "receipt_no": a.receipt_no,
        "form_type": a.form_type,
        "org_name": a.org_name,
        "project_name": a.project_name,
    }
    if score is not None:
        out["score"] = score
    return out


def _row_json(rr: RowResult) -> dict[str, Any]:
    r = rr.row
    return {
        "key": r.key,
        "document": {"id": r.doc.id, "filename": r.doc.filename},
        "district": r.district,
        "section": r.section,
        "seq": r.seq,
        "org_name": r.org_name,
        "project_name": r.project_name,
    }


def app_paper_json(a: AppResult, tz: ZoneInfo) -> dict[str, Any]:
    """The export's `paper` object: status and entries (SPEC 9), plus score, copies, candidates, summary."""
    return {
        "status": a.paper_status,
        "score": a.paper_score,
        "copies": a.copies,
        "entries": [
            {**entry_json(er.entry, tz), "late": er.late, "score": er.link.score, "matched_by": er.link.how}
            for er in a.entries
        ],
        "candidates": [{**entry_json(er.entry, tz), "score": sc} for er, sc in a.paper_candidates],
        "summary": {
            "status": a.summary_status,
            "district": a.district,
            "rows": [{**_row_json(rr), "score": rr.link.score, "matched_by": rr.link.how} for rr in a.summary_rows],
            "candidates": [{**_row_json(rr), "score": sc} for rr, sc in a.summary_candidates],
        },
    }


def _link_json(lk: Link) -> dict[str, Any]:
    return {
        "status": lk.status,
        "application": _app_ref(lk.app) if lk.app else None,
        "score": lk.score if lk.status == "matched" else None,
        "matched_by": lk.how or None,
        "candidates": [_app_ref(a, sc) for a, sc in lk.candidates] if lk.status != "matched" else [],
        "note": lk.note or None,
    }


def report_json(report: Report) -> dict[str, Any]:
    """The `intake reconcile --format json` document."""
    tz = report.settings.tz
    s = report.settings
    apps = [
        {
            **_app_ref(a.app),
            "district": a.district,
            "paper": app_paper_json(a, tz),
            "problems": [p.as_dict() for p in a.problems],
        }
        for a in report.apps
    ]
    entries = [
        {**entry_json(er.entry, tz), "subject": er.entry.subject, "late": er.late, **_link_json(er.link)}
        for er in report.entries
    ]
    rows = [{**_row_json(rr), "subject": rr.row.subject, **_link_json(rr.link)} for rr in report.rows]
    districts = [
        {
            "district": d.district,
            "summary": {
                "id": d.summary.id,
                "filename": d.summary.filename,
                "received_at": _iso(d.summary.received_at, tz),
                "rows": len(d.summary.rows),
            }
            if d.summary
            else None,
            "superseded": [{"id": x.id, "filename": x.filename} for x in d.superseded],
            "paper_summary_copies": sum(e.copies for e in d.paper_summary),
            "paper_recommendation_copies": sum(e.copies for e in d.paper_recommendation),
            "applications": d.applications,
            "listed": d.listed,
        }
        for d in report.districts
    ]
    paper_counts = Counter(a.paper_status for a in report.apps)
    summary_counts = Counter(a.summary_status for a in report.apps)
    return {
        "generated_at": _iso(report.now, tz),
        "deadline": _iso(report.cutoff, tz),
        "thresholds": {
            "match": s.match_threshold,
            "review": s.review_threshold,
            "margin": s.margin,
            "org_floor": s.org_floor,
            "project_floor": s.project_floor,
            "org_weight": s.org_weight,
            "direction_penalty": s.direction_penalty,
            "required_copies": s.required_copies,
        },
        "counts": {
            "applications": len(report.apps),
            "paper": dict(sorted(paper_counts.items())),
            "summary": dict(sorted(summary_counts.items())),
            "paper_entries": dict(sorted(Counter(er.link.status for er in report.entries).items())),
            "summary_rows": dict(sorted(Counter(rr.link.status for rr in report.rows).items())),
        },
        "applications": apps,
        "paper_entries": entries,
        "summary_rows": rows,
        "districts": districts,
        "stale_overrides": report.stale_overrides,
    }


__all__ = [
    "AppRec",
    "EntryRec",
    "Inputs",
    "Keys",
    "Matcher",
    "Report",
    "Settings",
    "SummaryDoc",
    "apply",
    "canonical_district",
    "paper_for",
    "paper_problems",
    "problem_source",
    "reconcile",
    "report_json",
    "run",
    "set_override",
]
