"""Generate applications, paper logs and 汇总表 rows with realistic name variants, and the true matches.

Organisation names come from tests/formgen (company short names of the Company-Names-Corpus, Apache-2.0,
plus industry words and legal forms), so distinct companies often share a short name ("光谷智能科技" and
"光谷数字科技") and many projects share a name ("城市治理人工智能公共服务平台") — the hard cases of real
logs. Variants are what staff and districts actually write: full/half-width brackets, （武汉） moved,
legal forms swapped or dropped, city prefixes, spaces and line breaks, 《》, "项目", and typos made the way
a pinyin IME makes them (a homophone picked), or a character dropped, doubled or swapped.

    season = make_season(500, seed=1)
    season.apps, season.entries, season.truth   # truth: entry id -> application id | None (orphan)
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from parsers.types import Kind
from review.names import org_key, org_loose_key, project_key
from tests import formgen

CST = timezone(timedelta(hours=8))
DEADLINE = datetime(2026, 7, 7, 17, 0, tzinfo=CST)
FORM_TYPES = ("scenario", "model", "platform", "terminal")
_KIND = {
    "scenario": Kind.form_scenario,
    "model": Kind.form_model,
    "platform": Kind.form_platform,
    "terminal": Kind.form_terminal,
}
DIRECTION_LABEL = {
    "scenario": "典型应用场景",
    "model": "模型和智能体",
    "platform": "公共服务平台",
    "terminal": "智能终端产品",
}

# Pinyin-IME confusions seen in hand-typed Chinese: the same syllable, another character.
HOMOPHONES = {
    "智": "志制", "技": "记计", "科": "可", "信": "新心", "息": "系", "数": "书", "据": "剧", "慧": "惠汇",
    "城": "成", "市": "事", "网": "往", "络": "落", "台": "太", "管": "馆", "治": "制", "理": "里", "安": "按",
    "防": "房", "监": "检", "测": "侧", "控": "空", "通": "同", "统": "通", "预": "遇", "警": "景", "平": "评",
    "应": "映", "用": "拥", "武": "五", "汉": "汗", "电": "点", "子": "紫", "件": "建", "机": "基", "器": "气",
    "联": "连", "云": "运", "大": "达", "模": "摸", "型": "形", "体": "题", "巡": "寻", "检": "简", "视": "试",
    "识": "视", "别": "别", "能": "嫩", "源": "原", "公": "工", "司": "思", "限": "线", "发": "法", "展": "站",
    "中": "钟", "心": "新", "务": "物", "服": "福", "共": "供", "资": "咨", "工": "公", "程": "成", "路": "录",
    "交": "教", "全": "权", "运": "云", "行": "型", "研": "言", "究": "就", "院": "远", "图": "途", "像": "相",
}  # fmt: skip


@dataclass
class GenApp:
    id: int
    receipt_no: str
    form_type: str
    org_name: str
    project_name: str
    credit_code: str
    district: str


@dataclass
class GenEntry:
    id: int
    received_at: datetime
    org_name: str
    project_name: str | None
    form_type: str | None
    item: str
    copies: int
    district: str | None
    received_by: str = "张敏"
    note: str | None = None
    credit_code: str | None = None


@dataclass
class GenRow:
    """A 汇总表 row (the parsed fields of SPEC 3) and the application it lists (None: never emailed)."""

    fields: dict[str, object]
    app_id: int | None


@dataclass
class Season:
    apps: list[GenApp]
    entries: list[GenEntry]
    truth: dict[int, int | None]  # paper entry id -> application id (None: no electronic application)
    summaries: dict[str, list[GenRow]] = field(default_factory=dict)  # district -> rows


# -- applications ----------------------------------------------------------------------------------------


def _project(rng: random.Random, form_type: str) -> str:
    return formgen.project_name(rng, _KIND[form_type])


def make_apps(n: int, seed: int = 0, *, first_id: int = 1) -> list[GenApp]:
    """`n` applications of distinct companies (a fifth of them with a second project, some in two
    directions), unique organisation keys as a company register guarantees."""
    rng = random.Random(f"apps:{seed}")
    apps: list[GenApp] = []
    orgs: set[str] = set()
    counters = dict.fromkeys(FORM_TYPES, 0)

    def add(org: str, code: str, district: str, form_type: str, project: str) -> None:
        counters[form_type] += 1
        letter = {"scenario": "S", "model": "M", "platform": "P", "terminal": "T"}[form_type]
        apps.append(
            GenApp(
                first_id + len(apps),
                f"AI2026-{letter}-{counters[form_type]:04d}",
                form_type,
                org,
                project,
                code,
                district,
            )
        )

    while len(apps) < n:
        org = formgen.org_name(rng)
        # Registered names are unique up to region and legal form ("湖北X科技" and "湖北省X科技" are one).
        key = org_loose_key(org)
        if not key or key in orgs:
            continue
        orgs.add(key)
        code = formgen.credit_code(rng)
        district = rng.choice(formgen.DISTRICTS)
        form_type = rng.choice(FORM_TYPES)
        project = _project(rng, form_type)
        add(org, code, district, form_type, project)
        roll = rng.random()
        if roll < 0.15 and len(apps) < n:
            # A second project of the same company, in any direction.
            ft = rng.choice(FORM_TYPES)
            p2 = _project(rng, ft)
            if project_key(p2) != project_key(project):
                add(org, code, district, ft, p2)
        elif roll < 0.18 and len(apps) < n:
            # The same project submitted in a second direction (duplicate_direction): only 方向 tells them apart.
            ft = rng.choice([f for f in FORM_TYPES if f != form_type])
            add(org, code, district, ft, project)
    return apps


# -- variants --------------------------------------------------------------------------------------------


def typo(s: str, rng: random.Random) -> str:
    """One hand-typing slip: a homophone, or a character dropped, doubled or swapped with its neighbour."""
    idx = [i for i, c in enumerate(s) if "\u4e00" <= c <= "\u9fff"]
    if len(idx) < 4:
        return s
    homs = [i for i in idx if s[i] in HOMOPHONES]
    roll = rng.random()
    if homs and roll < 0.55:
        i = rng.choice(homs)
        return s[:i] + rng.choice(HOMOPHONES[s[i]]) + s[i + 1 :]
    i = rng.choice(idx[1:-1])
    if roll < 0.75:
        return s[:i] + s[i + 1 :]
    if roll < 0.88:
        return s[:i] + s[i] + s[i:]
    return s[:i] + s[i + 1] + s[i] + s[i + 2 :] if i + 1 < len(s) else s


_LEGAL = ("股份有限公司", "有限责任公司", "有限公司")


def org_variant(name: str, rng: random.Random, *, typos: int = 0) -> str:
    """How a name is written elsewhere: the normalisation-level variants review.names folds, then typos."""
    s = name
    for suffix in _LEGAL:
        if s.endswith(suffix):
            r = rng.random()
            if r < 0.25:
                s = s[: -len(suffix)] + rng.choice([x for x in _LEGAL if x != suffix])
            elif r < 0.33:
                s = s[: -len(suffix)] + "公司"
            break
    if "（武汉）" in s and rng.random() < 0.5:
        s = "武汉" + s.replace("（武汉）", "")
    elif s.startswith("武汉市") and rng.random() < 0.4:
        s = s[3:]
    elif s.startswith("武汉") and not s.startswith("武汉市") and rng.random() < 0.3:
        s = "武汉市" + s[2:]
    if rng.random() < 0.2:
        s = s.replace("（", "(").replace("）", ")")
    if rng.random() < 0.1:
        i = rng.randrange(1, len(s))
        s = s[:i] + rng.choice((" ", "\n", "　")) + s[i:]
    for _ in range(typos):
        s = typo(s, rng)
    return s


def project_variant(name: str, rng: random.Random, *, typos: int = 0) -> str:
    s = name
    r = rng.random()
    if r < 0.15:
        s = f"《{s}》"
    elif r < 0.22:
        s = s + "（更正版）"
    elif r < 0.27:
        s = s.replace("基于", "", 1) if s.startswith("基于") else s
    if rng.random() < 0.08:
        i = rng.randrange(1, len(s))
        s = s[:i] + " " + s[i:]
    for _ in range(typos):
        s = typo(s, rng)
    return s


# -- the paper log ---------------------------------------------------------------------------------------


def _time(rng: random.Random, late: bool = False) -> datetime:
    if late:
        return DEADLINE + timedelta(minutes=rng.randint(0, 90))
    return DEADLINE - timedelta(days=rng.randint(0, 6), minutes=rng.randint(1, 600))


def make_season(
    n_apps: int,
    seed: int = 0,
    *,
    coverage: float = 0.92,
    orphans: float = 0.04,
    typo_rate: float = 0.35,
    double_typo_rate: float = 0.04,
    with_direction: float = 0.8,
) -> Season:
    """Applications and a paper log: most applications handed in (some in two entries of 1 copy), a few
    with one copy or late, entries of companies that never emailed (orphans), name variants and typos."""
    rng = random.Random(f"season:{seed}")
    apps = make_apps(n_apps, seed)
    entries: list[GenEntry] = []
    truth: dict[int, int | None] = {}

    def entry(app: GenApp | None, org: str, project: str, ft: str | None, copies: int, late: bool = False) -> None:
        e = GenEntry(
            id=len(entries) + 1,
            received_at=_time(rng, late),
            org_name=org,
            project_name=project,
            form_type=ft,
            item="form",
            copies=copies,
            district=app.district if app and rng.random() < 0.8 else None,
            received_by=rng.choice(("张敏", "李静", "王磊")),
        )
        entries.append(e)
        truth[e.id] = app.id if app else None

    org_typo_rate = typo_rate * 0.5
    # The same project in two directions: only the 方向 column tells the hand-ins apart, and staff see it
    # on the cover of the paper form, so the log always has it for those.
    twins = Counter((org_key(a.org_name), project_key(a.project_name)) for a in apps)
    for app in apps:
        if rng.random() > coverage:
            continue
        both = rng.random() < double_typo_rate
        org_typos = 1 if both or rng.random() < org_typo_rate else 0
        proj_typos = 1 if both or rng.random() < typo_rate else 0
        twin = twins[(org_key(app.org_name), project_key(app.project_name))] > 1
        ft = app.form_type if twin or rng.random() < with_direction else None
        org = org_variant(app.org_name, rng, typos=org_typos)
        proj = project_variant(app.project_name, rng, typos=proj_typos)
        if rng.random() < 0.08:
            # Two hand-ins of one copy each, logged separately (the second one written differently).
            entry(app, org, proj, ft, 1)
            entry(app, org_variant(app.org_name, rng), project_variant(app.project_name, rng), ft, 1)
        else:
            entry(app, org, proj, ft, 1 if rng.random() < 0.05 else 2, late=rng.random() < 0.02)
    known = {org_loose_key(a.org_name) for a in apps}
    n_orphans = round(orphans * n_apps)
    while n_orphans > 0:
        org = formgen.org_name(rng)
        if org_loose_key(org) in known:
            continue
        ft = rng.choice(FORM_TYPES)
        entry(None, org, _project(rng, ft), ft if rng.random() < with_direction else None, 2)
        n_orphans -= 1
    order = list(range(len(entries)))
    rng.shuffle(order)
    # Entries are logged in arrival order: ids follow a shuffled order, truth follows the ids.
    shuffled: list[GenEntry] = []
    new_truth: dict[int, int | None] = {}
    for new_id, old in enumerate(order, 1):
        e = entries[old]
        new_truth[new_id] = truth[e.id]
        e.id = new_id
        shuffled.append(e)
    return Season(apps, shuffled, new_truth)


def summary_for(
    apps: list[GenApp],
    district: str,
    rng: random.Random,
    *,
    skip: set[int] = frozenset(),
    extra: int = 0,  # type: ignore[assignment]
) -> list[GenRow]:
    """The 汇总表 rows a district sends: its applications (minus `skip`), written its own way, plus
    `extra` projects of companies that never emailed."""
    rows: list[GenRow] = []
    seq = dict.fromkeys(FORM_TYPES, 0)
    for a in apps:
        if a.district != district or a.id in skip:
            continue
        seq[a.form_type] += 1
        rows.append(
            GenRow(
                {
                    "section": a.form_type,
                    "seq": seq[a.form_type],
                    "district": district,
                    "org_name": org_variant(a.org_name, rng),
                    "project_name": project_variant(a.project_name, rng),
                    "contact_name": formgen.person_name(rng),
                },
                a.id,
            )
        )
    known = {org_loose_key(a.org_name) for a in apps}
    while extra > 0:
        org = formgen.org_name(rng)
        if org_loose_key(org) in known:
            continue
        ft = rng.choice(FORM_TYPES)
        seq[ft] += 1
        rows.append(
            GenRow(
                {
                    "section": ft,
                    "seq": seq[ft],
                    "district": district,
                    "org_name": org,
                    "project_name": _project(rng, ft),
                },
                None,
            )
        )
        extra -= 1
    return rows
