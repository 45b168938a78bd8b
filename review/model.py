"""In-memory views of messages, documents and applications that grouping and checks work on."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from parsers.types import Format, Kind, Problem

# The parts of an application (SPEC 4's missing_* codes): the form as Word, the form as PDF (a stamped
# scan, or a text PDF), the 承诺书, the licence copy, proof materials.
_EPOCH = datetime(1970, 1, 1).astimezone()
ITEMS = ("word", "pdf", "commitment", "license", "evidence")
REQUIRED_ITEMS = ("word", "pdf", "commitment", "license")
FORM_KINDS = (Kind.form_scenario, Kind.form_model, Kind.form_platform, Kind.form_terminal)
FORM_TYPE_LETTER = {"scenario": "S", "model": "M", "platform": "P", "terminal": "T"}
ITEM_LABEL = {
    "word": "申报书 Word 版",
    "pdf": "申报书 PDF 盖章扫描件",
    "commitment": "承诺书",
    "license": "营业执照（法人证书）复印件",
    "evidence": "证明材料",
}


@dataclass(frozen=True)
class MessageView:
    """What checks need to know about the email a document came in."""

    id: int
    sha256: str
    from_addr: str | None
    reply_to: tuple[str, ...]
    subject: str
    sent_at: datetime | None  # Date header
    received_at: datetime | None  # INTERNALDATE (or the newest Received / Date for ingested files)
    received_source: str | None
    cloud_links: tuple[dict[str, Any], ...] = ()
    received_chain: tuple[str, ...] = ()  # Received: headers, newest first (evidence for lateness)
    # Details ("file: reason") of this message's unreadable documents that grouping left unassigned:
    # every application the message brought reports them (unreadable_attachment), as nobody can tell
    # which one the file was for.
    unreadable: tuple[str, ...] = ()


@dataclass
class DocView:
    """One parsed document (attachment or archive member)."""

    id: int
    message: MessageView
    kind: Kind
    format: Format
    filename: str
    sha256: str
    fields: dict[str, Any]
    text: str
    received_at: datetime | None
    member_path: str = ""
    parent_pk: int | None = None
    seal: bool | None = None
    has_commitment_page: bool = False
    problems: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    org_code: str | None = None
    org_name_key: str | None = None
    project_key: str | None = None
    # Set by grouping: how the document came to its application ("form", "content", "folder", ...).
    assigned_by: str | None = None
    assign_note: str | None = None

    @property
    def form_type(self) -> str | None:
        return self.kind.form_type

    @functools.cached_property
    def item(self) -> str | None:
        """Which part of an application this document is (see ITEMS), or None (summary, recommendation)."""
        if self.kind in FORM_KINDS:
            if self.format in (Format.docx, Format.doc):
                return "word"
            if self.format in (Format.pdf_text, Format.pdf_scan, Format.image):
                return "pdf"
            return None
        return {Kind.commitment: "commitment", Kind.license: "license", Kind.evidence: "evidence"}.get(self.kind)

    @property
    def unreadable(self) -> bool:
        return any(p.get("code") == "unreadable_attachment" for p in self.problems)


@dataclass
class AppView:
    """An application as grouping made it: its documents by item, versions in arrival order."""

    form_type: str
    org_key: str
    docs: list[DocView]
    id: int | None = None
    receipt_no: str | None = None
    # Supporting documents of the same organisation assigned to its other applications: a licence
    # (and usually the 承诺书) is the unit's, sent once for all its projects.
    org_docs: list[DocView] = field(default_factory=list)
    # The organisation's other applications (other directions, other projects): duplicate_direction.
    siblings: list[AppView] = field(default_factory=list)
    # Every message that brought a document of this application.
    messages: list[MessageView] = field(default_factory=list)
    _versions: dict[str | None, list[DocView]] = field(default_factory=dict, repr=False, compare=False)
    _versions_key: tuple[int, int] | None = field(default=None, repr=False, compare=False)

    def versions(self, item: str) -> list[DocView]:
        """Documents of one item, oldest arrival first (ties: document id)."""
        # Checks ask this dozens of times per application: sort once per state of `docs`.
        key = (id(self.docs), len(self.docs))
        if self._versions_key != key:
            by_item: dict[str | None, list[DocView]] = {}
            # Unknown arrival times sort last: they never become the version of record by accident.
            for d in sorted(self.docs, key=lambda d: (d.received_at is None, d.received_at or _EPOCH, d.id)):
                by_item.setdefault(d.item, []).append(d)
            self._versions, self._versions_key = by_item, key
        # The cached list itself: callers read it and must not change it.
        return self._versions.get(item, [])

    def of_record(self, item: str, deadline: datetime) -> DocView | None:
        """The latest version that arrived before the deadline, else the first one (which is late)."""
        vs = self.versions(item)
        on_time = [d for d in vs if d.received_at is not None and d.received_at < deadline]
        if on_time:
            return on_time[-1]
        return vs[0] if vs else None

    @property
    def word(self) -> DocView | None:
        vs = self.versions("word")
        return vs[-1] if vs else None

    def fields(self, deadline: datetime) -> dict[str, Any]:
        """Form fields of record: from the Word version of record, else from the PDF of record."""
        for item in ("word", "pdf"):
            d = self.of_record(item, deadline)
            if d is not None and d.fields:
                return d.fields
        return {}

    @property
    def org_name(self) -> str | None:
        for item in ("word", "pdf"):
            for d in reversed(self.versions(item)):
                name = d.fields.get("org_name") or d.fields.get("applicant")
                if name:
                    return str(name)
        return None

    @property
    def project_name(self) -> str | None:
        for item in ("word", "pdf"):
            for d in reversed(self.versions(item)):
                if d.fields.get("project_name"):
                    return str(d.fields["project_name"])
        return None

    @property
    def credit_code(self) -> str | None:
        for item in ("word", "pdf"):
            for d in reversed(self.versions(item)):
                if d.fields.get("credit_code"):
                    return str(d.fields["credit_code"]).strip().upper()
        return None


@dataclass(frozen=True)
class CheckContext:
    """What every check may consult besides the application itself."""

    deadline: datetime  # the configured deadline, aware
    grace: timedelta = timedelta(0)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    call_code: str = "AI2026"
    # Extra, call-specific settings a check may read (thresholds, ...).
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def cutoff(self) -> datetime:
        """Items received at or after this instant are late ("17:00 前": strictly before 17:00:00)."""
        return self.deadline + self.grace

    def local(self, dt: datetime | None) -> str:
        return dt.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S") if dt else "未知"


Check = Callable[[AppView, CheckContext], Iterable[Problem]]
