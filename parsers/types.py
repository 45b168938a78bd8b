"""Typed records that parsers return: the contract between parsers, store and review."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class MessageClass(StrEnum):
    """What a message is, for intake and for acknowledgement suppression (SPEC 8)."""

    submission = "submission"
    auto_reply = "auto_reply"
    bounce = "bounce"
    list = "list"
    other = "other"


class Kind(StrEnum):
    """Document kinds of SPEC section 2."""

    form_scenario = "form_scenario"
    form_model = "form_model"
    form_platform = "form_platform"
    form_terminal = "form_terminal"
    summary = "summary"
    recommendation = "recommendation"
    commitment = "commitment"
    license = "license"
    evidence = "evidence"
    other = "other"

    @property
    def form_type(self) -> str | None:
        """`scenario`/`model`/`platform`/`terminal` for the four application forms, else None."""
        return self.value[5:] if self.value.startswith("form_") else None


class Format(StrEnum):
    """Document formats of SPEC section 2."""

    docx = "docx"
    doc = "doc"
    pdf_text = "pdf_text"
    pdf_scan = "pdf_scan"
    image = "image"
    xlsx = "xlsx"
    archive = "archive"
    other = "other"


class Severity(StrEnum):
    error = "error"
    warning = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding of SPEC section 4: a stable code, a severity and a human-readable detail."""

    code: str
    severity: Severity
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity.value, "detail": self.detail}


@dataclass(frozen=True)
class Attachment:
    """One file carried by a message, decoded from its MIME part."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    sha256: str
    size: int
    disposition: str | None = None
    # Where the part sits: "" for the top message, "2" for a part of an attached message/rfc822, ...
    container: str = ""


@dataclass(frozen=True)
class CloudLink:
    """A 超大附件 / cloud-attachment link found in a message body instead of a MIME part."""

    url: str
    provider: str  # "qq", "163", "126", "netease", "other"
    filename: str | None = None
    size_text: str | None = None
    expires_text: str | None = None


@dataclass
class ParsedMessage:
    """Everything intake needs from one raw message (SPEC 5 and section 5 of issue 2)."""

    message_id: str | None
    from_addr: str | None
    from_name: str | None
    reply_to: list[str]
    return_path: str | None  # "" when the header is present and empty (<>): a bounce signal
    to: list[str]
    cc: list[str]
    subject: str
    sent_at: datetime | None
    received_at: datetime | None
    received_source: str | None  # "internaldate" | "received" | "date" | None
    text: str
    html: str
    attachments: list[Attachment]
    cloud_links: list[CloudLink]
    msg_class: MessageClass
    class_reasons: list[str]
    # Headers that acknowledgement suppression and threading look at, name lower-cased -> values.
    headers: dict[str, list[str]]
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


@dataclass
class ParsedDocument:
    """One attachment (or one archive member) recognised and, for forms, parsed into fields."""

    filename: str
    sha256: str
    size: int
    kind: Kind
    format: Format
    # SPEC section 3 keys -> values; absent keys are blank cells.
    fields: dict[str, Any] = field(default_factory=dict)
    # Extracted plain text, for search and for assigning supporting documents.
    text: str = ""
    # Non-fatal oddities met while reading (label not found, ambiguous tick, ...), in words for staff.
    warnings: list[str] = field(default_factory=list)
    # Findings that are SPEC problems on their own, e.g. unreadable_attachment with file and reason.
    problems: list[Problem] = field(default_factory=list)
    # Why the kind was chosen (title found, labels matched, filename hint, ...).
    kind_reasons: list[str] = field(default_factory=list)
    pages: int | None = None
    ocr_used: bool = False
    # Red seal detected on a scan or image: True / False, or None when not looked for.
    seal: bool | None = None
    # A 承诺书 page was found inside this document (e.g. at the end of a form's PDF scan).
    has_commitment_page: bool = False
    # For archives: the parsed members, each a document of its own.
    members: list[ParsedDocument] = field(default_factory=list)
    # Path inside the archive for members ("dir/附件1.docx"), "" for top-level attachments.
    member_path: str = ""
    # Parse time in seconds, for benchmarks and for staff diagnosing slow files.
    elapsed: float = 0.0

    @property
    def unreadable(self) -> bool:
        return any(p.code == "unreadable_attachment" for p in self.problems)
