"""The daemon's periodic jobs: an expected failure is one warning line, a bug is logged with its traceback."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from intake.config import load_config
from intake.daemon import Daemon, Job, JobError
from intake.services import build_services
from tests.support import write_config


def test_job_failures_are_reported_by_kind(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    services = build_services(load_config(write_config(tmp_path)))

    def outage() -> None:
        raise JobError("smtp.126.com:465 unreachable: connection refused")

    def bug() -> None:
        raise KeyError("receipt")

    daemon = Daemon(services, [], None, jobs=[Job("acks", timedelta(seconds=30), outage), Job("x", timedelta(1), bug)])
    with caplog.at_level(logging.WARNING, logger="intake.daemon"):
        daemon._guard(daemon.jobs[0])()
        daemon._guard(daemon.jobs[1])()
    services.engine.dispose()
    assert daemon.health.jobs == {
        "acks": "smtp.126.com:465 unreachable: connection refused",
        "x": "KeyError: 'receipt'",
    }
    outage_log, bug_log = caplog.records
    assert (outage_log.levelname, outage_log.exc_info) == ("WARNING", None)
    assert outage_log.getMessage() == "job acks: smtp.126.com:465 unreachable: connection refused"
    assert bug_log.levelname == "ERROR" and bug_log.exc_info is not None


def test_a_database_outage_in_a_job_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from sqlalchemy.exc import OperationalError

    services = build_services(load_config(write_config(tmp_path)))

    def database_down() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused\nIs the server running?"))

    daemon = Daemon(services, [], None, jobs=[Job("acks", timedelta(seconds=30), database_down)])
    with caplog.at_level(logging.WARNING, logger="intake.daemon"):
        daemon._guard(daemon.jobs[0])()
    services.engine.dispose()
    (record,) = caplog.records
    assert record.levelname == "WARNING" and record.exc_info is None
    assert record.getMessage().startswith("job acks: (builtins.Exception) connection refused")
