"""The season rehearsal: real servers, `intake run` daemons, a staff session, faults, and the verdicts."""

from __future__ import annotations

import contextlib
import email
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.rehearsal.season import Season

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "whaicj@rehearsal.test", "rehearsal-imap-secret"
SMTP_USER, SMTP_PASSWORD = "whaicj@rehearsal.test", "rehearsal-smtp-secret"
STAFF, STAFF_PASSWORD = "rao", "staff-password-1"
FAULTS = ("kill_daemon", "dovecot_restart", "cut_fetch", "smtp_outage", "database", "disk_full", "uidvalidity")


@dataclass
class Options:
    db: str = "sqlite"  # sqlite | postgresql
    daemons: int = 1
    # `intake run --role` of each daemon; empty: `daemons` daemons of role "all".
    roles: tuple[str, ...] = ()
    play_seconds: float = 90.0  # how long the season is played into the mailbox
    settle_seconds: float = 240.0  # after the last message: time allowed to finish everything
    faults: tuple[str, ...] = FAULTS
    seed: int = 7
    workdir: Path | None = None
    keep: bool = False
    log: Any = sys.stderr


@dataclass
class Verdict:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    verdicts: list[Verdict] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    faults: list[tuple[float, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def text(self) -> str:
        lines = ["", "verdicts:"]
        lines += [f"  [{'ok' if v.ok else 'FAIL'}] {v.name}: {v.detail}" for v in self.verdicts]
        lines += ["", "faults injected (seconds into the run):"]
        lines += [f"  {t:6.1f}  {what}" for t, what in self.faults]
        lines += ["", "figures:"]
        lines += [f"  {k}: {v}" for k, v in self.figures.items()]
        return "\n".join(lines)


class Rehearsal:
    """Sets everything up, plays the season with faults, settles, and judges."""

    def __init__(self, season: Season, options: Options) -> None:
        self.season = season
        self.o = options
        self.rng = random.Random(options.seed)
        self.work = Path(options.workdir or tempfile.mkdtemp(prefix="rehearsal-"))
        os.chmod(self.work, 0o755)
        self.report = Report()
        self.roles = list(options.roles or ("all",) * options.daemons)
        self.daemons: list[subprocess.Popen[bytes]] = []
        self.daemon_logs: list[Path] = []
        self.stop = threading.Event()
        self.appended: dict[str, float] = {}  # Message-ID -> wall time it was put in the mailbox
        self.peak_rss = 0
        self.dashboard_latencies: list[float] = []
        self.dashboard_errors: list[str] = []
        self.t0 = 0.0
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {text}" if self.t0 else text, file=self.o.log, flush=True)

    # -- set-up ------------------------------------------------------------------------------------------

    def setup(self) -> None:
        from devservices.dovecot import Dovecot
        from devservices.proxy import TcpProxy
        from devservices.smtp import SmtpServer

        self.data = self.work / "data"
        self.data.mkdir()
        # The data folder is a small tmpfs of its own, so the disk-full fault can fill it for real.
        self.tmpfs = False
        if "disk_full" in self.o.faults:
            r = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=1200m", "tmpfs", str(self.data)], capture_output=True, text=True
            )
            if r.returncode != 0:
                raise RuntimeError(f"cannot mount a tmpfs for the disk-full fault: {r.stderr.strip()}")
            self.tmpfs = True
        self.dovecot = Dovecot(self.work / "dovecot", tls=False, rawlog=False).start()
        self.dovecot.add_user(USER, PASSWORD)
        self.proxy = TcpProxy(self.dovecot.host, self.dovecot.port).start()
        self.smtp = SmtpServer("smtps", users={SMTP_USER: SMTP_PASSWORD}, workdir=self.work / "smtp").start()
        self.pg = None
        if self.o.db == "postgresql":
            from devservices.postgres import Postgres

            self.pg = Postgres(self.work / "pg").start()
            self.db_url = self.pg.create_database("rehearsal")
        else:
            self.db_url = f"sqlite:///{self.data / 'intake.db'}"
        self.dash_port = _free_port()
        self.config = self.work / "config.toml"
        self.config.write_text(self._config_text(), encoding="utf-8")
        self.env = dict(
            os.environ,
            REHEARSAL_IMAP_PASSWORD=PASSWORD,
            REHEARSAL_SMTP_PASSWORD=SMTP_PASSWORD,
            REHEARSAL_DASHBOARD_SECRET="rehearsal-" + "s" * 40,
            PYTHONDONTWRITEBYTECODE="1",
        )
        self.env.pop("INTAKE_FAULT", None)
        r = self._intake("users", "add", STAFF, "--role", "staff", input_text=STAFF_PASSWORD + "\n")
        if r.returncode != 0:
            raise RuntimeError(f"intake users add failed: {r.stderr}")

    def _config_text(self) -> str:
        smtp = self.smtp
        return f"""
[call]
name = "武汉市“人工智能+社会治理”创新应用征集（演练）"
[mailbox]
host = "127.0.0.1"
port = {self.proxy.port}
tls = "none"
username = "{USER}"
password_env = "REHEARSAL_IMAP_PASSWORD"
poll_interval = "15s"
idle = true
timeout = "10s"
backoff_max = "10s"
after = "flag"
[store]
url = "{self.db_url}"
data_dir = "{self.data}"
[parsing]
time_limit = "60s"
[smtp]
host = "localhost"
port = {smtp.port}
tls = "ssl"
cafile = "{smtp.cafile}"
username = "{SMTP_USER}"
password_env = "REHEARSAL_SMTP_PASSWORD"
from = "{USER}"
timeout = "5s"
[ack]
send_interval = "2s"
retry_base = "2s"
retry_max = "10s"
max_attempts = 50
lease = "30s"
# Weeks of a season are played in minutes: the hourly cap of a real season would hold most of them back.
max_per_hour = 0
sent_folder = "Sent"
sent_check_folder = "Sent"
[dashboard]
enabled = false
port = {self.dash_port}
secret_env = "REHEARSAL_DASHBOARD_SECRET"
[logging]
level = "INFO"
"""

    def _intake(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "intake.cli", *args, "--config", str(self.config)],
            env=self.env,
            capture_output=True,
            text=True,
            input=input_text,
            cwd=REPO,
            timeout=300,
        )

    # -- processes ---------------------------------------------------------------------------------------

    def start_daemon(self, index: int) -> None:
        log = self.work / f"daemon{index}.log"
        if index >= len(self.daemon_logs):
            self.daemon_logs.append(log)
        fh = log.open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "intake.cli", "run", "--role", self.roles[index], "--config", str(self.config)],
            env=self.env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        if index < len(self.daemons):
            self.daemons[index] = proc
        else:
            self.daemons.append(proc)

    def start_dashboard(self) -> None:
        self.dash_log = self.work / "dashboard.log"
        fh = self.dash_log.open("ab")
        self.dashboard = subprocess.Popen(
            [sys.executable, "-m", "intake.cli", "serve", "--config", str(self.config)],
            env=self.env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )

    def watch_memory(self) -> None:
        while not self.stop.wait(0.5):
            for p in list(self.daemons):
                try:
                    for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.peak_rss = max(self.peak_rss, int(line.split()[1]) * 1024)
                except (OSError, ValueError):
                    pass

    # -- playing the season ------------------------------------------------------------------------------

    def play(self) -> None:
        c = self.dovecot.client(USER)
        try:
            for m in self.season.messages:
                due = self.t0 + m.at * self.o.play_seconds
                while time.monotonic() < due and not self.stop.is_set():
                    time.sleep(min(0.2, due - time.monotonic()))
                for _attempt in range(60):
                    try:
                        c.append("INBOX", m.raw, msg_time=m.internaldate)
                        break
                    except Exception:
                        time.sleep(0.5)
                        with contextlib.suppress(Exception):
                            c = self.dovecot.client(USER)
                else:
                    raise RuntimeError(f"could not append {m.name}")
                with self._lock:
                    self.appended[m.message_id] = time.time()
        finally:
            with contextlib.suppress(Exception):
                c.logout()

    # -- faults --------------------------------------------------------------------------------------------

    def inject(self, fault: str) -> None:
        self.report.faults.append((time.monotonic() - self.t0, fault))
        self.say(f"fault: {fault}")
        if fault == "kill_daemon":
            i = self.rng.randrange(len(self.daemons))
            self.daemons[i].send_signal(signal.SIGKILL)
            self.daemons[i].wait()
            time.sleep(self.rng.uniform(1, 3))
            self.start_daemon(i)
        elif fault == "dovecot_restart":
            self.dovecot.stop()
            time.sleep(3)
            self.dovecot.start()
        elif fault == "cut_fetch":
            self.proxy.cut_after_bytes(self.rng.randint(100_000, 1_500_000), direction="down")
            time.sleep(8)
            self.proxy.clear_faults()
        elif fault == "smtp_outage":
            self.smtp.refuse(451)
            time.sleep(8)
            self.smtp.recover()
            self.smtp.hang("DATA")
            time.sleep(8)
            self.smtp.recover()
        elif fault == "database":
            if self.pg is not None:
                self.pg.restart()
            else:
                conn = sqlite3.connect(str(self.data / "intake.db"), timeout=30, isolation_level=None)
                conn.execute("BEGIN IMMEDIATE")
                time.sleep(8)
                conn.execute("ROLLBACK")
                conn.close()
        elif fault == "disk_full":
            filler = self.data / "filler"
            try:
                with filler.open("wb") as f:
                    while True:
                        f.write(b"\0" * (4 << 20))
            except OSError:
                pass  # full: exactly the point
            time.sleep(8)
            filler.unlink()
        elif fault == "uidvalidity":
            self.dovecot.recreate_folder(USER, "INBOX", keep_messages=True)

    def fault_loop(self) -> None:
        # Every fault once, at random moments of the playing time (and a second daemon kill in the rush).
        plan = list(self.o.faults)
        if "kill_daemon" in plan:
            plan.append("kill_daemon")
        moments = sorted(self.rng.uniform(0.1, 0.95) * self.o.play_seconds for _ in plan)
        self.rng.shuffle(plan)
        for moment, fault in zip(moments, plan, strict=True):
            while time.monotonic() < self.t0 + moment and not self.stop.is_set():
                time.sleep(0.2)
            if self.stop.is_set():
                return
            try:
                self.inject(fault)
            except Exception as e:
                self.say(f"fault {fault} could not be injected: {e}")
                self.report.faults.append((time.monotonic() - self.t0, f"{fault} FAILED: {e}"))

    # -- the staff session -----------------------------------------------------------------------------

    def staff_session(self) -> None:
        import httpx

        base = f"http://127.0.0.1:{self.dash_port}"
        client = httpx.Client(base_url=base, timeout=10, follow_redirects=True)
        logged_in = False
        pages = ["/", "/applications", "/applications?q=科技", "/messages", "/paper", "/reconcile", "/unassigned"]
        i = 0
        while not self.stop.wait(0.5):
            try:
                if not logged_in:
                    page = client.get("/login")
                    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
                    r = client.post(
                        "/login",
                        data={
                            "username": STAFF,
                            "password": STAFF_PASSWORD,
                            "csrf_token": token.group(1) if token else "",
                            "next": "/",
                        },
                    )
                    logged_in = r.status_code == 200 and "/login" not in str(r.url)
                    continue
                path = pages[i % len(pages)]
                i += 1
                t = time.perf_counter()
                r = client.get(path)
                elapsed = time.perf_counter() - t
                if r.status_code != 200:
                    self.dashboard_errors.append(f"{path}: HTTP {r.status_code}")
                else:
                    self.dashboard_latencies.append(elapsed)
                    if path == "/applications":
                        ids = re.findall(r'href="(/applications/AI2026-[SMPT]-\d{4})"', r.text)
                        if ids:
                            t = time.perf_counter()
                            if client.get(ids[0]).status_code == 200:
                                self.dashboard_latencies.append(time.perf_counter() - t)
            except httpx.HTTPError as e:
                self.dashboard_errors.append(f"{type(e).__name__}: {e}")
        client.close()

    # -- the run -------------------------------------------------------------------------------------------

    def run(self) -> Report:
        self.setup()
        try:
            for i in range(len(self.roles)):
                self.start_daemon(i)
            self.start_dashboard()
            # The staff session and the clock start once the dashboard answers (start-up is not an outage).
            from devservices.ports import wait_port

            wait_port("127.0.0.1", self.dash_port, timeout=120)
            self.t0 = time.monotonic()
            threads = [
                threading.Thread(target=self.watch_memory, daemon=True),
                threading.Thread(target=self.staff_session, daemon=True),
                threading.Thread(target=self.fault_loop, daemon=True),
            ]
            for t in threads:
                t.start()
            self.say(
                f"playing {len(self.season.messages)} messages over {self.o.play_seconds:.0f} s "
                f"({self.o.db}, daemons: {', '.join(self.roles)}; faults: {', '.join(self.o.faults) or 'none'})"
            )
            self.play()
            threads[2].join()
            played = time.monotonic()
            self.say("season played; waiting for intake to finish")
            done_at = self.settle()
            self.report.figures["settle seconds"] = round(done_at - played, 1)
            self.stop.set()
            for t in threads:
                t.join(timeout=15)
            self.shutdown()
            self.judge(processing_seconds=done_at - self.t0)
        finally:
            self.teardown()
        return self.report

    def settle(self) -> float:
        """Wait until every message is processed and every acknowledgement settled (or the time is up)."""
        deadline = time.monotonic() + self.o.settle_seconds
        want = sum(1 for m in self.season.messages if m.ack != "none")
        while time.monotonic() < deadline:
            state = self.db_state()
            if (
                state
                and state["unprocessed"] == 0
                and state["messages"] >= len(self.season.messages)
                and state["acks_open"] == 0
                and len(self.smtp.messages) >= want
            ):
                return time.monotonic()
            time.sleep(2)
        return time.monotonic()

    def db_state(self) -> dict[str, int] | None:
        from sqlalchemy import text

        from store.engine import make_engine

        engine = make_engine(self.db_url)
        try:
            with engine.connect() as c:
                msgs = c.execute(
                    text("SELECT count(*), sum(case when state = 'new' then 1 else 0 end) FROM message")
                ).one()
                acks = c.execute(
                    text("SELECT count(*) FROM ack_outbox WHERE status IN ('pending', 'sending')")
                ).scalar()
            return {"messages": msgs[0], "unprocessed": msgs[1] or 0, "acks_open": acks or 0}
        except Exception:
            return None
        finally:
            engine.dispose()

    def shutdown(self) -> None:
        for p in [*self.daemons, self.dashboard]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = []
        for p in [*self.daemons, self.dashboard]:
            try:
                codes.append(p.wait(timeout=90))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append("hung")
        self.exit_codes = codes

    def teardown(self) -> None:
        self.stop.set()
        for p in [*self.daemons, getattr(self, "dashboard", None)]:
            if p is not None and p.poll() is None:
                p.kill()
        for name in ("proxy", "smtp", "dovecot", "pg"):
            s = getattr(self, name, None)
            if s is not None:
                with contextlib.suppress(Exception):
                    s.stop()
        if getattr(self, "tmpfs", False):
            if self.o.keep:
                keep = self.work / "data-copy"
                shutil.copytree(self.data, keep, ignore=shutil.ignore_patterns("filler"), dirs_exist_ok=True)
            subprocess.run(["umount", "-l", str(self.data)], capture_output=True)
        if not self.o.keep:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- the verdicts ----------------------------------------------------------------------------------------

    def judge(self, processing_seconds: float) -> None:
        from sqlmodel import Session, select

        from store.engine import make_engine
        from store.models import Application, DocumentRow, Message

        v = self.report.verdicts
        f = self.report.figures
        engine = make_engine(self.db_url)
        with Session(engine) as s:
            msgs = list(s.exec(select(Message)))
            apps = [a for a in s.exec(select(Application)) if a.status != "merged"]
            docs = list(s.exec(select(DocumentRow.message_pk, DocumentRow.seq)))
            from intake.acks import outbox  # noqa: F401  (registers nothing; the table lives in store)
            from store.acks_models import AckOutbox

            acks = list(s.exec(select(AckOutbox)))
        engine.dispose()

        # 1. Every message in the mailbox archived exactly once, sha256 by sha256.
        server = [hashlib.sha256(m.raw).hexdigest() for m in self.dovecot.fetch_all(USER)]
        db_shas = [m.sha256 for m in msgs]
        archive = Path(self.data) / "messages"
        missing_files = [h for h in db_shas if not (archive / h[:2] / f"{h}.eml").exists()]
        bad_files = [
            h
            for h in db_shas
            if (archive / h[:2] / f"{h}.eml").exists()
            and hashlib.sha256((archive / h[:2] / f"{h}.eml").read_bytes()).hexdigest() != h
        ]
        ok = (
            sorted(set(server)) == sorted(db_shas)
            and len(db_shas) == len(set(db_shas))
            and len(server) == len(self.season.messages)
            and not missing_files
            and not bad_files
        )
        v.append(
            Verdict(
                "every message archived exactly once",
                ok,
                f"{len(server)} in the mailbox, {len(db_shas)} recorded ({len(set(db_shas))} distinct), "
                f"{len(missing_files)} missing and {len(bad_files)} corrupt archive files",
            )
        )
        states: dict[str, int] = {}
        for m in msgs:
            states[m.state] = states.get(m.state, 0) + 1
        v.append(
            Verdict("every message processed, none quarantined", states == {"processed": len(msgs)}, f"states {states}")
        )
        v.append(Verdict("no document recorded twice", len(docs) == len(set(docs)), f"{len(docs)} document rows"))

        # 2. Every application present with the expected problems.
        by_key = {(a.org_name, a.form_type): a for a in apps}
        wrong = []
        for e in self.season.applications:
            a = by_key.get((e.org, e.form_type))
            if a is None:
                wrong.append(f"{e.org}/{e.form_type}: missing")
                continue
            codes = {p["code"] for p in a.problems}
            if not e.must_have <= codes or codes & e.must_not_have:
                wrong.append(
                    f"{a.receipt_no} {e.org}/{e.form_type}: has {sorted(codes)}, wanted {sorted(e.must_have)}"
                    f" and none of {sorted(e.must_not_have)}"
                )
        v.append(
            Verdict(
                "every application present with the expected problems",
                not wrong and len(apps) == len(self.season.applications),
                f"{len(apps)} applications, {len(self.season.applications)} expected; "
                + ("; ".join(wrong[:5]) or "all as expected"),
            )
        )

        # 3. Every acknowledgement sent exactly once to the right address, none to auto-generated mail.
        received: dict[str, list[tuple[str, float]]] = {}
        for r in self.smtp.messages:
            parsed = email.message_from_bytes(r.data)
            key = str(parsed.get("In-Reply-To", "")).strip()
            received.setdefault(key, []).append((",".join(r.rcpt_tos).lower(), r.received_at.timestamp()))
        problems = []
        for m in self.season.messages:
            got = received.get(m.message_id, [])
            want = 0 if m.ack == "none" else 1
            if len(got) != want:
                problems.append(f"{m.name}: {len(got)} sent, {want} wanted")
            elif want and got[0][0] != m.sender:
                problems.append(f"{m.name}: sent to {got[0][0]}, wanted {m.sender}")
        stray = set(received) - {m.message_id for m in self.season.messages}
        if stray:
            problems.append(f"{len(stray)} acknowledgement(s) answering nothing we sent")
        statuses: dict[str, int] = {}
        for a in acks:
            statuses[a.status] = statuses.get(a.status, 0) + 1
        v.append(
            Verdict(
                "every acknowledgement sent exactly once, none to auto-generated mail",
                not problems,
                f"{len(self.smtp.messages)} received by the SMTP server; outbox {statuses}; "
                + ("; ".join(problems[:5]) or "all as expected"),
            )
        )

        # 4. No unhandled exception in the logs; clean shutdown.
        tracebacks = []
        for log in [*self.daemon_logs, self.dash_log]:
            text = log.read_text(encoding="utf-8", errors="replace")
            if "Traceback" in text:
                at = text.index("Traceback")
                tracebacks.append(f"{log.name}: {text[at : at + 600]}")
        v.append(Verdict("no unhandled exception in the logs", not tracebacks, "; ".join(tracebacks[:2]) or "none"))
        v.append(
            Verdict(
                "every process stopped cleanly on SIGTERM",
                all(c == 0 for c in self.exit_codes),
                f"exit codes {self.exit_codes}",
            )
        )

        # 5. The dashboard answered throughout.
        lat = sorted(self.dashboard_latencies)
        p95 = lat[int(0.95 * (len(lat) - 1))] if lat else None
        v.append(
            Verdict(
                "the dashboard answered throughout",
                bool(lat) and len(self.dashboard_errors) <= max(2, len(lat) // 50),
                f"{len(lat)} pages, {len(self.dashboard_errors)} errors"
                + (f" (first: {self.dashboard_errors[0]})" if self.dashboard_errors else ""),
            )
        )

        # Figures.
        f["messages"] = len(self.season.messages)
        last = max((m.processed_at.timestamp() for m in msgs if m.processed_at), default=time.time())
        first = min(self.appended.values(), default=last)
        f["messages/s (first arrival to last processed)"] = round(len(msgs) / max(1e-6, last - first), 2)
        latencies = []
        for m in self.season.messages:
            got = received.get(m.message_id, [])
            if got and m.message_id in self.appended:
                latencies.append(got[0][1] - self.appended[m.message_id])
        processed = sorted(
            m.processed_at.timestamp() - self.appended[m.message_id]
            for m in msgs
            if m.processed_at and m.message_id in self.appended
        )
        if processed:
            f["arrival -> processed p50 s"] = round(statistics.median(processed), 1)
            f["arrival -> processed p95 s"] = round(processed[int(0.95 * (len(processed) - 1))], 1)
        if latencies:
            latencies.sort()
            f["arrival -> ack latency p50 s"] = round(statistics.median(latencies), 1)
            f["arrival -> ack latency p95 s"] = round(latencies[int(0.95 * (len(latencies) - 1))], 1)
        f["dashboard p50 ms"] = round(statistics.median(lat) * 1000) if lat else None
        f["dashboard p95 ms"] = round(p95 * 1000) if p95 is not None else None
        f["peak RSS of a daemon MB"] = round(self.peak_rss / 2**20)
        f["applications"] = len(apps)


def _free_port() -> int:
    from devservices.ports import free_port

    return free_port()


def main_json(report: Report) -> str:
    return json.dumps(
        {
            "ok": report.ok,
            "verdicts": [v.__dict__ for v in report.verdicts],
            "figures": report.figures,
            "faults": report.faults,
        },
        ensure_ascii=False,
        indent=2,
    )
