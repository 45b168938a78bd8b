"""Documents to applications (SPEC 6): a pure function of the set of documents, so order never matters.

Forms are grouped by organisation (credit code or normalised name, joined transitively), then by form
type, then by project name (fuzzy, single linkage). Supporting documents (承诺书, licence, proof, other
files) go to the application they name, else to the one sharing their archive folder, their email, a
name in their file name, or their sender — each rule used only when it points at exactly one
application; anything else stays unassigned for staff.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from parsers.types import Kind
from parsers.validators import normalize_name
from review.model import FORM_KINDS, AppView, DocView
from review.names import credit_key, org_key, project_key

# Two project names of one organisation and form type are one project at or above this similarity.
PROJECT_SIMILARITY = 85.0
# District-level documents: they belong to no single application (reconciliation reads them).
DISTRICT_KINDS = (Kind.summary, Kind.recommendation)
# Credit codes anywhere in a text (the check character is not required: OCR and early codes).
_CODE_IN_TEXT = re.compile(r"(?<![0-9A-Z])[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}(?![0-9A-Z])")
# Supporting documents name their unit near the top; searching further only finds noise (and costs).
_TEXT_WINDOW = 1500


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # The smaller key becomes the root: the result does not depend on the order of unions.
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo


def form_identity(d: DocView) -> tuple[str | None, str | None, str | None]:
    """(credit code key, org name key, project key) a form document declares."""
    # The keys stored when the document was parsed are the same functions' results; compute only when absent.
    code = d.org_code or credit_key(d.fields.get("credit_code"))
    name = d.org_name_key or org_key(d.fields.get("org_name") or d.fields.get("applicant"))
    proj = d.project_key or project_key(d.fields.get("project_name"))
    return code, name, proj


@dataclass
class Grouping:
    apps: list[AppView]
    unassigned: list[DocView] = field(default_factory=list)
    district_docs: list[DocView] = field(default_factory=list)


def group(docs: Iterable[DocView]) -> Grouping:
    """Group documents into applications; deterministic for a given set of documents."""
    docs = sorted(docs, key=lambda d: d.id)
    forms = [d for d in docs if d.kind in FORM_KINDS and d.item in ("word", "pdf")]
    form_ids = {d.id for d in forms}
    district = [d for d in docs if d.kind in DISTRICT_KINDS]
    support = [d for d in docs if d.id not in form_ids and d.kind not in DISTRICT_KINDS]

    # 1. Organisations: forms sharing a credit code or a normalised name are one unit.
    uf = _UnionFind()
    ident: dict[int, tuple[str | None, str | None, str | None]] = {}
    keys_of: dict[int, list[str]] = {}
    for d in forms:
        code, name, proj = form_identity(d)
        ident[d.id] = (code, name, proj)
        keys = [k for k in (f"c:{code}" if code else "", f"n:{name}" if name else "") if k]
        # A form naming no unit at all stands for its sender until a resubmission names one.
        keys = keys or [f"s:{(d.message.from_addr or '').lower() or d.message.id}"]
        keys_of[d.id] = keys
        for k in keys:
            uf.find(k)
        for k in keys[1:]:
            uf.union(keys[0], k)
    org_of_doc: dict[int, str] = {}
    members: dict[str, set[str]] = defaultdict(set)
    for d in forms:
        root = uf.find(keys_of[d.id][0])
        org_of_doc[d.id] = root
        members[root].update(keys_of[d.id])
    # The organisation's key: its smallest credit code, else its smallest name key.
    org_key_of_root: dict[str, str] = {}
    for root, member_keys in members.items():
        codes = sorted(k[2:] for k in member_keys if k.startswith("c:"))
        names = sorted(k[2:] for k in member_keys if k.startswith("n:"))
        org_key_of_root[root] = codes[0] if codes else names[0] if names else sorted(member_keys)[0]

    # 2. Projects within an organisation and form type: single linkage on fuzzy similarity.
    apps: list[AppView] = []
    by_org_type: dict[tuple[str, str], list[DocView]] = defaultdict(list)
    for d in forms:
        by_org_type[(org_of_doc[d.id], d.form_type or "")].append(d)
    for (root, form_type), group_docs in sorted(by_org_type.items()):
        for cluster in _project_clusters(group_docs, ident):
            apps.append(
                AppView(form_type=form_type, org_key=org_key_of_root[root], docs=sorted(cluster, key=lambda d: d.id))
            )
    for d in forms:
        d.assigned_by = "form"
        d.assign_note = None

    # 3. Supporting documents.
    index = _AppIndex(apps, org_of_doc, org_key_of_root)
    unassigned: list[DocView] = []
    for d in support:
        app, how, note = index.assign(d)
        d.assigned_by, d.assign_note = how, note
        if app is None:
            unassigned.append(d)
        else:
            app.docs.append(d)

    # 4. What checks need about each application's surroundings.
    by_org: dict[str, list[AppView]] = defaultdict(list)
    for a in apps:
        by_org[a.org_key].append(a)
    for a in apps:
        a.docs.sort(key=lambda d: d.id)
        a.siblings = [b for b in by_org[a.org_key] if b is not a]
        a.org_docs = [d for b in a.siblings for d in b.docs if d.item in ("commitment", "license")]
        seen: dict[int, object] = {}
        for d in a.docs:
            seen.setdefault(d.message.id, d.message)
        a.messages = [seen[k] for k in sorted(seen)]  # type: ignore[misc]
    return Grouping(apps=apps, unassigned=unassigned, district_docs=district)


def _project_clusters(
    docs: list[DocView], ident: dict[int, tuple[str | None, str | None, str | None]]
) -> list[list[DocView]]:
    named = [d for d in docs if ident[d.id][2]]
    unnamed = [d for d in docs if not ident[d.id][2]]
    uf = _UnionFind()
    keys = sorted({ident[d.id][2] or "" for d in named})
    for k in keys:
        uf.find(k)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            if _same_project(a, b):
                uf.union(a, b)
    clusters: dict[str, list[DocView]] = defaultdict(list)
    for d in named:
        clusters[uf.find(ident[d.id][2] or "")].append(d)
    # A form whose project name could not be read (a poor scan) joins the project sent in the same email,
    # else the organisation's only project of this form type, else stands alone.
    for d in unnamed:
        same_msg = [r for r, ds in clusters.items() if any(x.message.id == d.message.id for x in ds)]
        if len(same_msg) == 1:
            clusters[same_msg[0]].append(d)
        elif len(clusters) == 1:
            next(iter(clusters.values())).append(d)
        else:
            clusters[f"~unnamed:{d.message.id}"].append(d)
    return [clusters[k] for k in sorted(clusters)]


def _same_project(a: str, b: str) -> bool:
    if a == b:
        return True
    if min(len(a), len(b)) >= 6 and (a in b or b in a):
        return True
    return fuzz.ratio(a, b) >= PROJECT_SIMILARITY


def _doc_folder(d: DocView) -> tuple[int | None, str] | None:
    if not d.member_path:
        return None
    folder = d.member_path.rsplit("/", 1)[0] if "/" in d.member_path else ""
    return (d.parent_pk, folder)


class _AppIndex:
    """Lookups from the signals a supporting document carries to the applications they point at."""

    def __init__(self, apps: list[AppView], org_of_doc: dict[int, str], org_key_of_root: dict[str, str]) -> None:
        self.apps = apps
        self.by_code: dict[str, set[int]] = defaultdict(set)
        self.by_name: dict[str, set[int]] = defaultdict(set)
        self.by_message: dict[int, set[int]] = defaultdict(set)
        self.by_folder: dict[tuple[int | None, str], set[int]] = defaultdict(set)
        self.by_sender: dict[str, set[int]] = defaultdict(set)
        self.org_apps: dict[str, set[int]] = defaultdict(set)
        self.names_of: dict[int, list[str]] = defaultdict(list)  # org and project keys, for file names
        for i, a in enumerate(apps):
            self.org_apps[a.org_key].add(i)
            for d in a.docs:
                code, name, proj = form_identity(d)
                if code:
                    self.by_code[code].add(i)
                if name:
                    self.by_name[name].add(i)
                    self.names_of[i].append(name)
                if proj:
                    self.names_of[i].append(proj)
                self.by_message[d.message.id].add(i)
                f = _doc_folder(d)
                if f is not None:
                    self.by_folder[f].add(i)
                for addr in (d.message.from_addr, *d.message.reply_to):
                    if addr:
                        self.by_sender[addr.lower()].add(i)
        self.name_lengths = sorted({len(n) for n in self.by_name if len(n) >= 4}, reverse=True)

    def _org_matches(self, d: DocView) -> tuple[set[int], str]:
        """Applications whose unit the document names, and where it names it: by credit code or the unit
        line read at parse time ("content"), else by a known name in its text ("content") or in its file
        name or archive path ("filename")."""
        # Cheapest first: the keys stored at parse time are dict lookups; scanning text is the fallback.
        hit: set[int] = set()
        for c in {c for c in (d.org_code, credit_key(d.fields.get("credit_code"))) if c}:
            hit |= self.by_code.get(c, set())
        if hit:
            return hit, "content"
        for n in {n for n in (d.org_name_key, org_key(d.fields.get("org_name"))) if n}:
            hit |= self.by_name.get(n, set())
        if hit:
            return hit, "content"
        window = d.text[:_TEXT_WINDOW]
        for c in set(_CODE_IN_TEXT.findall(window.upper())):
            hit |= self.by_code.get(c, set())
        if hit:
            return hit, "content"
        # Every substring of the lengths of known names is one dict lookup; name keys are substrings of
        # the full names ("泰山云电子科技" in "武汉泰山云电子科技股份有限公司").
        for text, how in ((window, "content"), (d.filename + " " + d.member_path, "filename")):
            norm = normalize_name(text)
            for length in self.name_lengths:
                for start in range(0, max(0, len(norm) - length) + 1):
                    apps = self.by_name.get(norm[start : start + length])
                    if apps:
                        hit |= apps
            if hit:
                return hit, how
        return hit, "content"

    def assign(self, d: DocView) -> tuple[AppView | None, str | None, str | None]:
        org_hit, via = self._org_matches(d)
        folder = _doc_folder(d)
        local_sets = [
            ("folder", self.by_folder.get(folder, set()) if folder else set()),
            ("message", self.by_message.get(d.message.id, set())),
        ]
        if org_hit:
            if len(org_hit) == 1:
                return self.apps[next(iter(org_hit))], via, None
            # The unit has several applications: narrow down by where the document travelled.
            for how, pool in local_sets:
                narrowed = org_hit & pool
                if len(narrowed) == 1:
                    return self.apps[next(iter(narrowed))], f"{via}+{how}", None
            narrowed = self._by_filename(d, org_hit)
            if len(narrowed) == 1:
                return self.apps[next(iter(narrowed))], f"{via}+filename", None
            receipts = sorted(org_hit)
            if d.item in ("commitment", "license"):
                # A unit's licence or 承诺书 serves all its applications: file it with the first one.
                return self.apps[receipts[0]], via, "同一单位有多个申报，已归入其中之一（对其全部申报有效）"
            return None, None, "内容指向同一单位的多个申报，无法确定归属"
        for how, pool in local_sets:
            if len(pool) == 1:
                return self.apps[next(iter(pool))], how, None
        local = set().union(*(pool for _, pool in local_sets))
        named = self._by_filename(d, local)
        if len(named) == 1:
            return self.apps[next(iter(named))], "filename", None
        senders: set[int] = set()
        for addr in (d.message.from_addr, *d.message.reply_to):
            if addr:
                senders |= self.by_sender.get(addr.lower(), set())
        if len(senders) == 1:
            return self.apps[next(iter(senders))], "sender", None
        if senders or local:
            return None, None, "同一邮件或发件人对应多个申报，无法确定归属"
        return None, None, "未找到对应的申报"

    def _by_filename(self, d: DocView, among: set[int]) -> set[int]:
        """Applications among `among` whose org or project name appears in the file name or path."""
        name = normalize_name(d.filename.rsplit(".", 1)[0] + " " + d.member_path)
        return {i for i in among if any(len(n) >= 4 and n in name for n in self.names_of[i])}
