"""A throw-away PostgreSQL cluster on 127.0.0.1 for tests: initdb, pg_ctl start/stop, per-test databases."""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from devservices import _proc
from devservices.ports import LOCALHOST, DevServiceError, ensure_debian_packages, free_port

DEBIAN_PACKAGE = "postgresql"
_DB_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def find_bindir() -> Path:
    """The newest /usr/lib/postgresql/N/bin with initdb and pg_ctl; installs Debian's postgresql if none."""
    for attempt in range(2):
        found = sorted(
            (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        )
        found = [p for p in found if (p / "initdb").exists() and (p / "postgres").exists()]
        if found:
            return found[-1]
        if attempt == 0:
            ensure_debian_packages([DEBIAN_PACKAGE])
    raise DevServiceError(
        "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin; install the Debian package "
        f"'{DEBIAN_PACKAGE}' (apt-get install -y {DEBIAN_PACKAGE})"
    )


class Postgres:
    """One PostgreSQL cluster with its data, socket and log under `workdir`, listening on 127.0.0.1:`port`.

    Trust authentication for user `postgres` (no password), fsync off (fast; a crash may lose data,
    which tests do not mind). When run as root, initdb/pg_ctl run as the `postgres` system user.
    """

    def __init__(self, workdir: Path | str | None = None, *, port: int | None = None) -> None:
        self._own_workdir = workdir is None
        self.workdir = _proc.work_dir(workdir, "devservices-postgres-")
        self.host = LOCALHOST
        # a port we picked may be taken before the server binds it: start() then picks another, but only
        # before the first successful start
        self._pick_port = port is None
        self.port = port or free_port()
        self.user = "postgres"
        self.data_dir = self.workdir / "data"
        self.socket_dir = self.workdir / "sock"
        self._socket_dir_is_temp = False
        self.log_path = self.workdir / "postgres.log"
        self._bindir: Path | None = None
        self._pid: int | None = None
        self.startup_seconds: float | None = None
        self.initdb_seconds: float | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Self:
        """initdb on first start, then start the server and wait until it accepts connections."""
        if self.running:
            return self
        self._bindir = self._bindir or find_bindir()
        t0 = time.monotonic()
        self._prepare()
        if not (self.data_dir / "PG_VERSION").exists():
            self._as_postgres(
                "initdb", "-D", str(self.data_dir), "-U", self.user, "--auth=trust", "-E", "UTF8",
                "--locale=C.UTF-8", "--no-sync",
            )  # fmt: skip
            self.initdb_seconds = time.monotonic() - t0
        _proc.register(self)
        for attempt in range(3):
            log_size = self.log_path.stat().st_size
            try:
                self._pg_ctl_start()
                break
            except DevServiceError:
                self._pid = self._read_pid()
                if self._up_after_all(log_size):
                    break
                self.kill()
                with self.log_path.open("rb") as f:
                    f.seek(log_size)
                    in_use = b"Address already in use" in f.read()
                if not (in_use and self._pick_port) or attempt == 2:
                    raise
                self.port = free_port()
        self._pick_port = False
        self._pid = self._read_pid()
        self.startup_seconds = time.monotonic() - t0
        return self

    def _pg_ctl_start(self) -> None:
        options = f"-c listen_addresses={self.host} -p {self.port} -k {self.socket_dir} -c fsync=off"
        options += " -c synchronous_commit=off -c full_page_writes=off"
        self._as_postgres(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t", "60",
            "-o", options, "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Fast shutdown (disconnects clients, rolls back open transactions); SIGKILL if that fails."""
        if self._pid is None:
            self._pid = self._read_pid() if self.data_dir.exists() else None
        if self._pid is not None and _pid_alive(self._pid):
            try:
                self._as_postgres("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop")
            except DevServiceError:
                self.kill()
        self._pid = None
        _proc.unregister(self)
        self._drop_socket_dir()

    def _drop_socket_dir(self) -> None:
        if self._socket_dir_is_temp:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = self.workdir / "sock"
            self._socket_dir_is_temp = False

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends (the postmaster leads its own process group)."""
        pid = self._pid
        if pid is not None and _pid_alive(pid):
            _proc.signal_group(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _proc.group_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        self._pid = None
        _proc.unregister(self)
        self._drop_socket_dir()

    def restart(self) -> Self:
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self._pid is not None and _pid_alive(self._pid)

    @property
    def pid(self) -> int | None:
        return self._pid

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """stop(), and delete the work dir if this runner made it (no `workdir` given)."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- databases -------------------------------------------------------------------------------------

    def url(self, dbname: str = "postgres", driver: str = "psycopg") -> str:
        """SQLAlchemy URL, e.g. postgresql+psycopg://postgres@127.0.0.1:PORT/dbname."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq connection string for psycopg.connect()."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname} connect_timeout=10"

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> Any:
        """A psycopg connection (autocommit unless told otherwise)."""
        import psycopg

        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.dsn(dbname), **kwargs)

    def create_database(self, name: str) -> str:
        """CREATE DATABASE `name` (must be a plain identifier); returns its SQLAlchemy URL."""
        self._check_name(name)
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS, disconnecting any sessions still on it."""
        self._check_name(name)
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def databases(self) -> list[str]:
        with self.connect() as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate").fetchall()
        return sorted(r[0] for r in rows)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- internals -------------------------------------------------------------------------------------

    @staticmethod
    def _check_name(name: str) -> None:
        # names are interpolated into SQL: only plain identifiers are accepted
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"database name {name!r} must match {_DB_NAME_RE.pattern}")

    def _prepare(self) -> None:
        as_root = os.geteuid() == 0
        if not self._socket_dir_is_temp:
            # ".s.PGSQL.PORT.lock" must fit a unix socket path
            self.socket_dir, self._socket_dir_is_temp = _proc.socket_dir(self.socket_dir, 24, "pg-sock-")
        for d in (self.data_dir, self.socket_dir):
            d.mkdir(exist_ok=True)
            if as_root:
                _proc.chown(d, "postgres", "postgres")
        # initdb insists on 0700 (or 0750) for the data dir
        self.data_dir.chmod(0o700)
        if not self.log_path.exists():
            self.log_path.touch()
        if as_root:
            _proc.chown(self.log_path, "postgres", "postgres")

    def _as_postgres(self, tool: str, *args: str) -> str:
        assert self._bindir is not None
        argv = [str(self._bindir / tool), *args]
        if os.geteuid() == 0:
            # initdb and pg_ctl refuse to run as root
            argv = ["runuser", "-u", "postgres", "--", *argv]
        res = subprocess.run(
            argv,
            cwd=self.workdir,  # the postgres user cannot enter root's cwd
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        if res.returncode != 0:
            raise DevServiceError(
                f"{tool} failed (exit {res.returncode}): {res.stderr.strip() or res.stdout.strip()}\n"
                + _proc.tail(self.log_path, 15)
            )
        return res.stdout

    def _up_after_all(self, log_size: int) -> bool:
        """pg_ctl -w gave up although the server logged that it is ready (seen once, on a machine running
        two test workers and a benchmark at once): believe the server if it answers."""
        with self.log_path.open("rb") as f:
            f.seek(log_size)
            ready = b"ready to accept connections" in f.read()
        if not (ready and self._pid is not None and _pid_alive(self._pid)):
            return False
        assert self._bindir is not None
        res = subprocess.run(
            [str(self._bindir / "pg_isready"), "-h", str(self.socket_dir), "-p", str(self.port), "-t", "10"],
            capture_output=True,
            check=False,
            timeout=30,
        )
        return res.returncode == 0

    def _read_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first)
        except (OSError, ValueError):
            return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
