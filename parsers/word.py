"""Word reader: .docx bytes to a neutral Layout (zipfile + lxml), legacy .doc/.wps via LibreOffice."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path, PurePosixPath

from lxml import etree

from parsers.layout import TICKED, UNTICKED, Layout, Table


class WordError(Exception):
    """A file that cannot be read as a Word document; `reason` is a sentence for staff."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Entity resolution, DTD loading and network access all off: a hostile package (XXE, billion laughs)
# must neither fetch nor expand anything. huge_tree stays off so libxml2's own limits apply.
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_pis=True
)

# A form is ~40 KB of XML; anything this large is a bomb or not a form, and would stall the daemon.
MAX_PART_BYTES = 64 * 1024 * 1024

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_REL_OFFICE_DOC = "/officeDocument"

# --- tick marks ----------------------------------------------------------------------------------

_TICK_CHARS = "☑☒■√✓✔▣◼⬛⊠⌧✅🗹🗷▪"
_BOX_CHARS = "□☐◻❑❏⬜▢❒◽"
_TICK_TABLE = str.maketrans({**dict.fromkeys(_TICK_CHARS, TICKED), **dict.fromkeys(_BOX_CHARS, UNTICKED)})

# Symbol-font glyphs by their code point's low byte (Word writes F0xx in w:sym, or the bare byte in a
# run set in the symbol font). Only boxes and ticks matter; other symbol glyphs are decoration.
_SYMBOL_MAPS: dict[str, dict[int, str]] = {
    "wingdings": {
        0x6E: TICKED, 0xFC: TICKED, 0xFD: TICKED, 0xFE: TICKED, 0x78: TICKED,
        0x6F: UNTICKED, 0x70: UNTICKED, 0x71: UNTICKED, 0x72: UNTICKED, 0xA8: UNTICKED, 0xA1: UNTICKED,
    },
    "wingdings2": {
        0x50: TICKED, 0x51: TICKED, 0x52: TICKED, 0x53: TICKED, 0x54: TICKED,
        0xA3: UNTICKED, 0x2A: UNTICKED, 0xA2: UNTICKED, 0xA1: UNTICKED, 0xA0: UNTICKED,
    },
    "symbol": {0xD6: TICKED},
}
# When the font is not stated, the glyphs people actually use: Wingdings 2 F052 ☑ / F0A3 □ and
# Wingdings F0FE ☑ / F06F □ / F0A8 ◻; the two fonts do not disagree on these codes.
_SYMBOL_DEFAULT = {**_SYMBOL_MAPS["wingdings"], **_SYMBOL_MAPS["wingdings2"]}


def _symbol_font(name: str | None) -> str | None:
    if not name:
        return None
    n = name.lower().replace(" ", "")
    if n.startswith("wingdings"):
        return "wingdings2" if "2" in n or "3" in n else "wingdings"
    if n in ("symbol", "webdings"):
        return n if n in _SYMBOL_MAPS else None
    return None


def _symbol_glyph(code: int, font: str | None) -> str:
    table = _SYMBOL_MAPS.get(font or "", _SYMBOL_DEFAULT)
    return table.get(code & 0xFF, "") if (code < 0x100 or 0xF000 <= code <= 0xF0FF) else chr(code)


def normalize_ticks(text: str) -> str:
    """Translate tick and box glyphs in plain text (PDF, OCR, .doc text) to TICKED / UNTICKED."""
    return text.translate(_TICK_TABLE)


# --- XML walking ---------------------------------------------------------------------------------


