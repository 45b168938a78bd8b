"""Store: migrations on SQLite and PostgreSQL, aware datetimes, the write-once archive."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlmodel import Session, select

from store.archive import Archive, ArchiveError, sha256_hex
from store.engine import MIGRATIONS, current_revision, head_revisions, make_engine, migrate
from store.models import Message


def test_migrations_create_the_schema_and_are_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    migrate(engine)
    assert current_revision(engine) == ",".join(sorted(head_revisions()))
    names = set(inspect(engine).get_table_names())
    assert {"message", "attachment", "mailbox_checkpoint", "mailbox_uid", "quarantine_event"} <= names
    revisions = sorted(p.name[:4] for p in (MIGRATIONS / "versions").glob("*.py"))
    assert revisions == [f"{i:04d}" for i in range(1, len(revisions) + 1)], "revision files must be numbered"
    engine.dispose()


def test_models_match_the_migrated_schema(db_url: str) -> None:
    """Hand-written migrations must create exactly what the models declare (alembic's own comparison)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    import store.models  # noqa: F401

    engine = make_engine(db_url)
    migrate(engine)
    with engine.connect() as conn:
        from store.engine import include_name

        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name})
        diff = compare_metadata(ctx, SQLModel.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_datetimes_are_stored_and_read_back_timezone_aware(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    cst = timezone(timedelta(hours=8))
    at = datetime(2026, 7, 7, 16, 59, 59, 999000, tzinfo=cst)
    with Session(engine) as s:
        s.add(Message(sha256="a" * 64, size=1, source="file", source_ref="x", received_at=at))
        s.commit()
    with Session(engine) as s:
        row = s.exec(select(Message)).one()
        assert row.received_at == at and row.received_at.tzinfo is not None
        assert row.received_at.utcoffset() == timedelta(0)
        assert row.created_at.tzinfo is not None
    with Session(engine) as s, pytest.raises(Exception, match="naive datetime"):
        s.add(Message(sha256="b" * 64, size=1, source="file", source_ref="y", received_at=datetime(2026, 7, 7)))
        s.commit()
    engine.dispose()


def test_archive_is_content_addressed_write_once_and_read_only(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "messages", ".eml")
    data = "申报材料".encode() * 1000
    sha = archive.put(data)
    assert sha == sha256_hex(data)
    path = archive.path_for(sha)
    assert path.read_bytes() == data and path.parent.parent == tmp_path / "messages"
    assert not os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    mtime = path.stat().st_mtime_ns
    assert archive.put(data) == sha  # again: nothing rewritten
    assert path.stat().st_mtime_ns == mtime
    assert archive.get(sha, verify=True) == data
    assert not list(path.parent.glob(".tmp-*"))
    with pytest.raises(ArchiveError, match="not a sha256"):
        archive.path_for("../../etc/passwd")
    with pytest.raises(ArchiveError, match="missing"):
        archive.get("0" * 64)


def test_archive_detects_corruption(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    sha = archive.put(b"original")
    path = archive.path_for(sha)
    os.chmod(path, 0o600)
    path.write_bytes(b"tampered")
    with pytest.raises(ArchiveError, match="does not match"):
        archive.get(sha, verify=True)


def test_aware_datetime_column_converts_offsets(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    at = datetime(2026, 7, 7, 9, 0, tzinfo=UTC)
    with Session(engine) as s:
        s.add(
            Message(
                sha256="c" * 64,
                size=1,
                source="file",
                source_ref="z",
                sent_at=at.astimezone(timezone(timedelta(hours=-5))),
            )
        )
        s.commit()
        assert s.exec(select(Message)).one().sent_at == at
    engine.dispose()
