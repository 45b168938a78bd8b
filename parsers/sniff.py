"""Tell what a file really is from its bytes (magic numbers and container structure), never its name."""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field
from enum import StrEnum


class FileType(StrEnum):
    """Real file types the dispatcher knows how to route."""

    docx = "docx"  # OOXML word processing (.docx/.docm/.dotx)
    xlsx = "xlsx"  # OOXML spreadsheet
    ooxml_other = "ooxml_other"  # pptx, or an OOXML zip of unknown flavour
    zip = "zip"
    rar = "rar"
    sevenzip = "7z"
    pdf = "pdf"
    doc = "doc"  # OLE2 Word 97-2003 (also .wps saved as Word 97)
    wps = "wps"  # OLE2 Kingsoft WPS native document
    xls = "xls"  # OLE2 Excel 97-2003
    ole_encrypted = "ole_encrypted"  # OLE2 EncryptedPackage: password-protected OOXML
    ole_other = "ole_other"
    rtf = "rtf"
    html = "html"  # Web pages saved as .doc/.xls by many government systems
    image = "image"
    text = "text"
    office_lockfile = "office_lockfile"  # ~$name.docx owner files attached by mistake
    empty = "empty"
    unknown = "unknown"


@dataclass
class Sniffed:
    """What sniff() found: the type, details (image subtype, encryption) and why."""

    type: FileType
    subtype: str = ""  # image format ("png", "jpeg"...), OOXML flavour, ...
    encrypted: bool = False
    notes: list[str] = field(default_factory=list)


_IMAGE_MAGIC: list[tuple[bytes, str]] = [
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
]

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def sniff(data: bytes, filename: str = "") -> Sniffed:
    """Classify `data` by content; the filename only breaks ties the bytes cannot (e.g. lock files)."""
    if not data:
        return Sniffed(FileType.empty)
    head = data[:16]
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    if head[:2] == b"PK" and head[2:4] in (b"\x03\x04", b"\x05\x06", b"\x06\x06", b"\x07\x08"):
        return _sniff_zip(data)
    # A PDF may carry junk before its header (the spec tolerates 1 KB of it).
    if b"%PDF-" in data[:1024]:
        return Sniffed(FileType.pdf)
    if head.startswith(OLE_MAGIC):
        return _sniff_ole(data, base)
    if head.startswith(b"Rar!\x1a\x07"):
        return Sniffed(FileType.rar, subtype="rar5" if head[6:7] == b"\x01" else "rar4")
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return Sniffed(FileType.sevenzip)
    for magic, sub in _IMAGE_MAGIC:
        if head.startswith(magic):
            return Sniffed(FileType.image, subtype=sub)
    if head[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return Sniffed(FileType.image, subtype="webp")
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"heim", b"heis", b"avif"):
        return Sniffed(FileType.image, subtype="heif")
    if head.startswith(b"{\\rtf"):
        return Sniffed(FileType.rtf)
    if head[:2] == b"\xdb\xa5":
        return Sniffed(FileType.doc, subtype="word2")
    if _is_lockfile(data) or (base.startswith("~$") and len(data) < 4096):
        return Sniffed(FileType.office_lockfile)
    stripped = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<html", b"<!doctype html", b"mime-version:")) or (
        stripped.startswith(b"<?xml") and b"<html" in stripped
    ):
        return Sniffed(FileType.html)
    if _looks_like_text(data[:8192]):
        return Sniffed(FileType.text)
    return Sniffed(FileType.unknown)


def _is_lockfile(data: bytes) -> bool:
    # Word's owner file: a length byte, the user name in the ANSI code page padded to 54 bytes, then the
    # same length and the name again in UTF-16; 162 or 165 bytes in all.
    if not 100 <= len(data) <= 200:
        return False
    n = data[0]
    return 0 < n <= 53 and len(data) > 0x37 and data[0x36] == n and b"\x00" not in data[1 : 1 + n]


def _looks_like_text(sample: bytes) -> bool:
    if b"\x00" in sample:
        # UTF-16 with BOM is text; other NULs mean binary.
        return sample[:2] in (b"\xff\xfe", b"\xfe\xff")
    for enc in ("utf-8", "gb18030"):
        try:
            s = sample.decode(enc)
        except UnicodeDecodeError:
            # A multi-byte character cut at the sample's end is not evidence of binary.
            try:
                s = sample[:-4].decode(enc)
            except UnicodeDecodeError:
                continue
        bad = sum(1 for c in s if ord(c) < 32 and c not in "\t\r\n\f")
        return bad <= len(s) // 100
    return False


