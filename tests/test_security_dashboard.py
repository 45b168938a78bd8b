"""Dashboard hardening found by the security review (SECURITY.md): request body limits, logout, previews."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import write_config

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PASSWORDS = {"alice": "alice-staff-pw", "bob": "bob-viewer-pw"}
ROLES = {"alice": "staff", "bob": "viewer"}


@dataclass
class Dash:
    services: Any
    app: Any

    def client(self) -> TestClient:
        return TestClient(self.app)


@pytest.fixture
def dash(tmp_path: Path) -> Iterator[Dash]:
    from sqlmodel import Session

    from dashboard.app import create_app
    from dashboard.users import add_user
    from intake.config import load_config
    from intake.services import build_services

    config = write_config(tmp_path, sections={"dashboard": {"enabled": True, "secret_env": "INTAKE_TEST_NO_SECRET"}})
    services = build_services(load_config(config))
    with Session(services.engine) as s:
        for name, role in ROLES.items():
            add_user(s, name, role, PASSWORDS[name], by="test")
        s.commit()
    try:
        yield Dash(services, create_app(services))
    finally:
        services.close()
        services.engine.dispose()


def csrf_of(c: TestClient, path: str = "/login") -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', c.get(path).text)
    assert m is not None
    return m.group(1)


def login(c: TestClient, user: str) -> str:
    r = c.post(
        "/login",
        data={"username": user, "password": PASSWORDS[user], "csrf_token": csrf_of(c)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:300]
    return csrf_of(c, "/paper")


def test_anonymous_request_bodies_are_bounded(dash: Dash) -> None:
    """Anyone can post to /login; a file part used to be spooled to disk whatever its size before any check."""
    c = dash.client()
    token = csrf_of(c)
    big = b"x" * (20 * 1024 * 1024)
    r = c.post(
        "/login",
        data={"username": "alice", "password": "x", "csrf_token": token},
        files={"junk": ("junk.bin", big)},
        follow_redirects=False,
    )
    assert r.status_code == 413
    # Without a Content-Length (chunked), the limit is counted as the body arrives.
    r = c.post(
        "/login",
        content=(b"username=" + b"a" * 65536 for _ in range(8)),
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert r.status_code == 413
    # An ordinary login still works.
    assert login(c, "alice")


def test_paper_import_keeps_its_10_mb_but_no_more(dash: Dash) -> None:
    from dashboard.pages.paper import MAX_UPLOAD

    c = dash.client()
    token = login(c, "alice")
    near = b"a" * (MAX_UPLOAD - 1024)
    r = c.post(
        "/paper/import", data={"csrf_token": token}, files={"file": ("log.txt", near)}, follow_redirects=False
    )
    # Through the size limit to the handler, which refuses the extension.
    assert r.status_code == 303
    over = b"a" * (MAX_UPLOAD + 128 * 1024)
    r = c.post(
        "/paper/import", data={"csrf_token": token}, files={"file": ("log.xlsx", over)}, follow_redirects=False
    )
    assert r.status_code == 413


def test_logout_makes_a_copied_session_cookie_worthless(dash: Dash) -> None:
    from dashboard.security import COOKIE

    c = dash.client()
    token = login(c, "alice")
    stolen = c.cookies.get(COOKIE)
    assert stolen
    other = dash.client()
    other.cookies.set(COOKIE, stolen)
    assert other.get("/", follow_redirects=False).status_code == 200
    r = c.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    # The copy taken before the logout no longer opens anything.
    replay = dash.client()
    replay.cookies.set(COOKIE, stolen)
    r = replay.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    # Logging in again works as before.
    assert login(dash.client(), "alice")


def test_a_session_secret_file_open_to_others_is_tightened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard.security import SECRET_FILE, session_secret
    from intake.config import load_config

    monkeypatch.delenv("INTAKE_TEST_NO_SECRET", raising=False)
    config = load_config(
        write_config(tmp_path, sections={"dashboard": {"enabled": True, "secret_env": "INTAKE_TEST_NO_SECRET"}})
    )
    first = session_secret(config)
    path = Path(config.data_dir) / SECRET_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)
    assert session_secret(config) == first
    assert path.stat().st_mode & 0o777 == 0o600


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\nshowpage\n%%EOF\n"


def test_previews_never_hand_a_file_to_ghostscript_or_rarely_used_decoders() -> None:
    """Pillow opens EPS by running Ghostscript (a long list of code-execution bugs) when it is installed."""
    import io

    from PIL import Image, UnidentifiedImageError

    from dashboard.files import _render

    assert Image.open(io.BytesIO(EPS)).format == "EPS"  # what Pillow does by default
    with pytest.raises(UnidentifiedImageError):
        _render(EPS, "image", 0)
    png = io.BytesIO()
    Image.new("RGB", (4, 3), "red").save(png, "PNG")
    out, pages = _render(png.getvalue(), "image", 0)
    assert pages == 1 and Image.open(io.BytesIO(out)).size == (4, 3)


def test_previews_are_drawn_a_few_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard import files

    monkeypatch.setattr(files, "PREVIEW_SECONDS", 0.2)
    taken = 0
    while files.PREVIEW_SLOTS.acquire(blocking=False):
        taken += 1
    try:
        assert 1 <= taken <= 4
        with pytest.raises(files.FileUnavailable, match="繁忙"):
            files.render_preview(b"%PDF-1.4", "pdf_text", 0)
    finally:
        for _ in range(taken):
            files.PREVIEW_SLOTS.release()


# -- work on uploaded files runs in a limited child (SECURITY.md O1) ------------------------------------------


def _sleep_forever() -> None:
    import time

    time.sleep(3600)


def _allocate(n: int) -> int:
    return len(bytearray(n))


def _fail() -> None:
    raise ValueError("bad cell")


def test_limited_children_answer_time_outs_deaths_and_errors_as_values() -> None:
    from dashboard.limited import LimitExceeded, run_limited

    assert run_limited(_allocate, (1000,), seconds=30, memory=512 * 2**20) == 1000
    with pytest.raises(LimitExceeded) as e:
        run_limited(_sleep_forever, (), seconds=1, memory=512 * 2**20)
    assert e.value.reason == "timeout"
    # 2 GB in a child limited to 512 MB: the child fails, the caller gets a value.
    with pytest.raises(LimitExceeded) as e:
        run_limited(_allocate, (2 * 2**30,), seconds=30, memory=512 * 2**20)
    assert e.value.reason in ("error", "died") and ("MemoryError" in str(e.value) or e.value.reason == "died")
    with pytest.raises(LimitExceeded) as e:
        run_limited(_fail, (), seconds=30, memory=512 * 2**20)
    assert (e.value.reason, str(e.value)) == ("error", "ValueError: bad cell")


def test_an_uploaded_log_that_exhausts_its_reader_is_refused_and_the_dashboard_goes_on(
    dash: Dash, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from openpyxl import Workbook

    from dashboard.pages import paper

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["接收时间", "申报单位", "项目名称", "方向", "材料类型", "份数", "所在区", "接收人", "备注"])
    ws.append(["2026-07-06 10:00", "武汉某某科技有限公司", "某项目", "典型应用场景", "申报书", 2, "江岸区", "王五", ""])
    buf = io.BytesIO()
    wb.save(buf)
    # A reader allowed far less memory than openpyxl needs stands in for a spreadsheet built to exhaust it.
    monkeypatch.setattr(paper, "IMPORT_MEMORY", 64 * 2**20)
    c = dash.client()
    token = login(c, "alice")
    r = c.post("/paper/import", data={"csrf_token": token}, files={"file": ("log.xlsx", buf.getvalue())})
    assert r.status_code == 422 and "could not be read" in r.text and "未导入" in r.text
    monkeypatch.setattr(paper, "IMPORT_MEMORY", 1024 * 2**20)
    upload = {"file": ("log.xlsx", buf.getvalue())}
    r = c.post("/paper/import", data={"csrf_token": token}, files=upload, follow_redirects=False)
    assert r.status_code == 303
    assert "导入 1 条" in c.get("/paper").text


def test_a_log_whose_xml_parts_unpack_beyond_the_total_bound_is_refused_before_openpyxl(tmp_path: Path) -> None:
    import zipfile
    from zoneinfo import ZoneInfo

    from review.paper import MAX_XML_TOTAL, read_log

    path = tmp_path / "log.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):  # each under the per-part bound, together over the total
            zf.writestr(f"xl/worksheets/sheet{i + 1}.xml", b"<a>" + b" " * (MAX_XML_TOTAL // 3 + 1024) + b"</a>")
    res = read_log(path, tz=ZoneInfo("Asia/Shanghai"))
    assert res.file_error is not None and "unpack to more than 64 MB" in res.file_error
