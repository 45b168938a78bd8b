"""Shared pytest fixtures: real Dovecot, PostgreSQL and SMTP servers from devservices, stopped at teardown."""

from __future__ import annotations

import itertools
import re
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

try:
    import devservices  # noqa: F401
except ModuleNotFoundError:
    # an editable install made before devservices/ existed does not map it; the checkout root does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devservices import _proc
from devservices.dovecot import Dovecot
from devservices.postgres import Postgres
from devservices.proxy import TcpProxy
from devservices.smtp import Mode, SmtpServer

if TYPE_CHECKING:
    from tests.test_acks_helpers import Env

MAIL_DOMAIN = "example.test"
SMTP_USER = "intake@126.test"
SMTP_PASSWORD = "authcode-0001"  # 126.com wants an authorization code, not the web password

_user_counter = itertools.count(1)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM (a CI time limit, a stopped session) would end pytest without fixture teardown, and
    # Dovecot and PostgreSQL, in sessions of their own, would outlive it; as a KeyboardInterrupt,
    # pytest tears the fixtures down first
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)


@pytest.fixture(scope="session")
def devservices_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """The session's work dir for servers, traversable for the dovecot, nobody and postgres users.

    Outside pytest's tmp tree on purpose: pytest chmods /tmp/pytest-of-USER back to 0700 whenever a run
    starts, which would lock the service users out of a run still going on beside it. Removed at the
    end of a session without failures; kept (with all server logs) otherwise.
    """
    path = Path(tempfile.mkdtemp(prefix="devservices-"))
    _proc.make_traversable(path)
    yield path
    if request.session.testsfailed == 0:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def service_dir(devservices_dir: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh work dir for this test's own servers, under devservices_dir (see there why not tmp_path)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:40]
    return Path(tempfile.mkdtemp(prefix=f"{slug}-", dir=devservices_dir))


def _stop_all(services: Sequence[_proc.Stoppable]) -> None:
    """Stop every one even if some fail, then report the first failure."""
    errors: list[BaseException] = []
    for service in services:
        try:
            service.stop()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


# -- IMAP ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dovecot(devservices_dir: Path) -> Iterator[Dovecot]:
    """The session's Dovecot (plain IMAP with STARTTLS on .port, IMAPS on .ssl_port, rawlog on).

    Tests may restart() or kill() it: the `mailbox` fixture starts it again if it is down.
    Use `mailbox` for a private user rather than adding users here.
    """
    server = Dovecot(devservices_dir / "dovecot", tls=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Mailbox:
    """A fresh user on the session Dovecot: nothing another test appended is visible here."""

    server: Dovecot
    user: str
    password: str

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def ssl_port(self) -> int | None:
        return self.server.ssl_port

    @property
    def cafile(self) -> Path | None:
        return self.server.cafile

    def client(self, **kwargs: Any) -> Any:
        return self.server.client(self.user, **kwargs)

    def append(
        self,
        raw: bytes,
        folder: str = "INBOX",
        *,
        internaldate: datetime | None = None,
        flags: tuple[str | bytes, ...] = (),
    ) -> int:
        return self.server.append(self.user, folder, raw, internaldate=internaldate, flags=flags)

    def flags(self, folder: str = "INBOX") -> dict[int, tuple[str, ...]]:
        return self.server.flags(self.user, folder)

    def status(self, folder: str = "INBOX") -> dict[str, int]:
        return self.server.status(self.user, folder)

    def recreate_folder(self, folder: str = "INBOX", *, keep_messages: bool = True) -> int:
        return self.server.recreate_folder(self.user, folder, keep_messages=keep_messages)

    def rawlog_text(self, direction: str = "in") -> str:
        return self.server.rawlog_text(self.user, direction)

    def rawlog_commands(self) -> list[list[str]]:
        return self.server.rawlog_commands(self.user)


@pytest.fixture
def mailbox(dovecot: Dovecot, request: pytest.FixtureRequest) -> Mailbox:
    """A new user (named after the test) with an empty INBOX on the session Dovecot."""
    if not dovecot.running:
        dovecot.start()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-").lower()[:40]
    user = f"{slug}-{next(_user_counter)}@{MAIL_DOMAIN}"
    password = uuid.uuid4().hex
    dovecot.add_user(user, password)
    return Mailbox(dovecot, user, password)


@pytest.fixture
def make_dovecot(service_dir: Path) -> Iterator[Callable[..., Dovecot]]:
    """Factory for a private, started Dovecot (for tests that crash or reconfigure the server)."""
    servers: list[Dovecot] = []

    def make(**kwargs: Any) -> Dovecot:
        server = Dovecot(service_dir / f"dovecot-{len(servers)}", **kwargs)
        servers.append(server)
        return server.start()

    yield make
    _stop_all(servers)


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[str, int], TcpProxy]]:
    """Factory: tcp_proxy(host, port) -> a started TcpProxy in front of that server."""
    proxies: list[TcpProxy] = []

    def make(host: str, port: int) -> TcpProxy:
        proxy = TcpProxy(host, port).start()
        proxies.append(proxy)
        return proxy

    yield make
    _stop_all(proxies)


# -- databases -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres(devservices_dir: Path) -> Iterator[Postgres]:
    """The session's PostgreSQL cluster (user postgres, trust auth, fsync off)."""
    server = Postgres(devservices_dir / "postgres")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An SQLAlchemy URL to an empty database: a SQLite file, or a fresh PostgreSQL database (dropped
    after the test). PostgreSQL is started only when a test asks for this fixture."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'intake.db'}"
        return
    server: Postgres = request.getfixturevalue("postgres")
    if not server.running:
        server.start()
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        if server.running:
            server.drop_database(name)


# -- SMTP ------------------------------------------------------------------------------------------------


@pytest.fixture
def make_smtp_server(tmp_path: Path) -> Iterator[Callable[..., SmtpServer]]:
    """Factory: make_smtp_server(mode="plain"|"smtps"|"starttls", users=..., maildir=...) -> started server.

    Users default to {SMTP_USER: SMTP_PASSWORD}, with AUTH required.
    """
    servers: list[SmtpServer] = []

    def make(mode: Mode = "plain", **kwargs: Any) -> SmtpServer:
        kwargs.setdefault("users", {SMTP_USER: SMTP_PASSWORD})
        kwargs.setdefault("workdir", tmp_path / f"smtp-{len(servers)}")
        server = SmtpServer(mode, **kwargs)
        servers.append(server)
        return server.start()

    yield make
    _stop_all(servers)


@pytest.fixture
def smtps(make_smtp_server: Callable[..., SmtpServer]) -> SmtpServer:
    """Like smtp.126.com: implicit TLS on its own port, AUTH required."""
    return make_smtp_server("smtps")


@pytest.fixture
def env_factory(
    tmp_path: Path, db_url: str, smtps: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Env]]:
    """Factory for the acknowledgement tests: an Env (store, pipeline, sender) per call around `smtps`."""
    from tests.test_acks_helpers import SMTP_PASSWORD_ENV, config_file, make_env

    monkeypatch.setenv(SMTP_PASSWORD_ENV, SMTP_PASSWORD)
    made: list[Env] = []

    def make(**kwargs: Any) -> Env:
        path = config_file(tmp_path / f"intake{len(made)}", db_url, smtps, **kwargs)
        env = make_env(path)
        env.server = smtps
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


@pytest.fixture
def smtp_server(make_smtp_server: Callable[..., SmtpServer]) -> SmtpServer:
    """A plain SMTP server with AUTH required for SMTP_USER / SMTP_PASSWORD."""
    return make_smtp_server("plain")