class _Ns:
    """Qualified tag names for one WordprocessingML namespace (transitional or strict)."""

    def __init__(self, w: str) -> None:
        q = lambda local: f"{{{w}}}{local}"  # noqa: E731
        self.w = w
        self.body, self.p, self.r, self.t, self.tbl, self.tr, self.tc = (
            q(x) for x in ("body", "p", "r", "t", "tbl", "tr", "tc")
        )
        self.tab, self.br, self.cr, self.sym, self.sdt = (q(x) for x in ("tab", "br", "cr", "sym", "sdt"))
        self.sdtPr, self.sdtContent, self.customXml = q("sdtPr"), q("sdtContent"), q("customXml")
        self.tcPr, self.vMerge, self.hMerge, self.val = q("tcPr"), q("vMerge"), q("hMerge"), q("val")
        self.rPr, self.rFonts, self.ascii, self.hAnsi = q("rPr"), q("rFonts"), q("ascii"), q("hAnsi")
        self.font, self.char = q("font"), q("char")
        self.fldChar, self.ffData, self.checkBox = q("fldChar"), q("ffData"), q("checkBox")
        self.checked, self.default = q("checked"), q("default")
        self.noBreakHyphen, self.ptab = q("noBreakHyphen"), q("ptab")
        self.txbxContent = q("txbxContent")
        # Subtrees whose text is not document text: deletions, field codes, properties.
        self.skip = {
            q(x)
            for x in (
                "del", "moveFrom", "instrText", "delText", "delInstrText", "pPr", "rPr", "sdtPr",
                "commentReference", "footnoteReference", "endnoteReference",
            )
        }


_W_TRANSITIONAL = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_W14 = "http://schemas.microsoft.com/office/word/2010/wordml"
_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_W14_CHECKBOX = f"{{{_W14}}}checkbox"
_W14_CHECKED = f"{{{_W14}}}checked"
_W14_VAL = f"{{{_W14}}}val"
_MC_FALLBACK = f"{{{_MC}}}Fallback"
_TRUE = {"1", "true", "on"}


