"""The dashboard in a real browser: headless Debian Chromium (Playwright) against a real `intake serve` on a
free port, on a season ingested through the real pipeline. One browser session for the whole module; a
screenshot of each page goes to tests/artifacts/ (gitignored) for people to look at."""

from __future__ import annotations

import io
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devservices.ports import free_port, wait_port
from tests.support import INTAKE, REPO, intake_env, run_intake, write_config
from tests.test_dashboard_routes import DEADLINE, Season, ingest, make_mails

ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
USER, PASSWORD = "wang.li", "room213-desk-pw"


@dataclass
class Served:
    url: str
    config: Path
    season: Season
    receipts: dict[str, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("dash-browser")
    port = free_port()
    config = write_config(
        tmp,
        sections={
            "call": {"deadline": DEADLINE},
            "ack": {"enabled": True, "dry_run": True},
            "pipeline": {
                "stages": ["parse_message", "store_attachments", "parse_documents", "applications", "enqueue_ack"]
            },
            "dashboard": {"enabled": True, "host": "127.0.0.1", "port": port},
        },
    )
    season = make_mails()
    ingest(config, season, tmp / "mail")
    # The account, as the secretariat's admin creates it: password on standard input (scripts).
    res = subprocess.run(
        [*INTAKE, "users", "add", USER, "--role", "staff", "--config", str(config)],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        env=intake_env(),
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    listed = run_intake("users", "list", config=config)
    assert USER in listed.stdout and "staff" in listed.stdout
    apps = run_intake("applications", "--format", "json", config=config)
    import json

    receipts = {a["form_type"]: a["receipt_no"] for a in json.loads(apps.stdout)}
    log = tmp / "serve.log"
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [*INTAKE, "serve", "--config", str(config)], cwd=REPO, env=intake_env(), stdout=fh, stderr=subprocess.STDOUT
        )
    try:
        wait_port("127.0.0.1", port, timeout=60, alive=lambda: proc.poll() is None)
        yield Served(f"http://127.0.0.1:{port}", config, season, receipts)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        # SIGTERM is a clean stop (exit 0), as for `intake run`.
        assert rc == 0, log.read_text(errors="replace")[-2000:]


@pytest.fixture(scope="module")
def page(served: Served) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(accept_downloads=True, locale="zh-CN", viewport={"width": 1400, "height": 900})
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        # Chromium reports CSP violations (an inline script or style the policy blocked) on the console.
        pg.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
        yield pg
        context.close()
        browser.close()
        # No script errors and no CSP violations (which Chromium reports on the console) on any page.
        assert errors == [], errors


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def test_1_log_in(page: Any, served: Served) -> None:
    page.goto(served.url + "/")
    assert page.url.startswith(served.url + "/login")
    shot(page, "01-login")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert "用户名或密码不正确" in page.inner_text("main")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(served.url + "/")
    assert USER in page.inner_text("header")
    assert "每日收到的申报邮件" in page.inner_text("main")
    shot(page, "02-overview")


def test_2_find_an_application_by_a_fragment_of_its_company_name(page: Any, served: Served) -> None:
    fragment = served.season.org_a[3:7]
    page.click("nav >> text=申报列表")
    page.fill("input[name=q]", fragment)
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r".*/applications\?.*q="))
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 1
    assert served.receipts["scenario"] in rows.first.inner_text()
    shot(page, "03-applications-search")
    page.click(f"text={served.receipts['scenario']}")
    page.wait_for_url(f"**/applications/{served.receipts['scenario']}")
    assert served.season.org_a in page.inner_text("main")
    shot(page, "04-application")


def test_3_download_its_pdf(page: Any, served: Served) -> None:
    row = page.locator("table.docs tr", has_text=served.season.pdf_a_name)
    with page.expect_download() as info:
        row.locator("a", has_text="下载").click()
    dl = info.value
    assert dl.suggested_filename == served.season.pdf_a_name
    assert Path(dl.path()).read_bytes() == served.season.pdf_a


