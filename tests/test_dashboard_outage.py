"""The dashboard during a database outage: a 503 page saying so, one log line, and back when it returns."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from dashboard.app import create_app
from dashboard.users import add_user
from devservices.postgres import Postgres
from intake.config import load_config
from intake.services import build_services
from tests.support import write_config


def test_database_restart_gives_503_not_a_traceback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pg = Postgres(tmp_path / "pg").start()
    try:
        cfg = load_config(write_config(tmp_path, db_url=pg.create_database("outage")))
        services = build_services(cfg)
        with Session(services.engine) as s:
            add_user(s, "rao", "staff", "a-long-enough-password", by="test")
            s.commit()
        client = TestClient(create_app(services), raise_server_exceptions=True)
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        r = client.post("/login", data={"username": "rao", "password": "a-long-enough-password",
                                        "csrf_token": token.group(1)}, follow_redirects=False)  # fmt: skip
        assert r.status_code == 303
        assert client.get("/applications").status_code == 200

        pg.stop()
        with caplog.at_level(logging.WARNING, logger="dashboard.app"):
            down = client.get("/applications")
        assert down.status_code == 503 and down.headers["retry-after"] == "5"
        assert "数据库暂时不可用" in down.text
        assert [r.getMessage().split(":")[0] for r in caplog.records] == ["dashboard"]
        assert all(r.exc_info is None for r in caplog.records)

        pg.start()
        # Pooled connections to the old server are dead: pre-ping replaces them, nobody has to restart.
        assert client.get("/applications").status_code == 200
        services.engine.dispose()
    finally:
        pg.stop()
