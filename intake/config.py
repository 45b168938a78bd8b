"""Strict configuration: load config.toml, reject unknown keys and wrong types naming the key."""

from __future__ import annotations

import os
import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_STAGES = ("parse_message", "store_attachments", "parse_documents", "applications", "enqueue_ack")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and the key."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> timedelta:
    """'2m', '30s', '1.5h', '250ms' or a bare number of seconds -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '2m' or '30s'")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    raise ValueError(f"expected a duration such as '2m' or '30s', got {value!r}")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?\s*$", re.I)
_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, None: 1}


def parse_size(value: Any) -> int:
    """'8MB', '512KB', or a bare number of bytes -> int bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as '8MB'")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            unit = m.group(2).lower() if m.group(2) else None
            return int(float(m.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(f"expected a size such as '8MB' or '512KB', got {value!r}")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]


class Section(BaseModel):
    # strict: a TOML string is never silently turned into an int, and an unknown key is an error
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CallConfig(Section):
    name: str = "武汉市“人工智能+社会治理”创新应用征集"
    code: str = "AI2026"
    deadline: datetime = datetime.fromisoformat("2026-07-07T17:00:00+08:00")
    timezone: str = "Asia/Shanghai"
    grace_period: Duration = timedelta(0)

    @field_validator("deadline", mode="before")
    @classmethod
    def _deadline(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                v = datetime.fromisoformat(v)
            except ValueError as e:
                raise ValueError(f"not an ISO 8601 date-time: {v!r}") from e
        if isinstance(v, datetime) and v.tzinfo is None:
            raise ValueError("the deadline needs a UTC offset, e.g. 2026-07-07T17:00:00+08:00")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9]{1,16}", v):
            raise ValueError("use 1-16 letters or digits (it prefixes receipt numbers)")
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class MailboxConfig(Section):
    enabled: bool = True
    host: str = "imap.126.com"
    port: int = 993
    tls: Literal["ssl", "starttls", "none"] = "ssl"
    cafile: str = ""
    username: str = "whaicj@126.com"
    password_env: str = "INTAKE_IMAP_PASSWORD"
    folder: str = "INBOX"
    poll_interval: Duration = timedelta(minutes=2)
    idle: bool = False
    idle_renew: Duration = timedelta(minutes=25)
    timeout: Duration = timedelta(seconds=60)
    batch_size: int = Field(default=50, ge=1, le=1000)
    batch_bytes: Size = 32 * 1024 * 1024
    after: Literal["leave", "flag", "move"] = "leave"
    flag: str = "$IntakeArchived"
    move_to: str = "Archived"
    backoff_max: Duration = timedelta(minutes=5)
    id_name: str = "intake"
    id_vendor: str = "intake"

    @model_validator(mode="after")
    def _checks(self) -> MailboxConfig:
        if self.tls == "none" and self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError('tls = "none" is only allowed for 127.0.0.1 (the password would travel in clear)')
        if self.after == "move" and not self.move_to:
            raise ValueError('after = "move" needs move_to')
        return self


class StoreConfig(Section):
    url: str = "sqlite:///data/intake.db"
    data_dir: str = "data"
    # Derived values: filled in by load_config with paths resolved against the config file's folder.
    resolved_url: str = ""
    resolved_data_dir: str = ""


class ParsingConfig(Section):
    workers: int = Field(default=1, ge=1, le=16)
    time_limit: Duration = timedelta(seconds=60)
    memory_limit: Size = 2 * 1024 * 1024 * 1024
    ocr: bool = True
    ocr_max_pages: int = Field(default=6, ge=0, le=100)
    soffice: str = "soffice"
    archive_max_members: int = Field(default=500, ge=1)
    archive_max_total: Size = 512 * 1024 * 1024
    archive_max_ratio: int = Field(default=200, ge=1)


class PipelineConfig(Section):
    # Stage names in the order they run on every message; see intake/stages/.
    stages: list[str] = Field(default_factory=lambda: list(DEFAULT_STAGES))
    # Messages processed at once by one daemon (threads; the parsing itself runs in parser processes).
    threads: int = Field(default=2, ge=1, le=16)


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    file: str = ""
    format: Literal["text", "json"] = "text"


class SmtpConfig(Section):
    host: str = "smtp.126.com"
    port: int = 465
    tls: Literal["ssl", "starttls", "none"] = "ssl"
    cafile: str = ""
    username: str = "whaicj@126.com"
    password_env: str = "INTAKE_SMTP_PASSWORD"
    from_: str = Field(default="whaicj@126.com", alias="from")
    timeout: Duration = timedelta(seconds=30)
    # Name sent in EHLO; empty: this machine's fully qualified name.
    local_hostname: str = ""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _checks(self) -> SmtpConfig:
        if self.tls == "none" and self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError('tls = "none" is only allowed for 127.0.0.1 (the 授权码 would travel in clear)')
        return self


# The secretariat's contacts as the call notice lists them (shown in every acknowledgement).
DEFAULT_ACK_CONTACTS = (
    "市人工智能专班 彭沐喆 027-85317173",
    "市经信局 饶丽君 027-85316992",
    "市公安局 王莹 027-85399881",
)


class AckConfig(Section):
    """Acknowledgement emails (issue 6): who gets one, what it says, how it is sent."""

    enabled: bool = True
    dry_run: bool = False
    # Reply to plain questions (no attachment) with a short "this mailbox receives applications" note.
    questions: bool = True
    # Display name of the From header; empty: [call] name.
    from_name: str = ""
    # Right-hand side of our Message-IDs: mail that refers to it is recognised as our own coming back.
    message_id_domain: str = "intake.whaicj.126.com"
    subject_prefix: str = "回执："
    # Folder with receipt.txt.j2 / question.txt.j2 / limit_notice.txt.j2 replacing the built-in ones.
    templates_dir: str = ""
    notice_title: str = "市经信局 市公安局关于联合开展“人工智能+社会治理”创新应用征集的通知"
    contacts: list[str] = Field(default_factory=lambda: list(DEFAULT_ACK_CONTACTS))
    paper_address: str = "市经信局 213 室（武汉市江汉区青年路 560 号企业服务大楼）"
    paper_copies: str = "申报书一式二份，推荐意见一式一份"
    rate_limit: int = Field(default=10, ge=1)
    rate_window: Duration = timedelta(hours=24)
    # At most this many acknowledgements handed to the SMTP server per hour, all recipients together (0: no
    # cap); the rest wait. Bounds what forged senders can make the mailbox send to third parties.
    max_per_hour: int = Field(default=200, ge=0)
    send_interval: Duration = timedelta(seconds=30)
    max_attempts: int = Field(default=8, ge=1, le=100)
    retry_base: Duration = timedelta(minutes=1)
    retry_max: Duration = timedelta(hours=1)
    lease: Duration = timedelta(minutes=10)
    sent_folder: str = ""
    sent_check_folder: str = ""

    @field_validator("message_id_domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        label = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
        if not re.fullmatch(rf"{label}(?:\.{label})+", v):
            raise ValueError(f"not a domain name: {v!r}")
        return v.lower()

    @model_validator(mode="after")
    def _checks(self) -> AckConfig:
        if self.retry_max < self.retry_base:
            raise ValueError("retry_max must not be shorter than retry_base")
        if self.send_interval <= timedelta(0):
            raise ValueError("send_interval must be positive")
        return self


class DashboardConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    # Environment variable holding the secret that signs session cookies; when it is unset, a random
    # secret is generated once and kept in <data_dir>/dashboard-secret (mode 0600).
    secret_env: str = "INTAKE_DASHBOARD_SECRET"
    # Secure cookies: "auto" (when the request came over https), "always", "never".
    secure_cookies: Literal["auto", "always", "never"] = "auto"
    # Believe X-Forwarded-Proto / X-Forwarded-For (only behind a reverse proxy that sets them).
    trust_proxy: bool = False
    session_max_age: Duration = timedelta(hours=12)
    login_max_failures: int = Field(default=5, ge=1)
    login_max_failures_ip: int = Field(default=20, ge=1)
    login_window: Duration = timedelta(minutes=15)
    page_size: int = Field(default=50, ge=5, le=500)


# Wuhan's districts and development zones as the call's 附件5 names them, plus the city-level units.
DEFAULT_DISTRICTS = (
    "江岸区",
    "江汉区",
    "硚口区",
    "汉阳区",
    "武昌区",
    "青山区",
    "洪山区",
    "东西湖区",
    "汉南区",
    "蔡甸区",
    "江夏区",
    "黄陂区",
    "新洲区",
    "武汉经开区",
    "东湖高新区",
    "长江新区",
    "市直单位",
)


class PaperConfig(Section):
    """The paper-submission log (issue 5)."""

    # 申报书 copies each application must hand in ("一式二份").
    required_copies: int = Field(default=2, ge=1, le=20)
    # Choices of 所在区 in the import template; district names in the log and the 汇总表 are matched to these.
    districts: list[str] = Field(default_factory=lambda: list(DEFAULT_DISTRICTS))


class ReconcileConfig(Section):
    """Thresholds of paper log / 汇总表 ↔ application matching (scores 0-100, see review/reconcile.py)."""

    match_threshold: float = Field(default=78.0, ge=0, le=100)
    review_threshold: float = Field(default=65.0, ge=0, le=100)
    margin: float = Field(default=5.0, ge=0, le=100)
    # Below 50 nearly every pair would be a candidate: the floor is also what keeps matching fast.
    org_floor: float = Field(default=75.0, ge=50, le=100)
    project_floor: float = Field(default=70.0, ge=0, le=100)
    org_weight: float = Field(default=0.4, ge=0, le=1)
    direction_penalty: float = Field(default=15.0, ge=0, le=100)
    check_summary: bool = True

    @model_validator(mode="after")
    def _order(self) -> ReconcileConfig:
        if self.review_threshold > self.match_threshold:
            raise ValueError("review_threshold must not exceed match_threshold")
        return self


class Config(Section):
    call: CallConfig = CallConfig()
    mailbox: MailboxConfig = MailboxConfig()
    store: StoreConfig = StoreConfig()
    parsing: ParsingConfig = ParsingConfig()
    pipeline: PipelineConfig = PipelineConfig()
    logging: LoggingConfig = LoggingConfig()
    smtp: SmtpConfig = SmtpConfig()
    ack: AckConfig = AckConfig()
    dashboard: DashboardConfig = DashboardConfig()
    paper: PaperConfig = PaperConfig()
    reconcile: ReconcileConfig = ReconcileConfig()
    # The folder of the config file: relative paths are relative to it.
    base_dir: str = "."

    @property
    def data_dir(self) -> Path:
        return Path(self.store.resolved_data_dir or self.store.data_dir)

    @property
    def db_url(self) -> str:
        return self.store.resolved_url or self.store.url

    def secret(self, env_name: str) -> str:
        """Read a secret from the environment variable named in config; never from a file."""
        value = os.environ.get(env_name)
        if not value:
            raise ConfigError(f"environment variable {env_name} is not set (it must hold the 授权码)")
        return value


def _resolve_sqlite(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        rel = url[len(prefix) :]
        return prefix + str((base / rel).resolve())
    return url


def _format_errors(path: str, err: ValidationError) -> str:
    lines = [f"{path}: invalid configuration"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p != "from_")
        if e["type"] == "extra_forbidden":
            lines.append(f"  {loc}: unknown key")
        else:
            lines.append(f"  {loc}: {e['msg']}")
    return "\n".join(lines)


def load_config(path: str | os.PathLike[str] | None, *, db_url: str | None = None) -> Config:
    """Read and validate a config file; `None` or a missing default path gives the built-in defaults.

    `db_url` overrides `[store] url` (the CLI's --db).
    """
    data: dict[str, Any] = {}
    p = Path(path) if path is not None else None
    if p is not None:
        try:
            with p.open("rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError as e:
            raise ConfigError(f"{p}: no such configuration file") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: not valid TOML: {e}") from e
    base = (p.parent if p is not None else Path.cwd()).resolve()
    if "base_dir" in data:
        raise ConfigError(f"{p}: base_dir: unknown key")
    try:
        cfg = Config.model_validate({**data, "base_dir": str(base)})
    except ValidationError as e:
        raise ConfigError(_format_errors(str(p or "<defaults>"), e)) from None
    url = db_url or cfg.store.url
    data_dir = Path(cfg.store.data_dir)
    if not data_dir.is_absolute():
        data_dir = (base / data_dir).resolve()
    store = cfg.store.model_copy(
        update={"resolved_url": _resolve_sqlite(url, base), "resolved_data_dir": str(data_dir)}
    )
    return cfg.model_copy(update={"store": store})
