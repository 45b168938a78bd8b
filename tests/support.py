"""Test helpers: write a config for a test mailbox and database, run the real `intake` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
INTAKE = [sys.executable, "-m", "intake.cli"]
PASSWORD_ENV = "INTAKE_TEST_IMAP_PASSWORD"


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(
    directory: Path,
    *,
    mailbox: Any = None,
    db_url: str | None = None,
    sections: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """A config.toml in `directory` for the given test mailbox (plain IMAP on 127.0.0.1) and database."""
    conf: dict[str, dict[str, Any]] = {
        "mailbox": {"enabled": mailbox is not None, "password_env": PASSWORD_ENV, "poll_interval": "1s"},
        "store": {"url": db_url or "sqlite:///data/intake.db", "data_dir": "data"},
        "ack": {"enabled": False},
        "dashboard": {"enabled": False},
    }
    if mailbox is not None:
        conf["mailbox"].update(host="127.0.0.1", port=mailbox.port, tls="none", username=mailbox.user)
    for name, values in (sections or {}).items():
        conf.setdefault(name, {}).update(values)
    lines: list[str] = []
    for name, values in conf.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
        lines.append("")
    path = directory / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def intake_env(mailbox: Any = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("INTAKE_FAULT", None)
    if mailbox is not None:
        env[PASSWORD_ENV] = mailbox.password
    env.update(extra)
    return env


def run_intake(
    *args: str, config: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `intake ARGS --config CONFIG` in a child process, as a user (or systemd) would."""
    return subprocess.run(
        [*INTAKE, *args, "--config", str(config)],
        env=env or intake_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def start_intake(*args: str, config: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `intake ARGS` in the background (the daemon), output to `log`."""
    fh = log.open("ab")
    return subprocess.Popen(
        [*INTAKE, *args, "--config", str(config)], env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO
    )