class _Walker:
    def __init__(self, ns: _Ns) -> None:
        self.ns = ns

    # Block level ---------------------------------------------------------------------------------

    def blocks(self, container: etree._Element) -> list[str | Table]:
        out: list[str | Table] = []
        for el in self._block_children(container):
            if el.tag == self.ns.p:
                text, boxes = self.paragraph(el)
                if text:
                    out.append(text)
                out.extend(boxes)
            else:
                out.append(self.table(el))
        return out

    def _block_children(self, container: etree._Element) -> Iterator[etree._Element]:
        """Paragraphs and tables in order, looking through content controls and custom XML."""
        ns = self.ns
        for el in container:
            tag = el.tag
            if tag == ns.p or tag == ns.tbl:
                yield el
            elif tag == ns.sdt:
                content = el.find(ns.sdtContent)
                if content is not None:
                    yield from self._block_children(content)
            elif tag == ns.customXml or tag == f"{{{_MC}}}AlternateContent" or tag == f"{{{_MC}}}Choice":
                yield from self._block_children(el)

    # Paragraphs ----------------------------------------------------------------------------------

    def paragraph(self, p: etree._Element) -> tuple[str, list[str | Table]]:
        """Text of one paragraph, plus the blocks of any text boxes anchored in it."""
        parts: list[str] = []
        boxes: list[str | Table] = []
        self._inline(p, parts, boxes, None)
        return "".join(parts).strip(), boxes

    def _inline(
        self, el: etree._Element, parts: list[str], boxes: list[str | Table], font: str | None
    ) -> None:
        ns = self.ns
        for child in el:
            tag = child.tag
            if not isinstance(tag, str):  # comments, unresolved entity references
                continue
            if tag == ns.t:
                # Only the element's own text and its children's tails: an unresolved entity
                # reference (XXE) is a child node and its name or content must not leak in.
                text = child.text or ""
                for sub in child:
                    text += sub.tail or ""
                parts.append((self._font_text(text, font) if font else text).translate(_TICK_TABLE))
            elif tag == ns.r:
                self._inline(child, parts, boxes, self._run_font(child))
            elif tag == ns.tab or tag == ns.ptab:
                parts.append("\t")
            elif tag == ns.br or tag == ns.cr:
                parts.append("\n")
            elif tag == ns.noBreakHyphen:
                parts.append("-")
            elif tag == ns.sym:
                parts.append(self._sym(child))
            elif tag == ns.fldChar:
                ff = child.find(ns.ffData)
                if ff is not None:
                    cb = ff.find(ns.checkBox)
                    if cb is not None:
                        parts.append(TICKED if self._legacy_checked(cb) else UNTICKED)
            elif tag == ns.sdt:
                pr = child.find(ns.sdtPr)
                cb = pr.find(_W14_CHECKBOX) if pr is not None else None
                if cb is not None:
                    chk = cb.find(_W14_CHECKED)
                    on = chk is not None and (chk.get(_W14_VAL) or "1").lower() in _TRUE
                    parts.append(TICKED if on else UNTICKED)
                else:
                    content = child.find(ns.sdtContent)
                    if content is not None:
                        self._inline(content, parts, boxes, font)
            elif tag == ns.txbxContent:
                boxes.extend(self.blocks(child))
            elif tag in ns.skip or tag == _MC_FALLBACK:
                continue
            elif tag == ns.p:  # a paragraph reached through a wrapper: keep its text on a new line
                if parts:
                    parts.append("\n")
                self._inline(child, parts, boxes, None)
            else:
                self._inline(child, parts, boxes, font)

    def _run_font(self, r: etree._Element) -> str | None:
        rpr = r.find(self.ns.rPr)
        if rpr is None:
            return None
        rf = rpr.find(self.ns.rFonts)
        if rf is None:
            return None
        return _symbol_font(rf.get(self.ns.ascii) or rf.get(self.ns.hAnsi))

    @staticmethod
    def _font_text(text: str, font: str) -> str:
        # In a symbol-font run, ASCII bytes and PUA code points are glyphs; CJK falls back to the
        # east-Asian font and is real text.
        out = []
        for ch in text:
            code = ord(ch)
            out.append(_symbol_glyph(code, font) if code < 0x100 or 0xF000 <= code <= 0xF0FF else ch)
        return "".join(out)

    def _sym(self, el: etree._Element) -> str:
        raw = el.get(self.ns.char) or ""
        try:
            code = int(raw, 16)
        except ValueError:
            return ""
        return _symbol_glyph(code, _symbol_font(el.get(self.ns.font)))

    def _legacy_checked(self, cb: etree._Element) -> bool:
        ns = self.ns
        checked = cb.find(ns.checked)
        if checked is not None:
            return (checked.get(ns.val) or "1").lower() in _TRUE
        default = cb.find(ns.default)
        return default is not None and (default.get(ns.val) or "0").lower() in _TRUE

    # Tables --------------------------------------------------------------------------------------

    def table(self, tbl: etree._Element) -> Table:
        ns = self.ns
        table = Table(rows=[])
        for tr in self._children(tbl, ns.tr):
            row: list[str] = []
            for tc in self._children(tr, ns.tc):
                if self._is_continuation(tc):
                    continue
                lines: list[str] = []
                for el in self._block_children(tc):
                    if el.tag == ns.p:
                        text, boxes = self.paragraph(el)
                        if text:
                            lines.append(text)
                        for b in boxes:
                            if isinstance(b, str):
                                lines.append(b)
                            else:
                                table.nested.append(b)
                    else:
                        table.nested.append(self.table(el))
                row.append("\n".join(lines))
            table.rows.append(row)
        return table

    def _children(self, parent: etree._Element, tag: str) -> Iterator[etree._Element]:
        ns = self.ns
        for el in parent:
            if el.tag == tag:
                yield el
            elif el.tag == ns.sdt:
                content = el.find(ns.sdtContent)
                if content is not None:
                    yield from self._children(content, tag)
            elif el.tag == ns.customXml:
                yield from self._children(el, tag)

    def _is_continuation(self, tc: etree._Element) -> bool:
        ns = self.ns
        pr = tc.find(ns.tcPr)
        if pr is None:
            return False
        for tag in (ns.vMerge, ns.hMerge):
            m = pr.find(tag)
            if m is not None and (m.get(ns.val) or "continue") == "continue":
                return True
        return False


# --- Package -------------------------------------------------------------------------------------


def _parse_xml(data: bytes, what: str) -> etree._Element:
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as e:
        raise WordError(f"damaged .docx: {what} is not well-formed XML ({e.msg})") from e