def _sniff_zip(data: bytes) -> Sniffed:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = zf.namelist()
    except Exception as exc:  # a broken zip is still a zip: the archive reader reports why
        return Sniffed(FileType.zip, notes=[f"zip directory unreadable: {exc}"])
    nameset = set(names)
    encrypted = any(i.flag_bits & 0x1 for i in zf.infolist())
    if "[Content_Types].xml" in nameset or any(n.startswith(("word/", "xl/", "ppt/")) for n in names[:50]):
        if "word/document.xml" in nameset or any(n.startswith("word/") for n in names):
            return Sniffed(FileType.docx, subtype="docx", encrypted=encrypted)
        if "xl/workbook.xml" in nameset or any(n.startswith("xl/") for n in names):
            return Sniffed(FileType.xlsx, subtype="xlsx", encrypted=encrypted)
        if any(n.startswith("ppt/") for n in names):
            return Sniffed(FileType.ooxml_other, subtype="pptx", encrypted=encrypted)
        return Sniffed(FileType.ooxml_other, encrypted=encrypted)
    if "mimetype" in nameset:
        try:
            mt = zf.read("mimetype")[:100].decode("ascii", "replace")
        except Exception:
            mt = ""
        if "opendocument" in mt:
            return Sniffed(FileType.ooxml_other, subtype="odf:" + mt.strip())
    if "OFD.xml" in nameset:
        return Sniffed(FileType.ooxml_other, subtype="ofd")
    return Sniffed(FileType.zip, encrypted=encrypted)


def ole_stream_names(data: bytes, limit: int = 4096) -> list[str]:
    """Names of the entries in an OLE2 compound file's directory (bounded; [] when unreadable)."""
    if len(data) < 512 or not data.startswith(OLE_MAGIC):
        return []
    try:
        sector_shift = struct.unpack_from("<H", data, 30)[0]
        if sector_shift not in (9, 12):
            return []
        ssize = 1 << sector_shift
        dir_start = struct.unpack_from("<I", data, 48)[0]
        difat = list(struct.unpack_from("<109I", data, 76))
        nsect = (len(data) - 512) // ssize + 1

        def sector(n: int) -> bytes:
            off = 512 + n * ssize
            return data[off : off + ssize]

        # FAT sectors listed in the header's DIFAT (the first 109 cover files up to ~7 MB with 512 B
        # sectors; the directory of a Word file sits early, so that is enough to find its names).
        fat: list[int] = []
        for s in difat:
            if s >= 0xFFFFFFFA or s >= nsect:
                continue
            chunk = sector(s)
            fat.extend(struct.unpack_from(f"<{len(chunk) // 4}I", chunk))
        names: list[str] = []
        s = dir_start
        seen: set[int] = set()
        while s < 0xFFFFFFFA and s < nsect and s not in seen and len(names) < limit:
            seen.add(s)
            chunk = sector(s)
            for i in range(0, len(chunk) - 127, 128):
                nlen = struct.unpack_from("<H", chunk, i + 64)[0]
                if 2 <= nlen <= 64 and chunk[i + 66] in (1, 2, 5):
                    names.append(chunk[i : i + nlen - 2].decode("utf-16-le", "replace"))
            s = fat[s] if s < len(fat) else 0xFFFFFFFE
        return names
    except (struct.error, IndexError):
        return []


def _word_fib_encrypted(data: bytes) -> bool | None:
    """Whether a Word 97 file's FIB says fEncrypted; None when the FIB cannot be found cheaply."""
    # The WordDocument stream usually starts at a sector boundary with the FIB magic 0xA5EC; scanning
    # sector starts for it avoids walking the FAT chain.
    try:
        sector_shift = struct.unpack_from("<H", data, 30)[0]
    except struct.error:
        return None
    ssize = 1 << sector_shift if sector_shift in (9, 12) else 512
    for off in range(512, min(len(data), 512 + 64 * ssize), ssize):
        if data[off : off + 2] == b"\xec\xa5":
            flags = struct.unpack_from("<H", data, off + 10)[0]
            return bool(flags & 0x0100)
    return None


def _sniff_ole(data: bytes, base: str) -> Sniffed:
    names = ole_stream_names(data)
    lower = {n.lower() for n in names}
    if "encryptioninfo" in lower or "encryptedpackage" in lower:
        return Sniffed(
            FileType.ole_encrypted, encrypted=True, notes=["OLE2 EncryptedPackage (encrypted OOXML)"]
        )
    if "worddocument" in lower:
        enc = _word_fib_encrypted(data)
        return Sniffed(FileType.doc, encrypted=bool(enc))
    if "workbook" in lower or "book" in lower:
        return Sniffed(FileType.xls)
    if any(n.startswith("wps") for n in lower) or base.lower().endswith(".wps"):
        return Sniffed(FileType.wps)
    if not names and base.lower().endswith((".doc", ".wps", ".dot")):
        # Directory unreadable (damaged or truncated): let the Word path try and report.
        return Sniffed(FileType.doc, notes=["OLE2 directory unreadable"])
    return Sniffed(FileType.ole_other, notes=[f"OLE2 streams: {', '.join(sorted(names)[:8])}"])
