"""Build the process-wide Services (engine, migrations, archives) from a Config."""

from __future__ import annotations

from pathlib import Path

from intake.config import Config
from intake.pipeline import Services
from store.archive import Archive
from store.engine import make_engine, migrate


def build_services(config: Config, *, run_migrations: bool = True) -> Services:
    data = Path(config.data_dir)
    # The raw archive, attachments, database and session secret: for the service account only (a folder
    # made by an administrator keeps its mode; SECURITY.md says what it should be).
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(config.db_url)
    if run_migrations:
        migrate(engine)
    return Services(
        config=config,
        engine=engine,
        work_engine=make_engine(config.db_url, durable=False),
        archive=Archive(data / "messages", ".eml"),
        # Attachment bytes are derived from the archived message: no fsync needed.
        blobs=Archive(data / "blobs", durable=False),
    )
