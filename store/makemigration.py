"""Developer tool: autogenerate an alembic revision from the models: `python -m store.makemigration MSG`."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig

from store.engine import MIGRATIONS, make_engine


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m store.makemigration 'what changed'", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        # Autogenerate compares the models with a database at the current head.
        engine = make_engine(f"sqlite:///{Path(tmp) / 'head.db'}")
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            n = len(list((MIGRATIONS / "versions").glob("*.py")))
            command.revision(cfg, message=argv[0], autogenerate=True, rev_id=f"{n + 1:04d}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
