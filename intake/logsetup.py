"""Logging set-up from the [logging] section: level, optional file, text or JSON lines."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from intake.config import LoggingConfig


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(cfg: LoggingConfig, *, verbose: bool = False) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler: logging.Handler
    if cfg.file:
        # The log names applicants (addresses, file names): a new file is for the service account only; an
        # existing one keeps the mode its administrator gave it (a log group, logrotate's create mode).
        os.close(os.open(cfg.file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    handler = logging.FileHandler(cfg.file, encoding="utf-8") if cfg.file else logging.StreamHandler(sys.stderr)
    if cfg.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel("DEBUG" if verbose else cfg.level)
    # imapclient logs every command at DEBUG, including the LOGIN line with the password masked only
    # partially in some versions: keep it quiet unless asked.
    logging.getLogger("imapclient").setLevel(logging.WARNING)
    # Migrations at every start-up would otherwise print a dozen lines.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # APScheduler announces every run at INFO, and at WARNING each run it skips because the previous one
    # is still busy — expected when a poll or a send outlasts its interval (the cycle reruns itself).
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
