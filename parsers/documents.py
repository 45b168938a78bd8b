"""Dispatcher: any attachment's bytes -> sniff -> Layout (Word, PDF, OCR, xlsx, archive) -> kind -> fields."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

from parsers.archives import ArchiveLimits, is_junk, read_archive
from parsers.layout import Layout, Table
from parsers.sniff import FileType, Sniffed, sniff
from parsers.types import Format, Kind, ParsedDocument, Problem, Severity

ENCRYPTED = "加密文件，无法打开 (encrypted)"


@dataclass
class ParseOptions:
    """Knobs for parse_document; the defaults suit the daemon on a small 2-core machine."""

    # LibreOffice binary for .doc/.wps/.xls; None: legacy files are reported as not convertible.
    soffice: str | None = field(default_factory=lambda: shutil.which("soffice"))
    soffice_timeout: float = 90.0
    ocr: bool = True
    # Pages OCR'd per scanned PDF: the first pages (cover, table 一) and the last ones (承诺书).
    ocr_max_pages: int = 4
    ocr_dpi: int = 120
    # Seconds of OCR per page at most (a page that needs more is read in part and says so).
    ocr_page_budget_s: float = 1.5
    seal: bool = True
    seal_max_pages: int = 6
    seal_dpi: int = 72
    # Sandbox limits (used by parsers.sandbox.ParserPool; the in-process path ignores them).
    time_limit_s: float = 120.0
    memory_limit_mb: int = 2048
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    # Archives inside archives are opened this many levels deep; deeper ones get a warning.
    max_nesting: int = 1
    max_text_chars: int = 200_000
    max_pdf_pages: int = 300
    max_image_pixels: int = 60_000_000


_FORM_KINDS = {Kind.form_scenario, Kind.form_model, Kind.form_platform, Kind.form_terminal, Kind.summary}
_DOC_EXTS = (".doc", ".docx", ".wps", ".pdf", ".xlsx", ".xls", ".jpg", ".jpeg", ".png", ".zip", ".rar", ".7z")


def parse_document(
    data: bytes, filename: str, *, options: ParseOptions | None = None, member_path: str = "", _depth: int = 0
) -> ParsedDocument:
    """Parse one attachment (or archive member) into a ParsedDocument. Never raises: failures are problems."""
    opts = options or ParseOptions()
    t0 = time.perf_counter()
    doc = ParsedDocument(
        filename=filename,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        kind=Kind.other,
        format=Format.other,
        member_path=member_path,
    )
    try:
        _dispatch(doc, data, opts, _depth)
    except MemoryError:
        _unreadable(doc, "exceeded memory limit")
    except RecursionError:
        _unreadable(doc, "document structure nested too deeply (recursion limit)")
    except Exception as exc:  # hostile files make libraries raise anything: record, never propagate
        _unreadable(doc, f"could not be parsed ({type(exc).__name__}: {_short(exc)})")
    if len(doc.text) > opts.max_text_chars:
        doc.text = doc.text[: opts.max_text_chars]
        doc.warnings.append(f"text cut at {opts.max_text_chars} characters")
    doc.elapsed = time.perf_counter() - t0
    return doc


def unreadable_document(data: bytes, filename: str, reason: str, member_path: str = "") -> ParsedDocument:
    """A ParsedDocument that only says why the file could not be read (used by the sandbox too)."""
    doc = ParsedDocument(
        filename=filename,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        kind=Kind.other,
        format=Format.other,
        member_path=member_path,
    )
    _unreadable(doc, reason)
    return doc


def _short(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__)[:200]


def _unreadable(doc: ParsedDocument, reason: str) -> None:
    name = doc.member_path or doc.filename
    doc.problems.append(Problem("unreadable_attachment", Severity.error, f"{name}: {reason}"))


def _ext(filename: str) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return "." + base.rsplit(".", 1)[-1] if "." in base else ""


def _dispatch(doc: ParsedDocument, data: bytes, opts: ParseOptions, depth: int) -> None:
    s = sniff(data, doc.filename)
    ext = _ext(doc.filename)
    t = s.type
    if t == FileType.empty:
        doc.format = _format_from_ext(ext)
        _unreadable(doc, "empty file (0 bytes)")
        return
    if t == FileType.office_lockfile:
        doc.warnings.append("Office owner/lock file (~$…), not a document: probably attached by mistake")
        return
    if t == FileType.docx:
        doc.format = Format.docx
        _parse_docx(doc, data)
    elif t in (FileType.doc, FileType.wps, FileType.rtf) or (t == FileType.html and ext in (".doc", ".wps")):
        doc.format = Format.doc
        _parse_legacy_word(doc, data, s, ext, opts)
    elif t == FileType.ole_encrypted:
        doc.format = Format.xlsx if ext in (".xlsx", ".xls") else Format.docx
        _unreadable(doc, ENCRYPTED)
        return
    elif t == FileType.xlsx:
        doc.format = Format.xlsx
        _parse_xlsx(doc, data)
    elif t == FileType.xls or (t == FileType.html and ext == ".xls"):
        doc.format = Format.xlsx
        _parse_xls(doc, data, ext, opts)
    elif t == FileType.pdf:
        _parse_pdf(doc, data, opts)
    elif t == FileType.image:
        doc.format = Format.image
        _parse_image(doc, data, s, opts)
    elif t in (FileType.zip, FileType.rar, FileType.sevenzip):
        if t == FileType.zip and s.notes and ext in (".docx", ".xlsx", ".docm", ".pptx"):
            doc.format = _format_from_ext(ext)
            _unreadable(doc, f"damaged {ext} file ({s.notes[0]})")
            return
        doc.format = Format.archive
        _parse_archive(doc, data, t, opts, depth)
        return
    elif t in (FileType.text, FileType.html):
        doc.text = _decode_text(data)
    else:
        # pptx/odt/ofd, unknown binaries: kept as evidence, but a file named like a document we need that
        # is not one is a problem the applicant must fix.
        if t == FileType.unknown and ext in _DOC_EXTS:
            doc.format = _format_from_ext(ext)
            _unreadable(doc, f"not a valid {ext} file (unrecognised content)")
            return
        doc.warnings.append(f"file type not read ({s.subtype or t.value})")
    if doc.unreadable:
        return
    _classify_and_extract(doc, opts)


def _format_from_ext(ext: str) -> Format:
    return {
        ".docx": Format.docx,
        ".docm": Format.docx,
        ".doc": Format.doc,
        ".wps": Format.doc,
        ".pdf": Format.pdf_text,
        ".xlsx": Format.xlsx,
        ".xls": Format.xlsx,
        ".jpg": Format.image,
        ".jpeg": Format.image,
        ".png": Format.image,
        ".zip": Format.archive,
        ".rar": Format.archive,
        ".7z": Format.archive,
    }.get(ext, Format.other)


def _decode_text(data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", "replace")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace")


# ---------------------------------------------------------------- layouts by format

_layouts: dict[int, Layout] = {}


def _set_layout(doc: ParsedDocument, layout: Layout) -> None:
    # The Layout is not part of ParsedDocument (which crosses process boundaries); keep it beside.
    _layouts[id(doc)] = layout
    doc.text = layout.text()


def _parse_docx(doc: ParsedDocument, data: bytes) -> None:
    from parsers.word import WordError, read_docx

    try:
        _set_layout(doc, read_docx(data))
    except WordError as exc:
        _unreadable(doc, str(exc))


def _parse_legacy_word(doc: ParsedDocument, data: bytes, s: Sniffed, ext: str, opts: ParseOptions) -> None:
    from parsers.word import WordError, convert_legacy, read_docx

    if s.encrypted:
        _unreadable(doc, ENCRYPTED)
        return
    if not opts.soffice:
        _unreadable(doc, "legacy Word file (.doc/.wps): LibreOffice is not available to convert it")
        return
    suffix = ext if ext in (".doc", ".wps", ".rtf", ".dot") else ".doc"
    try:
        docx = convert_legacy(data, suffix, soffice=opts.soffice, timeout=opts.soffice_timeout)
        _set_layout(doc, read_docx(docx))
    except WordError as exc:
        _unreadable(doc, str(exc))


def _parse_xls(doc: ParsedDocument, data: bytes, ext: str, opts: ParseOptions) -> None:
    from parsers.word import WordError, convert_batch

    if not opts.soffice:
        _unreadable(doc, "legacy Excel file (.xls): LibreOffice is not available to convert it")
        return
    try:
        (out,) = convert_batch(
            [(data, ext or ".xls")], "xlsx", soffice=opts.soffice, timeout=opts.soffice_timeout
        )
    except WordError as exc:
        _unreadable(doc, str(exc))
        return
    if out is None:
        _unreadable(doc, "LibreOffice could not convert this .xls file (damaged or encrypted)")
        return
    _parse_xlsx(doc, out)


# What a damaged package raises while it is read: a bad zip directory, a broken deflate stream, a lying header
# offset, an encrypted or unknown compression method, a truncated member.
_DAMAGED_ZIP = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError, NotImplementedError)


def _declares_entities(fh: Any) -> bool:
    """True when an XML part has a DOCTYPE; read only up to its root element (the DTD must come before it),
    in whatever encoding the part declares, however long the comments in front of it are."""
    from lxml import etree

    parser = etree.XMLPullParser(events=("start",), resolve_entities=False, load_dtd=False, no_network=True)
    try:
        while chunk := fh.read(64 * 1024):
            parser.feed(chunk)
            for _event, el in parser.read_events():
                info = el.getroottree().docinfo
                return bool(info.doctype) or info.internalDTD is not None
    except etree.XMLSyntaxError:
        return False  # not well-formed before its root: openpyxl says why in its words
    return False


def _parse_xlsx(doc: ParsedDocument, data: bytes, max_rows: int = 2000, max_cols: int = 40) -> None:
    # openpyxl's parsers (expat, or lxml when installed) expand internal entities; refuse DTDs outright, as a
    # bomb's tell, before openpyxl sees the package.
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        for info in zf.infolist():
            if info.filename.lower().endswith((".xml", ".rels", ".vml")):
                with zf.open(info) as fh:
                    if _declares_entities(fh):
                        _unreadable(
                            doc, f"XML entity declarations in {info.filename} (possible XML bomb): refused"
                        )
                        return
    except _DAMAGED_ZIP as exc:
        _unreadable(doc, f"damaged .xlsx ({type(exc).__name__}: {_short(exc)})")
        return
    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        _unreadable(doc, f"damaged .xlsx ({type(exc).__name__}: {_short(exc)})")
        return
    blocks: list[str | Table] = []
    try:
        for ws in wb.worksheets:
            rows: list[list[str]] = []
            for r, row in enumerate(ws.iter_rows(values_only=True)):
                if r >= max_rows:
                    doc.warnings.append(f"sheet {ws.title}: only the first {max_rows} rows were read")
                    break
                cells = ["" if v is None else _cell_str(v) for v in row[:max_cols]]
                while cells and not cells[-1]:
                    cells.pop()
                if cells:
                    rows.append(cells)
            blocks.append(ws.title)
            if rows:
                blocks.append(Table(rows=rows))
    except _DAMAGED_ZIP as exc:
        # read_only streams each sheet from the package: damage past the prescan shows up only here.
        _unreadable(doc, f"damaged .xlsx ({type(exc).__name__}: {_short(exc)})")
        return
    finally:
        wb.close()
    _set_layout(doc, Layout(blocks=blocks, source="xlsx"))


def _cell_str(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _parse_pdf(doc: ParsedDocument, data: bytes, opts: ParseOptions) -> None:
    from parsers import pdf as pdfmod

    doc.format = Format.pdf_text
    try:
        pdf = pdfmod.open_pdf(data)
    except pdfmod.PdfError as exc:
        _unreadable(doc, str(exc))
        return
    try:
        try:
            pt = pdfmod.read_pdf(pdf, max_pages=opts.max_pdf_pages, max_chars=opts.max_text_chars)
        except pdfmod.PdfError as exc:
            _unreadable(doc, str(exc))
            return
        doc.pages = pt.pages
        doc.warnings.extend(pt.warnings)
        images: dict[int, Any] = {}
        if pt.is_scan:
            doc.format = Format.pdf_scan
            _ocr_scan(doc, pdf, pt, opts, images)
        else:
            _set_layout(doc, pt.layout)
            if pt.scan_pages and opts.ocr:
                # A text PDF with scanned pages (the stamped 承诺书 appended as a scan): read their titles.
                _ocr_appended_scans(doc, pdf, pt, opts, images)
        doc.has_commitment_page = doc.has_commitment_page or _has_commitment_title(doc.text)
        if opts.seal:
            doc.seal = _pdf_seal(doc, pdf, pt, opts, images)
    finally:
        pdf.close()


def _render(doc: ParsedDocument, pdf: Any, pt: Any, i: int, dpi: int) -> Any | None:
    from parsers import pdf as pdfmod

    try:
        return pdfmod.render_page(pdf, i, dpi=dpi, info=pt.info[i] if i < len(pt.info) else None)
    except pdfmod.PdfError as exc:
        doc.warnings.append(str(exc))
    except Exception as exc:
        doc.warnings.append(f"page {i + 1} could not be rendered ({type(exc).__name__}: {_short(exc)})")
    return None


def _ocr_page_plan(n: int, max_pages: int) -> list[tuple[int, str]]:
    """(page, role): the cover, the table-一 page, then the last pages (where the 承诺书 sits)."""
    plan: list[tuple[int, str]] = []
    for i, role in ((0, "cover"), (1, "table")):
        if i < n and len(plan) < max_pages:
            plan.append((i, role))
    for i in range(n - 1, 1, -1):
        if len(plan) >= max_pages:
            break
        plan.append((i, "tail"))
    return plan


def _ocr_scan(doc: ParsedDocument, pdf: Any, pt: Any, opts: ParseOptions, images: dict[int, Any]) -> None:
    if not opts.ocr:
        doc.warnings.append("scanned PDF: OCR disabled, no text read")
        _set_layout(doc, Layout(source="ocr"))
        return
    from parsers import ocr

    pages: list[ocr.OcrPage] = []
    table: dict[str, str] = {}
    for i, role in _ocr_page_plan(pt.pages, opts.ocr_max_pages):
        if role == "tail" and doc.has_commitment_page:
            break  # the 承诺书 is found: the pages before it hold nothing the key fields need
        img = _render(doc, pdf, pt, i, opts.ocr_dpi)
        if img is None:
            continue
        images[i] = img
        if role == "cover":
            p = ocr.ocr_image(img, index=i, budget_s=opts.ocr_page_budget_s)
        elif role == "table":
            # Only the label column and the rows the key fields come from are recognised.
            p, found = ocr.read_label_rows(img, index=i, budget_s=opts.ocr_page_budget_s)
            table.update(found)
        else:
            # The title is the page's first line: recognise two lines at a time (the wide lines of the
            # 承诺书's text below it cost most) and stop as soon as it shows.
            p = ocr.ocr_image(
                img, index=i, top_fraction=0.4, stop=ocr.commitment_title, budget_s=opts.ocr_page_budget_s, batch=2
            )
            if ocr.commitment_title(p.boxes):
                doc.has_commitment_page = True
        pages.append(p)
    doc.ocr_used = True
    pages.sort(key=lambda p: p.index)
    layout = ocr.pages_layout(pages)
    _set_layout(doc, layout)
    _layouts[id(doc)] = layout
    _scan_keys[id(doc)] = ocr.scan_key_fields([p for p in pages if p.index < 2], table)
    if len(pages) < pt.pages:
        doc.warnings.append(
            f"scanned PDF: OCR read {len(pages)} of {pt.pages} pages (cover, table 一, the 承诺书 page)"
        )


_scan_keys: dict[int, dict[str, str]] = {}


def _ocr_appended_scans(
    doc: ParsedDocument, pdf: Any, pt: Any, opts: ParseOptions, images: dict[int, Any]
) -> None:
    from parsers import ocr

    for i in pt.scan_pages[-2:]:
        img = _render(doc, pdf, pt, i, opts.ocr_dpi)
        if img is None:
            continue
        images[i] = img
        p = ocr.ocr_image(img, index=i, top_fraction=0.4, stop=ocr.commitment_title, budget_s=1.5, batch=2)
        doc.ocr_used = True
        if ocr.commitment_title(p.boxes):
            doc.has_commitment_page = True
        doc.text += "\n" + p.text()


_COMMIT_TITLE = re.compile(r"(^|\n)\s*承\s*诺\s*书\s*(\n|$)")


def _has_commitment_title(text: str) -> bool:
    return bool(_COMMIT_TITLE.search(text))


def _pdf_seal(
    doc: ParsedDocument, pdf: Any, pt: Any, opts: ParseOptions, images: dict[int, Any]
) -> bool | None:
    from parsers.seal import find_seals

    n = pt.pages
    for img in images.values():
        if find_seals(img):
            return True
    # Seals sit on the cover (申报单位 加盖公章) and the 承诺书: look at the first and last pages that carry
    # images (a stamped page exported or scanned) or red vector art (an electronic seal).
    order = list(range(min(2, n))) + list(range(max(2, n - 3), n))
    candidates = [
        i
        for i in dict.fromkeys(order)
        if i < len(pt.info) and (pt.info[i].has_images or pt.info[i].red_paths > 0)
    ]
    if not candidates and doc.format == Format.pdf_text:
        return False
    for i in candidates[: opts.seal_max_pages]:
        if i in images:
            continue
        img = _render(doc, pdf, pt, i, opts.seal_dpi * 2 if pt.info[i].red_paths else opts.seal_dpi)
        if img is not None and find_seals(img):
            return True
    return False


def _parse_image(doc: ParsedDocument, data: bytes, s: Sniffed, opts: ParseOptions) -> None:
    from parsers.images import ImageError, load_image

    try:
        img = load_image(data, max_pixels=opts.max_image_pixels)
    except ImageError as exc:
        _unreadable(doc, str(exc))
        return
    doc.pages = 1
    text = ""
    if opts.ocr:
        from parsers import ocr

        p = ocr.ocr_image(img, budget_s=opts.ocr_page_budget_s)
        doc.ocr_used = True
        layout = ocr.pages_layout([p])
        _set_layout(doc, layout)
        text = doc.text
        doc.has_commitment_page = ocr.commitment_title(p.boxes)
    if opts.seal:
        from parsers.seal import find_seals

        doc.seal = bool(find_seals(img))
    doc.text = text


def _parse_archive(doc: ParsedDocument, data: bytes, t: FileType, opts: ParseOptions, depth: int) -> None:
    if depth > opts.max_nesting:
        doc.warnings.append(f"archive nested more than {opts.max_nesting} level(s) deep: not opened")
        return
    res = read_archive(data, t, opts.archive_limits)
    doc.warnings.extend(res.warnings)
    if res.error:
        _unreadable(doc, res.error)
        return
    prefix = doc.member_path or doc.filename
    for m in res.members:
        if is_junk(m.path):
            continue
        path = f"{prefix}/{m.path}" if doc.member_path else m.path
        base = m.path.rsplit("/", 1)[-1]
        if m.data is None:
            child = ParsedDocument(
                filename=base, sha256="", size=m.size, kind=Kind.other, format=_format_from_ext(_ext(base)),
                member_path=path,
            )  # fmt: skip
            _unreadable(child, m.problem or "could not be read")
            child.kind = _classify_name(base)
        else:
            child = parse_document(m.data, base, options=opts, member_path=path, _depth=depth + 1)
        doc.members.append(child)
    doc.text = "\n".join(f"{m.member_path}: {m.kind.value}" for m in doc.members)
    if not doc.members:
        doc.warnings.append("archive holds no files")


# ---------------------------------------------------------------- kind and fields


def _classify(layout: Layout | None, text: str, filename: str) -> tuple[Kind, list[str]]:
    try:
        from parsers.classify import classify  # written in parallel; fall back until it lands
    except ImportError:
        return fallback_classify(text, filename)
    kind, reasons = classify(layout, text, filename)
    return Kind(kind), list(reasons)


_TITLES: list[tuple[str, Kind]] = [
    ("典型应用场景案例申报书", Kind.form_scenario),
    ("场景案例申报书", Kind.form_scenario),
    ("模型和智能体项目申报书", Kind.form_model),
    ("公共服务平台申报书", Kind.form_platform),
    ("智能终端产品申报书", Kind.form_terminal),
    ("申报信息汇总表", Kind.summary),
    ("推荐意见", Kind.recommendation),
    ("营业执照", Kind.license),
    ("法人证书", Kind.license),
    ("承诺书", Kind.commitment),
]
_EVIDENCE = ("专利", "软件著作权", "著作权", "获奖", "检测报告", "证书", "合同", "证明", "报告", "截图")


def fallback_classify(text: str, filename: str) -> tuple[Kind, list[str]]:
    """Title keywords in the first lines, then the file name: a stand-in for parsers.classify."""
    head = re.sub(r"\s+", "", text[:3000])
    for title, kind in _TITLES:
        if title in head:
            return kind, [f"title contains {title}"]
    k = _classify_name(filename)
    return k, [f"file name suggests {k.value}"] if k != Kind.other else ["no title or name matched"]


def _classify_name(filename: str) -> Kind:
    name = re.sub(r"\s+", "", filename)
    for title, kind in _TITLES:
        if title in name:
            return kind
    hints = (
        ("附件1", Kind.form_scenario),
        ("附件2", Kind.form_model),
        ("附件3", Kind.form_platform),
        ("附件4", Kind.form_terminal),
        ("附件5", Kind.summary),
        ("汇总", Kind.summary),
        ("执照", Kind.license),
    )
    for key, kind in hints:
        if key in name:
            return kind
    if any(w in name for w in _EVIDENCE):
        return Kind.evidence
    return Kind.other


def _classify_and_extract(doc: ParsedDocument, opts: ParseOptions) -> None:
    layout = _layouts.pop(id(doc), None)
    keys = _scan_keys.pop(id(doc), {})
    kind, reasons = _classify(layout, doc.text, doc.filename)
    doc.kind, doc.kind_reasons = kind, reasons
    if doc.format in (Format.pdf_scan, Format.image) and kind == Kind.other and keys:
        doc.kind_reasons.append("scan: form labels read by OCR")
    if kind in _FORM_KINDS and layout is not None:
        try:
            from parsers.extract import extract_fields

            fields, warns = extract_fields(kind, layout)
        except Exception as exc:  # an extractor bug must not lose the document
            fields, warns = {}, [f"field extraction failed ({type(exc).__name__}: {_short(exc)})"]
        doc.fields = fields
        if layout.source == "ocr":
            # Template-driven extraction is tuned to real tables; on OCR lines it is best effort, so only
            # its warnings that matter are kept and the four key fields come from the OCR line reader.
            for k, v in keys.items():
                doc.fields[k] = v
            doc.warnings.append("fields read from a scan by OCR: check them against the Word version")
        else:
            doc.warnings.extend(warns)
    elif kind == Kind.license:
        from parsers.ocr import find_credit_code

        code = find_credit_code(doc.text)
        if code:
            doc.fields["credit_code"] = code
        m = re.search(r"名\s*称\s*[:：]?\s*(\S+)", doc.text)
        if m:
            doc.fields["org_name"] = m.group(1)


def parse_many(
    items: list[tuple[bytes, str]], *, options: ParseOptions | None = None
) -> list[ParsedDocument]:
    """parse_document over several files, in order (a convenience for batch tools)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [parse_document(d, n, options=options) for d, n in items]
