"""Database engine for SQLite (WAL, in the data directory) or PostgreSQL, and schema migration."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def _json_dumps(value: Any) -> str:
    # orjson: JSON columns (document fields, problems) are read and written in bulk by regroups and exports,
    # where the standard library's encoder and decoder were a third of the time.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str, *, durable: bool = True, **kwargs: Any) -> Engine:
    """An engine with the settings intake relies on for durability and concurrency.

    `durable=False` is for writes that can be redone from the archive (message processing): a commit
    survives a process crash but may be lost on power loss, and costs no fsync. Anything that must hold
    before we act on the outside world (the poller before touching the server, sent acknowledgements,
    staff decisions) uses a durable engine.
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:" and not u.database.startswith("file:"):
            Path(u.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            private_sqlite_file(Path(u.database))
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            **kwargs,
        )
        sync = "FULL" if durable else "NORMAL"

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if u.get_backend_name() == "postgresql":
        engine = create_engine(
            url, pool_pre_ping=True, json_serializer=_json_dumps, json_deserializer=orjson.loads, **kwargs
        )
        if not durable:

            @event.listens_for(engine, "connect")
            def _async_commit(dbapi_conn: Any, _record: Any) -> None:
                with dbapi_conn.cursor() as cur:
                    cur.execute("SET synchronous_commit TO off")
                dbapi_conn.commit()

        return engine
    raise ValueError(f"unsupported database URL {u.render_as_string(hide_password=True)!r}: use sqlite or postgresql")


def private_sqlite_file(path: Path) -> None:
    """The database holds every applicant's personal data and the staff's password hashes: readable by its
    owner only (0600). Created so before SQLite opens it (its -wal and -shm files take the database's mode);
    an existing one open to others is tightened, with its -wal and -shm."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            if st.st_mode & 0o077 and st.st_uid == os.getuid():
                os.chmod(p, 0o600)
                log.warning("%s was readable by other users (mode %o): now 0600", p, st.st_mode & 0o777)
        return
    os.close(fd)


# Schema objects made by hand in migrations (the search index: an FTS5 table and its shadow tables, trigram
# indexes) that no model declares: alembic's comparisons leave them alone.
HAND_MADE = ("document_fts", "ix_document_text_trgm", "ix_document_filename_trgm")


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """alembic `include_name`: skip the hand-made search objects."""
    return not (name or "").startswith(HAND_MADE)


def head_revisions() -> set[str]:
    """Revisions no other revision builds on, read from the revision files without loading alembic.

    Areas of the product may branch off a common revision (each adds its own tables); `migrate` applies
    every head, and a merge revision joins them later.
    """
    revs: set[str] = set()
    downs: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"):
        text = path.read_text(encoding="utf-8")
        m = re.search(r"^revision\s*=\s*['\"](\w+)['\"]", text, re.M)
        if m:
            revs.add(m.group(1))
        d = re.search(r"^down_revision\s*=\s*(.+)$", text, re.M)
        if d:
            downs.update(re.findall(r"['\"](\w+)['\"]", d.group(1)))
    return revs - downs


def head_revision() -> str:
    """The single head (after merges); raises when the revisions have branched."""
    heads = head_revisions()
    if len(heads) != 1:
        raise RuntimeError(f"migrations have several heads: {sorted(heads)}")
    return heads.pop()


def _at_head(engine: Engine) -> bool:
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return False
        return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()) == head_revisions()


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision (alembic), safe with several daemons."""
    # Every command starts here: skip loading alembic and its scripts when there is nothing to do.
    if _at_head(engine):
        return
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Two daemons starting together must not both try to create the tables.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(726137)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return ",".join(sorted(heads)) or None


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as s:
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
