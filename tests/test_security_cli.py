"""The command line shows text from email without letting its terminal escape sequences act (SECURITY.md)."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.support import intake_env, run_intake, write_config


def _ew(text: str) -> bytes:
    return b"=?utf-8?b?" + base64.b64encode(text.encode()) + b"?="


def test_escape_sequences_in_a_subject_never_reach_the_terminal(tmp_path: Path) -> None:
    # Retitle the terminal, paint red, move the cursor up and over-write the line above.
    subject = "申报材料\x1b]0;PWNED\x07\x1b[31m红\x1b[1A\r\x9b2J完"
    raw = (
        b"From: " + _ew("张三\x1b[8m") + b" <zhang@example.cn>\r\n"
        b"To: whaicj@126.com\r\nSubject: " + _ew(subject) + b"\r\n"
        b"Message-ID: <esc-1@example.cn>\r\nDate: Mon, 06 Jul 2026 10:00:00 +0800\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n"
    )
    (tmp_path / "esc.eml").write_bytes(raw)
    config = write_config(tmp_path, sections={"pipeline": {"stages": ["parse_message"]}})
    r = run_intake("ingest", str(tmp_path / "esc.eml"), config=config)
    assert r.returncode == 0, r.stderr
    r = run_intake("messages", config=config, env=intake_env(COLUMNS="300"))
    assert r.returncode == 0, r.stderr
    assert "申报材料" in r.stdout and "zhang@example.cn" in r.stdout
    for bad in ("\x1b", "\x07", "\r", "\x9b"):
        assert bad not in r.stdout, repr(r.stdout)
    assert "\ufffd" in r.stdout
