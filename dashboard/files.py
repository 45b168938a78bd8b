"""Files for download and preview: bytes from the blob store (re-extracted from the archived message when
missing), safe response headers, and PNG previews rendered in a limited child process."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import mimetypes
import re
import threading
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

from dashboard.limited import LimitExceeded, run_limited
from intake.pipeline import Services
from store.archive import ArchiveError

log = logging.getLogger(__name__)

# Types a browser would run or render as a page (HTML, XML and SVG, scripts, any text): never sent as
# such, whatever the file claims to be.
_ACTIVE = re.compile(r"^(text/.*|.*[/+]xml|.*html.*|.*(javascript|ecmascript).*|.*/x-(sh|php|python|perl).*)$", re.I)
_BY_FORMAT = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf_text": "application/pdf",
    "pdf_scan": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
PREVIEW_MAX_PAGES = 12
PREVIEW_MAX_PIXELS = 40_000_000
# What a preview child may use: a hostile PDF or image must not take the dashboard down with it.
PREVIEW_SECONDS = 20
PREVIEW_MEMORY = 1024 * 1024 * 1024
# Child processes drawing previews at once: each may take PREVIEW_MEMORY, and a page of thumbnails (or a
# script) asks for many. The others wait their turn, for at most PREVIEW_SECONDS.
PREVIEW_SLOTS = threading.BoundedSemaphore(2)
# Pillow decoders a preview may use: the image types the sniffer recognises (never EPS, which runs
# Ghostscript, nor the dozens of rarely used formats Pillow would otherwise try).
PREVIEW_IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")


class FileUnavailable(Exception):
    """The bytes cannot be produced (missing from the store and not re-extractable); message says why."""


def content_type(filename: str, fmt: str) -> str:
    """The type to send a file as: by its parsed format, else its extension; active types as binary."""
    ctype = _BY_FORMAT.get(fmt)
    if ctype is None:
        guess, _ = mimetypes.guess_type(filename, strict=False)
        ctype = guess or "application/octet-stream"
    if fmt == "doc" and ctype == "application/octet-stream":
        ctype = "application/msword"
    if _ACTIVE.match(ctype.split(";")[0].strip()):
        # Text types could be sniffed into HTML by an old browser; nosniff is sent too, but a download
        # needs no text type anyway.
        return "application/octet-stream"
    return ctype


def _ascii_fallback(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    folded = re.sub(r"[^A-Za-z0-9._-]+", "_", folded).strip("._") or "file"
    ext = re.search(r"\.[A-Za-z0-9]{1,8}$", name)
    if ext and not folded.lower().endswith(ext.group(0).lower()):
        folded += ext.group(0)
    return folded[:120]


def content_disposition(filename: str, *, attachment: bool) -> str:
    """RFC 6266: an ASCII `filename` for old clients and the real name as RFC 5987 `filename*` (UTF-8)."""
    # Path parts, control characters and quotes never reach the header.
    name = re.split(r"[\\/]", filename)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip() or "file"
    kind = "attachment" if attachment else "inline"
    return f"{kind}; filename=\"{_ascii_fallback(name)}\"; filename*=UTF-8''{quote(name, safe='')}"


@dataclass
class DocRef:
    """What is needed to produce one document's bytes."""

    id: int
    message_pk: int
    attachment_pk: int | None
    parent_pk: int | None
    sha256: str
    filename: str
    member_path: str
    format: str


def attachment_bytes(services: Services, message_pk: int, sha: str) -> bytes:
    """An attachment of a message: from the blob store, else parsed again out of the archived message
    (blobs are written without fsync, so a power cut may lose one) and put back."""
    try:
        data = services.blobs.get(sha, verify=True)
        return data
    except ArchiveError as e:
        log.warning("blob %s unavailable (%s): re-extracting from message %s", sha[:12], e, message_pk)
    from sqlmodel import Session

    from parsers.mail import parse_message
    from store.models import Message

    with Session(services.engine) as s:
        msg = s.get(Message, message_pk)
    if msg is None:
        raise FileUnavailable("邮件不存在")
    try:
        raw = services.archive.get(msg.sha256, verify=True)
    except ArchiveError as e:
        raise FileUnavailable(f"原始邮件无法读取：{e}") from None
    parsed = parse_message(raw)
    for att in parsed.attachments:
        if att.sha256 == sha:
            # Put back for next time; serving it matters more than caching it.
            with contextlib.suppress(ArchiveError):
                services.blobs.put(att.data, sha)
            return att.data
    raise FileUnavailable("在原始邮件中找不到该附件")