def test_4_waive_a_problem_with_a_reason(page: Any, served: Served) -> None:
    assert "材料不齐" in page.inner_text("h1")
    page.select_option("select[name=action]", "waive")
    page.select_option("select[name=code]", "missing_license")
    page.fill("input[name=reason]", "营业执照原件已在213室核验")
    page.click("text=保存决定")
    page.wait_for_load_state()
    main = page.inner_text("main")
    assert "已豁免“缺少营业执照（法人证书）复印件”；当前状态：材料齐全" in main
    assert "材料齐全" in page.inner_text("h1")
    audit = page.inner_text("table.audit")
    assert "decision.waive" in audit and USER in audit and "营业执照原件已在213室核验" in audit
    shot(page, "05-application-waived")


def test_5_log_a_paper_copy_on_the_desk_with_the_keyboard(page: Any, served: Served) -> None:
    page.click("nav >> text=纸质材料登记")
    page.wait_for_url("**/paper")
    q = page.locator("#desk-q")
    assert q.evaluate("e => e === document.activeElement"), "the search box has the focus on arrival"
    org = served.season.org_b
    page.keyboard.type(org[2:6], delay=40)
    page.wait_for_selector(f"#suggestions input[value='{served.receipts['model']}']")
    shot(page, "06-paper-desk-suggestions")
    # ↓ ↑ move through the suggestions (the first is chosen); Tab to 材料, Tab to 份数, 1, Enter saves.
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    assert page.locator(f"#suggestions input[value='{served.receipts['model']}']").is_checked()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "copies"
    page.keyboard.press("Control+A")
    page.keyboard.type("1")
    page.keyboard.press("Enter")
    page.wait_for_selector(".flash")
    assert (
        "已登记" in page.inner_text(".flash")
        and org in page.inner_text(".flash")
        and "1 份" in page.inner_text(".flash")
    )
    recent = page.inner_text("table.list")
    assert org in recent and USER in recent
    assert page.locator("#desk-q").evaluate("e => e === document.activeElement")
    # The next applicant: type and Enter straight away (the suggestions are fetched before saving).
    page.keyboard.type(served.season.org_a[2:6], delay=20)
    page.keyboard.press("Enter")
    page.wait_for_selector(f".flash:has-text('{served.season.org_a}')")
    shot(page, "07-paper-desk-saved")


def test_6_export_the_filtered_list(page: Any, served: Served) -> None:
    from openpyxl import load_workbook

    from review.exports import ALL_SHEET

    page.goto(served.url + "/applications")
    page.select_option("select[name=form_type]", "model")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r".*form_type=model"))
    with page.expect_download() as info:
        page.click("text=Excel（附件5 格式）")
    dl = info.value
    assert dl.suggested_filename.endswith(".xlsx")
    wb = load_workbook(io.BytesIO(Path(dl.path()).read_bytes()))
    rows = list(wb[ALL_SHEET].iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == [served.receipts["model"]]
    assert rows[1][4] == served.season.org_b


def test_7_every_other_page_renders(page: Any, served: Served) -> None:
    for name, path, expect in [
        ("08-messages", "/messages", "邮件"),
        ("09-message-hostile", "/messages?q=mallory", "mallory"),
        ("10-reconcile", "/reconcile", "三方核对"),
        ("11-unassigned", "/unassigned", "补充说明.docx"),
    ]:
        page.goto(served.url + path)
        assert expect in page.inner_text("main"), path
        shot(page, name)
    page.goto(served.url + "/messages?q=mallory")
    page.locator("table.list tbody tr").first.locator("a").first.click()
    page.wait_for_url(re.compile(r".*/messages/\d+$"))
    assert "HTML 正文（源代码" in page.inner_text("main")
    assert page.locator("iframe").count() == 0
    shot(page, "12-message-detail")
    page.goto(served.url + f"/applications/{served.receipts['model']}")
    doc = page.locator("table.docs a", has_text="盖章扫描件").first
    doc.click()
    page.locator(".preview img").first.scroll_into_view_if_needed()
    # The page's picture is drawn by the server (a child process per preview): give it time.
    page.wait_for_function(
        "() => { const i = document.querySelector('.preview img'); return i && i.complete && i.naturalWidth > 100 }",
        timeout=60_000,
    )
    shot(page, "13-document-preview")
