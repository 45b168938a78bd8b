"""Helpers for the acknowledgement tests (no tests here): a store + pipeline + sender around a real SMTP server."""

from __future__ import annotations

import email
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from devservices.smtp import SmtpServer
from intake.acks.outbox import AckSender, SendReport
from intake.config import Config, load_config
from intake.ingest import ingest_one
from intake.pipeline import Services, Stage, process_pending, resolve_stages
from intake.services import build_services
from store.acks_models import AckOutbox
from tests import mailgen
from tests.conftest import SMTP_PASSWORD, SMTP_USER
from tests.seasongen import season_time
from tests.support import write_config

SMTP_PASSWORD_ENV = "INTAKE_TEST_SMTP_PASSWORD"
IMAP_PASSWORD_ENV = "INTAKE_TEST_IMAP_PASSWORD"
LIGHT_STAGES = ["parse_message", "store_attachments", "enqueue_ack"]
OUR_ADDRESS = "whaicj@126.com"
_seq = itertools.count(1)


def smtp_section(server: SmtpServer | None, **extra: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port if server else 1,
        "tls": {"smtps": "ssl", "starttls": "starttls", "plain": "none"}[server.mode if server else "plain"],
        "cafile": str(server.cafile) if server and server.cafile else "",
        "username": SMTP_USER,
        "password_env": SMTP_PASSWORD_ENV,
        "from": OUR_ADDRESS,
        "timeout": "3s",
        "local_hostname": "intake.test",
    }
    section.update(extra)
    return section


def config_file(
    tmp: Path,
    db_url: str,
    server: SmtpServer | None,
    *,
    ack: dict[str, Any] | None = None,
    smtp: dict[str, Any] | None = None,
    stages: list[str] | None = None,
    mailbox: Any = None,
    extra: dict[str, dict[str, Any]] | None = None,
) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    sections: dict[str, dict[str, Any]] = {
        "smtp": smtp_section(server, **(smtp or {})),
        "ack": {"enabled": True, "retry_base": "1s", "retry_max": "4s", **(ack or {})},
        "pipeline": {"stages": stages or LIGHT_STAGES},
    }
    for name, values in (extra or {}).items():
        sections.setdefault(name, {}).update(values)
    return write_config(tmp, mailbox=mailbox, db_url=db_url, sections=sections)


@dataclass
class Env:
    """One test's intake: services with a clock the test moves, the pipeline, and the sender."""

    config_path: Path
    config: Config
    services: Services
    stages: list[tuple[str, Stage]]
    server: SmtpServer | None
    now: list[datetime] = field(default_factory=lambda: [season_time(-3)])
    sender: AckSender | None = None

    def tick(self, **delta: float) -> datetime:
        self.now[0] = self.now[0] + timedelta(**delta)
        return self.now[0]

    def ingest(self, raw: bytes, ref: str | None = None) -> int:
        mid, _new = ingest_one(self.services, raw, ref or f"test-{next(_seq)}.eml")
        assert mid is not None
        return mid

    def process(self) -> None:
        res = process_pending(self.services, self.stages)
        assert res.quarantined == 0, res.quarantined_ids

    def receive(self, raw: bytes) -> AckOutbox:
        mid = self.ingest(raw)
        self.process()
        row = self.row_for(mid)
        assert row is not None, f"no outbox row for message {mid}"
        return row

    def row_for(self, message_pk: int) -> AckOutbox | None:
        with Session(self.services.engine) as s:
            return s.exec(select(AckOutbox).where(AckOutbox.message_pk == message_pk)).first()

    def row(self, ack_id: int) -> AckOutbox:
        with Session(self.services.engine) as s:
            row = s.get(AckOutbox, ack_id)
            assert row is not None
            return row

    def rows(self) -> list[AckOutbox]:
        with Session(self.services.engine) as s:
            return list(s.exec(select(AckOutbox).order_by(col(AckOutbox.id))))

    def send(self) -> SendReport:
        if self.sender is None:
            self.sender = AckSender(self.services)
        return self.sender.run()

    def close(self) -> None:
        self.services.close()
        self.services.engine.dispose()
        if self.services.work_engine is not None:
            self.services.work_engine.dispose()


def make_env(path: Path, stages: list[str] | None = None) -> Env:
    cfg = load_config(path)
    services = build_services(cfg)
    env = Env(path, cfg, services, resolve_stages(stages or cfg.pipeline.stages), None)
    services.clock = lambda: env.now[0]
    return env


def mail(
    sender: str = "applicant@example.cn",
    subject: str = "申报材料",
    *,
    headers: list[tuple[str, str | bytes]] | None = None,
    files: int = 1,
    body: str = "您好，附件为申报材料，请查收。",
    date: str = mailgen.BASE_DATE,
    message_id: str | None = None,
) -> bytes:
    """A message built byte by byte (so any header, however odd, goes through unchanged)."""
    n = next(_seq)
    hdrs: list[tuple[str, str | bytes]] = [
        ("From", sender),
        ("To", OUR_ADDRESS),
        ("Subject", mailgen.ew(subject) if any(ord(c) > 127 for c in subject) else subject),
        ("Date", date),
        ("Message-ID", message_id or f"<m{n}.{sender.replace('@', '.')}@mail.example.cn>"),
        *(headers or []),
        ("MIME-Version", "1.0"),
    ]
    if not files:
        hdrs.append(("Content-Type", "text/plain; charset=utf-8"))
        return mailgen.message(hdrs, body.encode("utf-8"))
    parts = [mailgen.text_part(body)]
    for i in range(files):
        name = f"附件{i + 1} 申报书.pdf"
        parts.append(
            mailgen.file_part(
                mailgen.fake_file("pdf", 300, n * 10 + i),
                "application/pdf",
                disposition=f'attachment; filename="{mailgen.ew(name)}"',
            )
        )
    hdrs.append(("Content-Type", f'multipart/mixed; boundary="b{n}"'))
    return mailgen.message(hdrs, mailgen.multipart(f"b{n}", parts))


def decoded(raw: bytes) -> EmailMessage:
    m = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(m, EmailMessage)
    return m


def body_of(raw: bytes) -> str:
    m = decoded(raw)
    # Text travels with CRLF line ends (the canonical form), whatever the platform.
    return str(m.get_content()).replace("\r\n", "\n")


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]


__all__ = [
    "IMAP_PASSWORD_ENV",
    "LIGHT_STAGES",
    "OUR_ADDRESS",
    "SMTP_PASSWORD",
    "SMTP_PASSWORD_ENV",
    "Env",
    "body_of",
    "config_file",
    "decoded",
    "header_block",
    "mail",
    "make_env",
]
