"""Run intake on the bundled demo mailbox: a private Dovecot on 127.0.0.1, SQLite, the dashboard.

    scripts/demo            (installs what is missing, then runs this)

The demo mailbox (demo/mailbox/*.eml) is loaded into the demo Dovecot on the first run, with the arrival
times in demo/mailbox/arrivals.toml; everything intake stores goes to demo/data/. Ctrl-C stops both.
Drop more .eml files into the mailbox with any mail client (IMAP 127.0.0.1:10143, user whaicj@demo.test,
password printed below) to watch them being processed.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tomllib
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devservices.dovecot import Dovecot  # noqa: E402

DEMO = REPO / "demo"
CONFIG = DEMO / "config.toml"


def main() -> int:
    cfg = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    user, port = cfg["mailbox"]["username"], cfg["mailbox"]["port"]
    data = DEMO / "data"
    data.mkdir(parents=True, exist_ok=True)
    secret = data / "demo-imap-password"
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(12), encoding="utf-8")
        secret.chmod(0o600)
    password = secret.read_text(encoding="utf-8").strip()

    # Dovecot's mail processes run as nobody: the path to its work dir must be traversable.
    for p in (data, *data.parents):
        if p == Path("/"):
            break
        if p.stat().st_mode & 0o005 != 0o005:
            os.chmod(p, p.stat().st_mode | 0o005)
    dovecot = Dovecot(data / "dovecot", tls=False, rawlog=False, port=port).start()
    try:
        dovecot.add_user(user, password)
        if dovecot.status(user)["MESSAGES"] == 0:
            arrivals = tomllib.loads((DEMO / "mailbox" / "arrivals.toml").read_text(encoding="utf-8"))
            for name, at in sorted(arrivals.items(), key=lambda kv: kv[1]):
                when = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
                dovecot.append(user, "INBOX", (DEMO / "mailbox" / name).read_bytes(), internaldate=when)
            print(f"demo mailbox loaded: {len(arrivals)} messages", file=sys.stderr)
        print(f"demo IMAP: 127.0.0.1:{port} user {user} password {password}", file=sys.stderr)
        print(f"dashboard: http://{cfg['dashboard']['host']}:{cfg['dashboard']['port']}", file=sys.stderr)
        env = dict(os.environ, INTAKE_DEMO_IMAP_PASSWORD=password)
        proc = subprocess.Popen([sys.executable, "-m", "intake.cli", "run", "--config", str(CONFIG)], env=env, cwd=REPO)

        def forward(signum: int, _frame: object) -> None:
            proc.send_signal(signum)

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        return proc.wait()
    finally:
        dovecot.stop()


if __name__ == "__main__":
    sys.exit(main())