def _read_part(zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise WordError(f"damaged .docx: part {name} is missing") from None
    if info.file_size > MAX_PART_BYTES:
        raise WordError(f"refused: part {name} unpacks to {info.file_size} bytes (zip bomb?)")
    try:
        with zf.open(info) as fh:
            data = fh.read(MAX_PART_BYTES + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, zlib.error) as e:
        raise WordError(f"damaged .docx: cannot unpack {name} ({e})") from e
    except NotImplementedError as e:  # a compression method zipfile does not implement
        raise WordError(f"damaged .docx: cannot unpack {name} ({e})") from e
    except RuntimeError as e:  # zipfile raises RuntimeError for encrypted members
        raise WordError(f"encrypted .docx package member {name}: {e}") from e
    if len(data) > MAX_PART_BYTES:
        raise WordError(f"refused: part {name} unpacks to more than {MAX_PART_BYTES} bytes (zip bomb?)")
    return data


def _main_part(zf: zipfile.ZipFile) -> str:
    names = set(zf.namelist())
    if "_rels/.rels" in names:
        rels = _parse_xml(_read_part(zf, "_rels/.rels"), "_rels/.rels")
        for rel in rels:
            if isinstance(rel.tag, str) and (rel.get("Type") or "").endswith(_REL_OFFICE_DOC):
                target = (rel.get("Target") or "").lstrip("/")
                if target:
                    target = str(PurePosixPath(target))
                    if target in names:
                        return target
    if "word/document.xml" in names:
        return "word/document.xml"
    if any(n.startswith("xl/") for n in names):
        raise WordError("a spreadsheet (.xlsx) package, not a Word document")
    if any(n.startswith("ppt/") for n in names):
        raise WordError("a presentation (.pptx) package, not a Word document")
    raise WordError("a ZIP file without a Word document part (not a .docx)")


def sniff(data: bytes) -> str:
    """What the bytes look like: "zip", "ole", "ole_encrypted_ooxml", "empty" or "other"."""
    if not data:
        return "empty"
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return "zip"
    if data.startswith(_OLE_MAGIC):
        # An encrypted .docx/.xlsx is an OLE container holding an EncryptedPackage stream.
        if "EncryptedPackage".encode("utf-16-le") in data:
            return "ole_encrypted_ooxml"
        return "ole"
    return "other"


def read_docx(data: bytes) -> Layout:
    """Read .docx bytes into a Layout: body paragraphs and tables in reading order.

    Headers, footers, footnotes and comments are not read. Raises WordError with a reason staff can
    pass on for anything that is not a readable .docx (encrypted, corrupt, a lock file, a .doc, ...).
    """
    kind = sniff(data)
    if kind == "empty":
        raise WordError("empty file (0 bytes)")
    if kind == "ole_encrypted_ooxml":
        raise WordError("password-protected (encrypted) Word file: cannot be opened without the password")
    if kind == "ole":
        raise WordError("a legacy Word 97-2003 (.doc) or other OLE file, not a .docx")
    if kind != "zip":
        if len(data) < 1024 and b"PK" not in data:
            raise WordError(
                f"not a Word document ({len(data)} bytes, not a ZIP package; "
                "Office owner/lock files named ~$… look like this)"
            )
        raise WordError("not a .docx (not a ZIP package)")
    try:
        zf = zipfile.ZipFile(BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        # NotImplementedError: a central directory asking for a zip version zipfile does not implement
        raise WordError(f"damaged .docx: not a readable ZIP package ({e})") from e
    with zf:
        if any(i.flag_bits & 0x1 for i in zf.infolist()):
            raise WordError("encrypted ZIP package: cannot be opened without the password")
        name = _main_part(zf)
        root = _parse_xml(_read_part(zf, name), name)
    tag = root.tag if isinstance(root.tag, str) else ""
    w = tag[1:].split("}")[0] if tag.startswith("{") else _W_TRANSITIONAL
    ns = _Ns(w)
    if tag != f"{{{w}}}document":
        raise WordError(f"not a Word document: main part {name} is <{etree.QName(root).localname}>")
    body = root.find(ns.body)
    if body is None:
        return Layout(blocks=[], source="docx")
    try:
        blocks = _Walker(ns).blocks(body)
    except RecursionError:
        raise WordError("damaged .docx: nesting too deep to read") from None
    return Layout(blocks=blocks, source="docx")


# --- Legacy formats via LibreOffice --------------------------------------------------------------


def find_soffice(soffice: str | None = None) -> str:
    """Path of the LibreOffice binary, or WordError saying it is missing."""
    if soffice:
        if os.path.isfile(soffice) and os.access(soffice, os.X_OK):
            return soffice
        found = shutil.which(soffice)
        if found:
            return found
        raise WordError(f"LibreOffice not found at {soffice!r}: legacy Word files cannot be converted")
    for cand in ("soffice", "libreoffice"):
        found = shutil.which(cand)
        if found:
            return found
    raise WordError("LibreOffice (soffice) is not installed: legacy Word files cannot be converted")


def _legacy_suffix(data: bytes, suffix: str) -> str:
    # A .wps saved as Word 97 is a .doc: naming it .wps would make LibreOffice pick the MS Works
    # filter by extension.
    if data.startswith(_OLE_MAGIC) and "WordDocument".encode("utf-16-le") in data:
        return ".doc"
    s = suffix.lower() if suffix.startswith(".") else f".{suffix.lower()}"
    # Other callers convert .xls and friends through convert_batch: keep any plain extension.
    return s if re.fullmatch(r"\.[a-z0-9]{1,5}", s) else ".doc"


def convert_batch(
    files: list[tuple[bytes, str]],
    target: str = "docx",
    *,
    soffice: str | None = None,
    timeout: float = 120.0,
) -> list[bytes | None]:
    """Convert several files (bytes, suffix) with one LibreOffice start-up (~1.3 s each start).

    Returns the converted bytes per input, None where LibreOffice produced nothing. Raises WordError
    when LibreOffice is missing or times out. `target` is a LibreOffice filter spec ("docx", "doc",
    "pdf", "doc:MS Word 97").
    """
    binary = find_soffice(soffice)
    ext = target.split(":")[0]
    with tempfile.TemporaryDirectory(prefix="intake-lo-") as tmp:
        tdir = Path(tmp)
        indir, outdir = tdir / "in", tdir / "out"
        indir.mkdir()
        outdir.mkdir()
        paths = []
        for i, (data, suffix) in enumerate(files):
            p = indir / f"f{i:04d}{_legacy_suffix(data, suffix)}"
            p.write_bytes(data)
            paths.append(p)
        if not paths:
            return []
        cmd = [
            binary,
            f"-env:UserInstallation={(tdir / 'profile').as_uri()}",
            "--headless", "--norestore", "--nologo", "--nodefault", "--nolockcheck",
            "--convert-to", target, "--outdir", str(outdir), *map(str, paths),
        ]
        env = dict(os.environ, HOME=str(tdir), SAL_USE_VCLPLUGIN="svp")
        # Own process group so a hung conversion (password prompt, broken file) is killed whole.
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )
        try:
            proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise WordError(f"LibreOffice conversion timed out after {timeout:g} s") from None
        out: list[bytes | None] = []
        for p in paths:
            q = outdir / f"{p.stem}.{ext}"
            out.append(q.read_bytes() if q.exists() and q.stat().st_size > 0 else None)
        return out


def convert_legacy(data: bytes, suffix: str, *, soffice: str | None = None, timeout: float = 120.0) -> bytes:
    """Convert a .doc / .wps (Word 97) file to .docx bytes with headless LibreOffice.

    A private profile in a temp dir keeps parallel conversions from fighting over one profile.
    Raises WordError (LibreOffice missing, timeout, or the file could not be converted).
    """
    if not data:
        raise WordError("empty file (0 bytes)")
    if sniff(data) == "ole_encrypted_ooxml":
        raise WordError("password-protected (encrypted) Word file: cannot be opened without the password")
    (result,) = convert_batch([(data, suffix)], "docx", soffice=soffice, timeout=timeout)
    if result is None:
        raise WordError(
            f"LibreOffice could not convert this {suffix or 'legacy'} file "
            "(damaged, password-protected or not a Word document)"
        )
    return result


def read_any_word(data: bytes, suffix: str, *, soffice: str | None = None, timeout: float = 120.0) -> Layout:
    """read_docx for .docx, convert_legacy then read_docx for .doc/.wps (decided by content)."""
    kind = sniff(data)
    if kind == "zip":
        return read_docx(data)
    if kind == "ole":
        return read_docx(convert_legacy(data, suffix, soffice=soffice, timeout=timeout))
    return read_docx(data)  # raises with the right reason
