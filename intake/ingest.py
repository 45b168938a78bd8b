"""Ingest messages from files (.eml, folders, Maildir, mbox) as if they had arrived by IMAP."""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from intake.pipeline import Services
from store.archive import sha256_hex
from store.models import Message

# A file larger than this is not an application email: refuse it before reading it into memory.
MAX_MESSAGE_BYTES = 200 * 1024 * 1024


@dataclass
class Rejected:
    source: str
    reason: str


@dataclass
class IngestResult:
    new_ids: list[int] = field(default_factory=list)
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    total: int = 0


@dataclass(frozen=True)
class Source:
    """One message found on disk: where it came from, and how to read it."""

    ref: str
    path: Path
    key: str | None = None  # key inside a Maildir / mbox
    kind: str = "file"  # file | maildir | mbox


def _is_maildir(p: Path) -> bool:
    return p.is_dir() and (p / "cur").is_dir() and (p / "new").is_dir()


def _is_mbox(p: Path) -> bool:
    try:
        with p.open("rb") as f:
            return f.read(5) == b"From "
    except OSError:
        return False


def discover(paths: list[Path]) -> Iterator[Source | Rejected]:
    """Every message under the given paths, in a stable order; unreadable paths are Rejected."""
    for p in paths:
        if not p.exists():
            yield Rejected(str(p), "no such file or folder")
        elif _is_maildir(p):
            md = mailbox.Maildir(p, factory=None, create=False)
            for key in sorted(md.iterkeys()):
                yield Source(f"{p}#{key}", p, key, "maildir")
            for sub in sorted(md.list_folders()):
                yield from discover([p / f".{sub}"])
        elif p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                rootp = Path(root)
                if _is_maildir(rootp) and rootp != p:
                    dirs.clear()
                    yield from discover([rootp])
                    continue
                for name in sorted(files):
                    fp = rootp / name
                    if name.lower().endswith(".eml"):
                        yield Source(str(fp), fp)
                    elif name.lower().endswith((".mbox", ".mbx")) or (not name.startswith(".") and _is_mbox(fp)):
                        yield from discover([fp])
        elif _is_mbox(p):
            mb = mailbox.mbox(p, factory=None, create=False)
            for i, key in enumerate(mb.iterkeys()):
                yield Source(f"{p}#{i + 1}", p, str(key), "mbox")
        else:
            yield Source(str(p), p)


def read_source(src: Source) -> bytes:
    if src.kind == "maildir":
        return mailbox.Maildir(src.path, factory=None, create=False).get_bytes(src.key or "")
    if src.kind == "mbox":
        # mbox keys are integers (Maildir keys are strings).
        return mailbox.mbox(src.path, factory=None, create=False).get_bytes(int(src.key or 0))  # type: ignore[arg-type]
    size = src.path.stat().st_size
    if size > MAX_MESSAGE_BYTES:
        raise ValueError(f"file is {size // (1024 * 1024)} MB, over the {MAX_MESSAGE_BYTES // (1024 * 1024)} MB limit")
    return src.path.read_bytes()


def _looks_like_message(raw: bytes) -> str | None:
    """Reason the bytes are not an email at all, or None. Deeper problems are the parser's to find."""
    if not raw.strip():
        return "empty file"
    head = raw[:4096]
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "an Outlook .msg / OLE2 file, not an RFC 5322 message (save it as .eml)"
    if head.startswith((b"%PDF", b"PK\x03\x04")):
        return "a document, not an email message"
    # Anything else goes to the parser, which quarantines what it cannot read (with the reason).
    return None


def ingest_one(services: Services, raw: bytes, ref: str) -> tuple[int | None, bool]:
    """Archive and record one message; returns (message id, created). Same bytes twice → same row."""
    sha = sha256_hex(raw)
    with Session(services.engine) as s:
        row = s.exec(select(Message).where(Message.sha256 == sha)).first()
        if row is not None:
            return row.id, False
    services.archive.put(raw, sha)
    with Session(services.engine) as s:
        row = Message(sha256=sha, size=len(raw), source="file", source_ref=ref)
        s.add(row)
        try:
            s.commit()
        except IntegrityError:
            s.rollback()
            existing = s.exec(select(Message).where(Message.sha256 == sha)).one()
            return existing.id, False
        return row.id, True


def ingest_paths(services: Services, paths: list[Path], progress: object | None = None) -> IngestResult:
    """Record every message found under `paths` (without processing it)."""
    result = IngestResult()
    for item in discover(paths):
        result.total += 1
        if isinstance(item, Rejected):
            result.rejected.append(item)
            continue
        try:
            raw = read_source(item)
        except (OSError, ValueError, KeyError) as e:
            result.rejected.append(Rejected(item.ref, f"cannot read: {e}"))
            continue
        why = _looks_like_message(raw)
        if why:
            result.rejected.append(Rejected(item.ref, why))
            continue
        mid, created = ingest_one(services, raw, item.ref)
        if created and mid is not None:
            result.new_ids.append(mid)
        else:
            result.duplicates += 1
    return result