def _member_bytes(services: Services, archive_data: bytes, sha: str, depth: int = 0) -> bytes | None:
    """Find the member with this sha256 in an archive (members of members too), within the parse limits."""
    from parsers.archives import ArchiveLimits, read_archive
    from parsers.sniff import FileType, sniff

    p = services.config.parsing
    limits = ArchiveLimits(
        max_members=p.archive_max_members, max_total_size=p.archive_max_total, max_ratio=float(p.archive_max_ratio)
    )
    res = read_archive(archive_data, sniff(archive_data).type, limits)
    nested = []
    for m in res.members:
        if m.data is None:
            continue
        if hashlib.sha256(m.data).hexdigest() == sha:
            return m.data
        if depth < 3 and sniff(m.data).type in (FileType.zip, FileType.sevenzip, FileType.rar):
            nested.append(m.data)
    for inner in nested:
        found = _member_bytes(services, inner, sha, depth + 1)
        if found is not None:
            return found
    return None


def document_bytes(services: Services, doc: DocRef) -> bytes:
    """A document's bytes: an attachment, or a member read out of the attachment (archive) it came in."""
    from sqlmodel import Session

    from store.models import AttachmentRow

    if doc.attachment_pk is None:
        raise FileUnavailable("该文件不是邮件附件，无法下载")
    with Session(services.engine) as s:
        att = s.get(AttachmentRow, doc.attachment_pk)
    if att is None or att.message_pk != doc.message_pk:
        raise FileUnavailable("附件记录不存在")
    data = attachment_bytes(services, att.message_pk, att.sha256)
    if att.sha256 == doc.sha256:
        return data
    member = _member_bytes(services, data, doc.sha256)
    if member is None:
        raise FileUnavailable("在压缩包中找不到该文件")
    return member


# -- previews --------------------------------------------------------------------------------------------------


def _render(data: bytes, fmt: str, page: int) -> tuple[bytes, int]:
    """(PNG of the page, number of pages)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = PREVIEW_MAX_PIXELS
    if fmt in ("pdf_text", "pdf_scan"):
        import pypdfium2 as pdfium

        doc = pdfium.PdfDocument(data)
        n = len(doc)
        if not 0 <= page < min(n, PREVIEW_MAX_PAGES):
            raise ValueError("no such page")
        pg = doc[page]
        w, _h = pg.get_size()
        img = pg.render(scale=min(2.0, 1100 / max(w, 1))).to_pil()
    else:
        n = 1
        if page != 0:
            raise ValueError("no such page")
        img = Image.open(io.BytesIO(data), formats=PREVIEW_IMAGE_FORMATS)
        img.load()
        img.thumbnail((1600, 1600))
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    out = io.BytesIO()
    img.save(out, "PNG", optimize=False)
    return out.getvalue(), n


def render_preview(data: bytes, fmt: str, page: int) -> tuple[bytes, int]:
    """A PNG of one page of a PDF or of an image, drawn in a child process with time and memory limits:
    the browser gets pixels, never the PDF or the original image (which could be a polyglot)."""
    if not PREVIEW_SLOTS.acquire(timeout=PREVIEW_SECONDS):
        raise FileUnavailable("预览繁忙，请稍后再试")
    try:
        return _render_limited(data, fmt, page)
    finally:
        PREVIEW_SLOTS.release()


def _render_limited(data: bytes, fmt: str, page: int) -> tuple[bytes, int]:
    try:
        png, pages = run_limited(_render, (data, fmt, page), seconds=PREVIEW_SECONDS, memory=PREVIEW_MEMORY)
    except LimitExceeded as e:
        if e.reason == "timeout":
            raise FileUnavailable("预览超时") from None
        if e.reason == "died":
            raise FileUnavailable("预览失败（文件可能已损坏）") from None
        raise FileUnavailable(f"无法预览：{e}") from None
    return png, pages
