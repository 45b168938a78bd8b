"""Read zip / 7z / rar archives into memory under size, count and ratio limits, decoding Chinese names."""

from __future__ import annotations

import io
import itertools
import os
import shutil
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from parsers.sniff import FileType

ENCRYPTED_REASON = "加密文件，无法打开 (encrypted)"

# Members nobody meant to send: macOS resource forks, Finder/Explorer metadata, Office owner files.
_JUNK_DIRS = ("__MACOSX/",)
_JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini", "ehthumbs.db"}


@dataclass
class ArchiveLimits:
    """Bounds an archive must respect; declared sizes are checked first and enforced while reading."""

    max_members: int = 300
    max_member_size: int = 64 * 1024 * 1024
    max_total_size: int = 256 * 1024 * 1024
    # Uncompressed/compressed ratio above which a member is treated as a bomb (checked only for
    # members above `ratio_floor` bytes: tiny text files compress extremely well legitimately).
    max_ratio: float = 150.0
    ratio_floor: int = 2 * 1024 * 1024


@dataclass
class Member:
    """One file inside an archive: its decoded path and bytes, or the reason it could not be read."""

    path: str
    data: bytes | None = field(default=None, repr=False)
    problem: str | None = None
    # The member is itself an archive that was not opened because it was nested too deep.
    size: int = 0


@dataclass
class ArchiveResult:
    """Members read from an archive, non-fatal warnings, and an error when the archive as a whole failed."""

    members: list[Member] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


class LimitExceeded(Exception):
    """A size/count/ratio limit was hit while reading: the reason is the message."""


def is_junk(path: str) -> bool:
    """Metadata files that archivers and desktops add and nobody meant to send."""
    p = path.replace("\\", "/")
    base = p.rstrip("/").rsplit("/", 1)[-1]
    return (
        any(p.startswith(d) or f"/{d}" in p for d in _JUNK_DIRS)
        or base in _JUNK_NAMES
        or base.startswith("~$")
        or base.startswith("._")
    )


def decode_zip_name(info: zipfile.ZipInfo) -> str:
    """The member name as the sender saw it.

    Windows Chinese tools (WinRAR, 360压缩, Explorer) write names in the ANSI code page (GBK) without
    setting the UTF-8 flag (bit 11); zipfile then decodes them as cp437 mojibake. Recover the raw bytes and
    decode them properly: the Info-ZIP Unicode Path extra field when present and consistent, else UTF-8,
    GB18030, Shift-JIS, in that order of likelihood for this mailbox.
    """
    if info.flag_bits & 0x800:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    upath = _unicode_path_extra(info.extra, raw)
    if upath:
        return upath
    return decode_legacy_name(raw)


def decode_legacy_name(raw: bytes) -> str:
    """Decode a file name written in an unknown legacy code page (most likely GBK here)."""
    if all(b < 0x80 for b in raw):
        return raw.decode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    gb: str | None
    try:
        gb = raw.decode("gb18030")
    except UnicodeDecodeError:
        gb = None
    if gb is not None:
        try:
            # Names made of common simplified characters (GB2312) are Chinese beyond reasonable doubt.
            gb.encode("gb2312")
            return gb
        except UnicodeEncodeError:
            pass
    try:
        sj = raw.decode("cp932")
        # Kana are the tell-tale of Japanese; without them prefer the Chinese reading.
        if any("\u3040" <= c <= "\u30ff" for c in sj) or gb is None:
            return sj
    except UnicodeDecodeError:
        pass
    if gb is not None:
        return gb
    return raw.decode("cp437")


def _unicode_path_extra(extra: bytes, raw_name: bytes) -> str | None:
    i = 0
    while i + 4 <= len(extra):
        hid, size = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4 : i + 4 + size]
        if hid == 0x7075 and len(body) >= 5 and body[0] == 1:
            crc = struct.unpack_from("<I", body, 1)[0]
            if crc == zlib.crc32(raw_name):
                try:
                    return body[5:].decode("utf-8")
                except UnicodeDecodeError:
                    return None
        i += 4 + size
    return None


def _clean_path(name: str) -> str:
    # Names are only labels here (nothing is written under them), but keep them readable and free of
    # traversal-looking prefixes so reports do not suggest otherwise.
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "(unnamed)"


