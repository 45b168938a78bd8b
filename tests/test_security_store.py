"""Data at rest: the data folder, the SQLite database (and its WAL) and the archive are not readable by others."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from intake.config import load_config
from intake.services import build_services
from store.engine import make_engine
from tests.support import write_config


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_a_new_data_folder_and_database_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # what a login shell or systemd gives by default
    try:
        config = write_config(tmp_path, sections={"store": {"data_dir": "data", "url": "sqlite:///data/intake.db"}})
        services = build_services(load_config(config))
        try:
            with services.engine.begin() as conn:
                conn.execute(text("CREATE TABLE probe (x TEXT)"))
                conn.execute(text("INSERT INTO probe VALUES ('申报单位联系人 13800000000')"))
            raw = services.archive.put(b"From: a@b.cn\r\n\r\nhi\r\n")
            data = tmp_path / "data"
            assert _mode(data) == 0o700
            db = data / "intake.db"
            assert _mode(db) == 0o600
            wal = data / "intake.db-wal"
            assert wal.exists() and _mode(wal) & 0o077 == 0
            assert _mode(services.archive.path_for(raw)) & 0o007 == 0
        finally:
            services.close()
            services.engine.dispose()
    finally:
        os.umask(old)


def test_an_existing_database_open_to_others_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
    engine.dispose()
    os.chmod(db, 0o644)
    engine = make_engine(f"sqlite:///{db}")
    try:
        assert _mode(db) == 0o600
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    finally:
        engine.dispose()


def test_a_new_log_file_is_private(tmp_path: Path) -> None:
    import logging

    from intake.config import LoggingConfig
    from intake.logsetup import setup_logging

    log_file = tmp_path / "intake.log"
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    old = os.umask(0o022)
    try:
        setup_logging(LoggingConfig(file=str(log_file)))
        logging.getLogger("intake.test").warning("ack for message 1: pending to applicant@example.cn")
    finally:
        os.umask(old)
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()
        for h in before[0]:
            root.addHandler(h)
        root.setLevel(before[1])
    assert _mode(log_file) == 0o600
    assert "applicant@example.cn" in log_file.read_text(encoding="utf-8")