class _Budget:
    """Counts bytes read across members so that lying headers cannot exceed the limits."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.total = 0

    def take(self, n: int, member_so_far: int) -> None:
        self.total += n
        if member_so_far > self.limits.max_member_size:
            raise LimitExceeded(f"member larger than {self.limits.max_member_size // (1024 * 1024)} MB")
        if self.total > self.limits.max_total_size:
            raise LimitExceeded(
                f"archive expands to more than {self.limits.max_total_size // (1024 * 1024)} MB (zip bomb?)"
            )


def read_archive(data: bytes, ftype: FileType, limits: ArchiveLimits | None = None) -> ArchiveResult:
    """Read every member of a zip / 7z / rar archive into memory, or say why not."""
    limits = limits or ArchiveLimits()
    try:
        if ftype == FileType.zip:
            return _read_zip(data, limits)
        if ftype == FileType.sevenzip:
            return _read_7z(data, limits)
        if ftype == FileType.rar:
            return _read_rar(data, limits)
    except LimitExceeded as exc:
        return ArchiveResult(error=str(exc))
    except MemoryError:
        return ArchiveResult(error="exceeded memory limit")
    except Exception as exc:  # hostile archives raise anything; the reason is recorded, never raised
        return ArchiveResult(error=f"damaged archive ({type(exc).__name__}: {_short(exc)})")
    return ArchiveResult(error=f"not an archive ({ftype})")


def _short(exc: BaseException) -> str:
    s = str(exc).strip() or type(exc).__name__
    return s[:200]


# ---------------------------------------------------------------- zip


def _read_zip(data: bytes, limits: ArchiveLimits) -> ArchiveResult:
    res = ArchiveResult()
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        res.error = f"damaged zip ({_short(exc)})"
        return res
    infos = zf.infolist()
    if len(infos) > limits.max_members * 4:
        res.error = f"too many members ({len(infos)} > {limits.max_members})"
        return res
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_total_size:
        res.error = (
            f"archive declares {declared // (1024 * 1024)} MB uncompressed, over the "
            f"{limits.max_total_size // (1024 * 1024)} MB limit (zip bomb?)"
        )
        return res
    # Overlapping local headers are the signature of a non-recursive zip bomb: several entries share one
    # compressed stream. A real archiver never writes that.
    offsets = sorted((i.header_offset, i.compress_size) for i in infos)
    for (o1, s1), (o2, _s2) in itertools.pairwise(offsets):
        if o2 < o1 + s1:
            res.error = "overlapping members (zip bomb)"
            return res
    budget = _Budget(limits)
    count = 0
    for info in infos:
        name = decode_zip_name(info)
        if info.is_dir() or is_junk(name):
            continue
        path = _clean_path(name)
        mode = (info.external_attr >> 16) & 0o170000
        if mode == 0o120000:
            res.warnings.append(f"{path}: symbolic link ignored")
            continue
        count += 1
        if count > limits.max_members:
            res.warnings.append(f"more than {limits.max_members} files: the rest were not read")
            break
        if info.flag_bits & 0x1:
            res.members.append(Member(path, problem=ENCRYPTED_REASON, size=info.file_size))
            continue
        if info.file_size > limits.max_member_size:
            res.members.append(
                Member(
                    path,
                    problem=f"file too large ({info.file_size // (1024 * 1024)} MB)",
                    size=info.file_size,
                )
            )
            continue
        if info.file_size > limits.ratio_floor and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            res.members.append(
                Member(path, problem="suspicious compression ratio (zip bomb?)", size=info.file_size)
            )
            continue
        try:
            blob = _read_stream(zf.open(info), info.file_size, budget)
        except LimitExceeded:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
            msg = _short(exc)
            if "CRC" in msg or "crc" in msg:
                msg = "CRC error: the file is damaged"
            res.members.append(Member(path, problem=f"damaged member ({msg})", size=info.file_size))
            continue
        res.members.append(Member(path, data=blob, size=len(blob)))
    return res


def _read_stream(fh: Any, declared: int, budget: _Budget) -> bytes:
    buf = bytearray()
    with fh:
        while True:
            chunk = fh.read(1 << 16)
            if not chunk:
                break
            buf += chunk
            budget.take(len(chunk), len(buf))
            # Declared sizes lie in bombs: never read much past what the header promised.
            if len(buf) > declared + (1 << 16) and declared >= 0:
                raise LimitExceeded("member larger than its header declares (zip bomb?)")
    return bytes(buf)


# ---------------------------------------------------------------- 7z


def _read_7z(data: bytes, limits: ArchiveLimits) -> ArchiveResult:
    import py7zr
    from py7zr import io as pio

    res = ArchiveResult()
    try:
        sz = py7zr.SevenZipFile(io.BytesIO(data), mode="r")
    except py7zr.PasswordRequired:
        res.error = ENCRYPTED_REASON
        return res
    except Exception as exc:
        if "password" in str(exc).lower():
            res.error = ENCRYPTED_REASON
        else:
            res.error = f"damaged 7z ({type(exc).__name__}: {_short(exc)})"
        return res
    with sz:
        if sz.needs_password():
            res.error = ENCRYPTED_REASON
            return res
        entries = sz.list()
        if len(entries) > limits.max_members * 4:
            res.error = f"too many members ({len(entries)} > {limits.max_members})"
            return res
        declared = sum(int(e.uncompressed or 0) for e in entries)
        if declared > limits.max_total_size:
            res.error = (
                f"archive declares {declared // (1024 * 1024)} MB uncompressed, over the "
                f"{limits.max_total_size // (1024 * 1024)} MB limit (bomb?)"
            )
            return res
        wanted: list[str] = []
        for e in entries:
            if e.is_directory or is_junk(e.filename):
                continue
            if getattr(e, "is_symlink", False):
                res.warnings.append(f"{_clean_path(e.filename)}: symbolic link ignored")
                continue
            if int(e.uncompressed or 0) > limits.max_member_size:
                res.members.append(
                    Member(_clean_path(e.filename), problem="file too large", size=int(e.uncompressed))
                )
                continue
            wanted.append(e.filename)
            if len(wanted) >= limits.max_members:
                res.warnings.append(f"more than {limits.max_members} files: the rest were not read")
                break
        budget = _Budget(limits)

        class _Capped(pio.Py7zIO):
            def __init__(self) -> None:
                self.buf = io.BytesIO()

            def write(self, s: bytes | bytearray) -> int:
                budget.take(len(s), self.buf.tell() + len(s))
                return self.buf.write(s)

            def read(self, size: int | None = None) -> bytes:
                return b""

            def seek(self, offset: int, whence: int = 0) -> int:
                return self.buf.seek(offset, whence)

            def flush(self) -> None:
                return None

            def size(self) -> int:
                return self.buf.tell()

        class _Factory(pio.WriterFactory):
            def __init__(self) -> None:
                self.products: dict[str, _Capped] = {}

            def create(self, filename: str) -> pio.Py7zIO:
                p = _Capped()
                self.products[filename] = p
                return p

        factory = _Factory()
        if wanted:
            sz.extract(targets=wanted, factory=factory)
        for name in wanted:
            prod = factory.products.get(name)
            path = _clean_path(name)
            if prod is None:
                res.members.append(Member(path, problem="member could not be decompressed"))
            else:
                blob = prod.buf.getvalue()
                res.members.append(Member(path, data=blob, size=len(blob)))
    return res


# ---------------------------------------------------------------- rar


def _read_rar(data: bytes, limits: ArchiveLimits) -> ArchiveResult:
    import rarfile

    res = ArchiveResult()
    # rarfile hands the archive to an external tool (unrar / unar / 7z) by path: give it a private copy
    # under a generated name. Members are streamed back through a pipe, never extracted under their names.
    tmpdir = tempfile.mkdtemp(prefix="intake-rar-")
    try:
        path = os.path.join(tmpdir, "archive.rar")
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            rf = rarfile.RarFile(path)
        except rarfile.PasswordRequired:
            res.error = ENCRYPTED_REASON
            return res
        except rarfile.NeedFirstVolume:
            res.error = "multi-volume RAR: this is not the first part"
            return res
        except rarfile.Error as exc:
            msg = _short(exc)
            if "password" in msg.lower():
                res.error = ENCRYPTED_REASON
            elif "volume" in msg.lower():
                res.error = "multi-volume RAR: the other parts are missing"
            else:
                res.error = f"damaged RAR ({msg})"
            return res
        with rf:
            if rf.needs_password() and not rf.infolist():
                res.error = ENCRYPTED_REASON
                return res
            infos = rf.infolist()
            if len(infos) > limits.max_members * 4:
                res.error = f"too many members ({len(infos)} > {limits.max_members})"
                return res
            declared = sum(int(i.file_size or 0) for i in infos)
            if declared > limits.max_total_size:
                res.error = (
                    f"archive declares {declared // (1024 * 1024)} MB uncompressed, over the "
                    f"{limits.max_total_size // (1024 * 1024)} MB limit (bomb?)"
                )
                return res
            volumes = any(getattr(i, "flags", 0) & 0x1 for i in infos) or rf.volumelist()[1:]
            budget = _Budget(limits)
            count = 0
            for info in infos:
                name = info.filename or ""
                if info.is_dir() or is_junk(name):
                    continue
                p = _clean_path(name)
                if info.is_symlink():
                    res.warnings.append(f"{p}: symbolic link ignored")
                    continue
                count += 1
                if count > limits.max_members:
                    res.warnings.append(f"more than {limits.max_members} files: the rest were not read")
                    break
                if info.needs_password():
                    res.members.append(Member(p, problem=ENCRYPTED_REASON, size=int(info.file_size or 0)))
                    continue
                if int(info.file_size or 0) > limits.max_member_size:
                    res.members.append(Member(p, problem="file too large", size=int(info.file_size)))
                    continue
                try:
                    blob = _read_stream(rf.open(info), int(info.file_size or 0), budget)
                except LimitExceeded:
                    raise
                except rarfile.NeedFirstVolume:
                    res.members.append(Member(p, problem="multi-volume RAR: other parts missing"))
                    continue
                except (rarfile.Error, OSError, EOFError, ValueError) as exc:
                    reason = _short(exc)
                    if volumes:
                        reason = f"multi-volume RAR: other parts missing ({reason})"
                    res.members.append(Member(p, problem=f"damaged member ({reason})"))
                    continue
                res.members.append(Member(p, data=blob, size=len(blob)))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return res


def iter_members(res: ArchiveResult) -> Iterator[Member]:
    """Members in archive order (a convenience for callers that only want readable ones)."""
    yield from res.members
