"""A self-contained Dovecot 2.3 IMAP server on 127.0.0.1 for tests: users, maildirs, TLS, logs and rawlogs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from imapclient import IMAPClient

from devservices import _proc
from devservices.certs import CertPair, client_context, self_signed
from devservices.ports import LOCALHOST, DevServiceError, ensure_debian_packages, free_port, port_open

DEBIAN_PACKAGES = ("dovecot-core", "dovecot-imapd")
_USER_RE = re.compile(r"^[A-Za-z0-9._+@-]+$")
# \Recent is session state (RFC 3501): not a stored flag, and the server refuses it in APPEND
_SESSION_FLAGS = {b"\\Recent"}


class _PortInUse(DevServiceError):
    pass


@dataclass(frozen=True)
class StoredMessage:
    uid: int
    internaldate: datetime
    flags: tuple[bytes, ...]
    raw: bytes


class Dovecot:
    """One Dovecot master process with its own config, users, maildirs and logs under `workdir`.

    Started as root; mail is owned by nobody:nogroup. All listeners are on 127.0.0.1. The plain listener
    (`port`) offers STARTTLS and the `ssl_port` listener speaks implicit TLS when `tls` is true; both
    trust `cafile`. ID parameters are logged (`imap_id_log = *`).

    Rawlog: with `rawlog_dir = %h/rawlog` each post-login connection writes HOME/rawlog/DATE-TIME.PID.N.in
    (client to server) and .out, unbuffered, every line prefixed with a unix timestamp. Measured on
    2.3.19: `~/rawlog` is not expanded there and nothing is written; the directory must exist and be
    writable by the mail user (add_user() makes it). Rawlog starts after LOGIN, which is exactly where
    126.com wants ID before SELECT, and keeps the password out of the files.
    """

    def __init__(
        self,
        workdir: Path | str | None = None,
        *,
        tls: bool = True,
        mail_debug: bool = False,
        rawlog: bool = True,
        port: int | None = None,
        ssl_port: int | None = None,
        start_timeout: float = 15.0,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = _proc.work_dir(workdir, "devservices-dovecot-")
        self.host = LOCALHOST
        self.tls = tls
        self.mail_debug = mail_debug
        self.rawlog = rawlog
        # ports we picked may be taken by another process before Dovecot binds them: then start() picks
        # new ones, but only before the first successful start (clients are configured with them after)
        self._pick_ports = port is None and ssl_port is None
        self.port = port or free_port()
        self.ssl_port: int | None = (ssl_port or free_port()) if tls else None
        self.start_timeout = start_timeout
        self.conf_path = self.workdir / "dovecot.conf"
        self.log_path = self.workdir / "dovecot.log"
        self.users_dir = self.workdir / "passwd.d"
        self.home_root = self.workdir / "home"
        self._certs: CertPair | None = None
        self._users: dict[str, str] = {}
        self._users_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self.run_dir: Path | None = None  # base_dir: unix sockets, pid file; chosen at start
        self._run_dir_is_temp = False
        self.startup_seconds: float | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start (or start again on the same data, ports and users); returns once IMAP greets."""
        if self.running:
            return self
        if os.geteuid() != 0:
            # the runner hands homes to nobody and Dovecot's master switches users: both need root
            raise DevServiceError("devservices.dovecot must run as root (it does in CI and on dev machines)")
        ensure_debian_packages(DEBIAN_PACKAGES)
        if shutil.which("dovecot") is None:
            raise DevServiceError("dovecot binary not found although dovecot-core is installed")
        t0 = time.monotonic()
        for attempt in range(3):
            try:
                self._start_once()
                break
            except _PortInUse:
                if not self._pick_ports or attempt == 2:
                    raise
                self.port = free_port()
                self.ssl_port = free_port() if self.tls else None
        self._pick_ports = False
        self.startup_seconds = time.monotonic() - t0
        return self

    def _start_once(self) -> None:
        self._prepare()
        log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
        stderr = open(self.workdir / "dovecot.stderr", "ab")  # noqa: SIM115 - handed to the child
        try:
            # -F: stay in the foreground as our child, so its PID is the group id of all its processes
            self._proc = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        finally:
            stderr.close()
        _proc.register(self)
        try:
            self._wait_ready()
        except BaseException as exc:
            self.kill()
            if b"Address already in use" in _read_from(self.log_path, log_size):
                raise _PortInUse(str(exc)) from None
            raise

    def stop(self) -> None:
        """SIGTERM to the master and all its children (a clean stop in ms), SIGKILL for any left after 5 s."""
        if self._proc is not None:
            _proc.stop_process_group(self._proc)
            self._proc = None
        self._drop_run_dir()
        _proc.unregister(self)

    def kill(self) -> None:
        """SIGKILL the master and all its children at once, like a crash; start() works afterwards."""
        if self._proc is not None:
            _proc.kill_process_group(self._proc)
            self._proc = None
        self._drop_run_dir()
        _proc.unregister(self)

    def _drop_run_dir(self) -> None:
        if self.run_dir is not None and self._run_dir_is_temp:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self.run_dir = None

    def restart(self) -> Self:
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

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

    # -- users and files -------------------------------------------------------------------------------

    @property
    def cafile(self) -> Path | None:
        return self._certs.cafile if self._certs is not None else None

    def add_user(self, name: str, password: str) -> None:
        """Create (or re-password) a user; works while the server runs.

        Each user has its own passwd-file (the passdb path is DIR/passwd.d/%u): Dovecot checks a
        passwd-file for changes at most once a second, so a user added to a shared file right after a
        login could not log in yet. A changed password may likewise take up to a second to apply.
        """
        if not _USER_RE.match(name):
            raise ValueError(f"user name {name!r} must match {_USER_RE.pattern}")
        if any(c in password for c in ":\r\n"):
            raise ValueError("password must not contain ':' or line breaks (passwd-file format)")
        with self._users_lock:
            self._users[name] = password
            self._write_users()
        self._make_home(name)

    def password(self, user: str) -> str:
        return self._users[user]

    @property
    def users(self) -> list[str]:
        return list(self._users)

    def home(self, user: str) -> Path:
        return self.home_root / user

    def maildir(self, user: str) -> Path:
        return self.home(user) / "Maildir"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def rawlog_files(self, user: str, direction: str = "in") -> list[Path]:
        """The user's rawlog files, one per connection, oldest first (by the first timestamp inside)."""
        if direction not in ("in", "out"):
            raise ValueError("direction is 'in' (client to server) or 'out' (server to client)")
        files = list((self.home(user) / "rawlog").glob(f"*.{direction}"))
        return sorted(files, key=lambda f: (_first_timestamp(f), f.name))

    def rawlog_text(self, user: str, direction: str = "in") -> str:
        """Everything `user`'s clients sent after LOGIN (direction 'in') or received ('out'), all
        connections concatenated oldest first; each line is "<unix time> <line>". LOGIN itself and thus
        the password are not in it: rawlog starts in the post-login imap process."""
        return "".join(f.read_text(errors="replace") for f in self.rawlog_files(user, direction))

    def rawlog_commands(self, user: str) -> list[list[str]]:
        """Per connection, the verbs of the commands the client sent after LOGIN, in order.

        Verbs are upper-case; UID commands keep their sub-verb ("UID FETCH"). Lines inside APPEND
        literals are skipped. An ID sent before LOGIN is not here (rawlog starts after login); the
        server log has it ("ID sent: ...") either way.
        """
        sessions = []
        for f in self.rawlog_files(user, "in"):
            verbs: list[str] = []
            literal = 0
            for line in f.read_bytes().split(b"\n"):
                # every rawlog line, literal data included, starts with "<unix time> "
                parts = line.split(b" ", 1)
                text = parts[1] if len(parts) == 2 and _is_timestamp(parts[0]) else line
                if literal > 0:
                    literal -= len(text) + 1
                    continue
                words = text.decode("utf-8", "replace").split()
                # "TAG VERB ..."; a lone DONE (ending IDLE) has no tag and is not a command
                if len(words) >= 2:
                    verb = words[1].upper()
                    if verb == "UID" and len(words) >= 3:
                        verb = "UID " + words[2].upper()
                    verbs.append(verb)
                m = re.search(rb"\{(\d+)\+?\}\r?$", text)
                if m:
                    literal = int(m.group(1))
            sessions.append(verbs)
        return sessions

    # -- an IMAP client for test setup and inspection --------------------------------------------------

    def client(
        self, user: str, *, ssl: bool = False, starttls: bool = False, timeout: float = 10.0
    ) -> IMAPClient:
        """A logged-in imapclient for `user` (plain, implicit TLS on ssl_port, or STARTTLS on port).

        Its normalise_times is off: INTERNALDATEs come back as aware datetimes.
        """
        if (ssl or starttls) and self._certs is None:
            raise DevServiceError("this Dovecot was started with tls=False")
        if ssl:
            assert self.ssl_port is not None and self.cafile is not None
            c = IMAPClient(
                self.host, self.ssl_port, ssl=True, ssl_context=client_context(self.cafile), timeout=timeout
            )
        else:
            c = IMAPClient(self.host, self.port, ssl=False, timeout=timeout)
            if starttls:
                assert self.cafile is not None
                # verified with the hostname check on: the certificate names IP:127.0.0.1 and localhost
                c.starttls(client_context(self.cafile))
        c.normalise_times = False
        c.login(user, self._users[user])
        return c

    def append(
        self,
        user: str,
        folder: str,
        raw: bytes,
        *,
        internaldate: datetime | None = None,
        flags: tuple[str | bytes, ...] | list[str | bytes] = (),
    ) -> int:
        """APPEND `raw` (created folder if needed) and return its UID (from APPENDUID).

        Give an aware `internaldate` to control INTERNALDATE exactly (a naive one is local time).
        """
        with self.client(user) as c:
            _ensure_folder(c, folder)
            resp = c.append(folder, raw, flags=tuple(flags), msg_time=internaldate)
        m = re.search(rb"APPENDUID \d+ (\d+)", resp)
        if not m:
            raise DevServiceError(f"APPEND gave no APPENDUID: {resp!r}")
        return int(m.group(1))

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, tuple[str, ...]]:
        """UID -> stored flags, as strings like '\\Seen' (\\Recent, which is per session, left out)."""
        with self.client(user) as c:
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            data = c.fetch(uids, ["FLAGS"]) if uids else {}
        return {
            int(uid): tuple(
                f.decode() if isinstance(f, bytes) else str(f)
                for f in item[b"FLAGS"]
                if f not in _SESSION_FLAGS
            )
            for uid, item in data.items()
        }

    def status(self, user: str, folder: str = "INBOX") -> dict[str, int]:
        """MESSAGES, UIDNEXT, UIDVALIDITY, UNSEEN of a folder."""
        with self.client(user) as c:
            st = c.folder_status(folder, ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"])
        return {k.decode(): int(v) for k, v in st.items()}

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        return self.status(user, folder)["UIDVALIDITY"]

    def fetch_all(self, user: str, folder: str = "INBOX") -> list[StoredMessage]:
        with self.client(user) as c:
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            data = c.fetch(uids, ["FLAGS", "INTERNALDATE", "BODY.PEEK[]"]) if uids else {}
        return [
            StoredMessage(
                uid=int(uid),
                internaldate=item[b"INTERNALDATE"],
                flags=tuple(f for f in item[b"FLAGS"] if f not in _SESSION_FLAGS),
                raw=item[b"BODY[]"],
            )
            for uid, item in sorted(data.items())
        ]

    def recreate_folder(self, user: str, folder: str = "INBOX", *, keep_messages: bool = True) -> int:
        """Give `folder` a new UIDVALIDITY, as a server does when a mailbox is rebuilt; return it.

        Other folders are DELETEd and CREATEd (Dovecot then hands out a new UIDVALIDITY). INBOX cannot be
        deleted, so it is emptied and `doveadm mailbox update --uid-validity` sets a new value. With
        `keep_messages`, the messages come back (same bytes, INTERNALDATE and flags) under new UIDs,
        so a client must notice the UIDVALIDITY change and must not re-import them as new.
        Raises DevServiceError if UIDVALIDITY did not change.
        """
        old = self.uidvalidity(user, folder) if self._folder_exists(user, folder) else None
        kept = self.fetch_all(user, folder) if keep_messages and old is not None else []
        with self.client(user) as c:
            if folder.upper() == "INBOX":
                c.select_folder(folder)
                uids = c.search("ALL")
                if uids:
                    c.delete_messages(uids)
                    c.expunge()
                c.unselect_folder()
            else:
                if old is not None:
                    c.delete_folder(folder)
                c.create_folder(folder)
        if folder.upper() == "INBOX":
            new_value = max((old or 0) + 1, int(time.time()))
            self._doveadm("mailbox", "update", "-u", user, "--uid-validity", str(new_value), folder)
        with self.client(user) as c:
            for m in kept:
                c.append(folder, m.raw, flags=m.flags, msg_time=m.internaldate)
        new = self.uidvalidity(user, folder)
        if new == old:
            raise DevServiceError(f"UIDVALIDITY of {user}/{folder} stayed {old}")
        return new

    # -- internals -------------------------------------------------------------------------------------

    def _folder_exists(self, user: str, folder: str) -> bool:
        with self.client(user) as c:
            return bool(c.folder_exists(folder))

    def _doveadm(self, *args: str) -> str:
        res = subprocess.run(
            ["doveadm", "-c", str(self.conf_path), *args], capture_output=True, text=True, check=False
        )
        if res.returncode != 0:
            raise DevServiceError(f"doveadm {' '.join(args)} failed: {res.stderr.strip()}")
        return res.stdout

    def _prepare(self) -> None:
        # the longest socket Dovecot makes below base_dir is about "token-login/imap-urlauth"
        self.run_dir, self._run_dir_is_temp = _proc.socket_dir(self.workdir / "run", 32, "dovecot-run-")
        (self.workdir / "state").mkdir(exist_ok=True)
        for user in self._users:
            self._make_home(user)
        self._make_home(None)
        if self.tls and self._certs is None:
            self._certs = self_signed(self.workdir / "tls", name="dovecot")
        with self._users_lock:
            self._write_users()
        self.conf_path.write_text(self._config())

    def _write_users(self) -> None:
        self.users_dir.mkdir(exist_ok=True)
        for user, password in self._users.items():
            path = self.users_dir / user
            line = f"{user}:{{PLAIN}}{password}\n"
            if path.exists() and path.read_text() == line:
                continue
            tmp = path.with_name(f".{user}.tmp")
            tmp.write_text(line)
            tmp.chmod(0o644)
            # rename, so the auth process never reads a half-written file
            tmp.replace(path)

    def _make_home(self, user: str | None) -> None:
        # homes and rawlog dirs belong to the mail user: Dovecot creates the Maildir inside, and
        # rawlog_dir is silently ignored when the directory is missing or not writable
        dirs = (
            [self.home_root]
            if user is None
            else [self.home_root, self.home(user), self.home(user) / "rawlog"]
        )
        for d in dirs:
            d.mkdir(exist_ok=True)
            _proc.chown(d, "nobody", "nogroup")

    def _config(self) -> str:
        w = self.workdir
        if self._certs is not None:
            ssl = f"ssl = yes\nssl_cert = <{self._certs.cert}\nssl_key = <{self._certs.key}\n"
            imaps = (
                f"  inet_listener imaps {{\n    address = {self.host}\n    port = {self.ssl_port}\n"
                "    ssl = yes\n  }\n"
            )
        else:
            ssl = "ssl = no\n"
            imaps = "  inet_listener imaps {\n    port = 0\n  }\n"
        debug = "mail_debug = yes\nauth_debug = yes\nauth_verbose = yes\n" if self.mail_debug else ""
        # rawlog_dir needs an existing directory writable by the mail user: made in add_user()
        rawlog = "rawlog_dir = %h/rawlog\n" if self.rawlog else ""
        return (
            "# written by devservices.dovecot; a self-contained instance, nothing from /etc/dovecot\n"
            "protocols = imap\n"
            f"listen = {self.host}\n"
            f"base_dir = {self.run_dir}\n"
            f"state_dir = {w}/state\n"
            f"log_path = {self.log_path}\n"
            'log_timestamp = "%Y-%m-%d %H:%M:%S "\n'
            f"{ssl}"
            "disable_plaintext_auth = no\n"
            "auth_mechanisms = plain login\n"
            "imap_id_log = *\n"
            f"{rawlog}{debug}"
            "passdb {\n  driver = passwd-file\n"
            f"  args = scheme=PLAIN username_format=%u {self.users_dir}/%u\n}}\n"
            "userdb {\n  driver = static\n"
            f"  args = uid=nobody gid=nogroup home={self.home_root}/%u\n}}\n"
            "mail_location = maildir:~/Maildir\n"
            "service imap-login {\n"
            f"  inet_listener imap {{\n    address = {self.host}\n    port = {self.port}\n  }}\n"
            f"{imaps}"
            "}\n"
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        ports = [p for p in (self.port, self.ssl_port) if p]
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise DevServiceError(
                    "dovecot exited during start-up:\n"
                    + _proc.tail(self.workdir / "dovecot.stderr")
                    + "\n"
                    + _proc.tail(self.log_path)
                )
            if all(port_open(self.host, p) for p in ports) and self._greets():
                return
            time.sleep(0.02)
        raise DevServiceError(
            f"dovecot did not listen on {ports} within {self.start_timeout:.0f} s:\n"
            + _proc.tail(self.log_path)
        )

    def _greets(self) -> bool:
        import socket

        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                return s.recv(64).startswith(b"* OK")
        except OSError:
            return False


def _ensure_folder(c: Any, folder: str) -> None:
    if folder.upper() != "INBOX" and not c.folder_exists(folder):
        c.create_folder(folder)


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return b""


def _is_timestamp(b: bytes) -> bool:
    return bool(re.fullmatch(rb"\d+\.\d+", b))


def _first_timestamp(path: Path) -> float:
    try:
        with path.open("rb") as f:
            first = f.readline().split(b" ", 1)[0]
        return float(first) if _is_timestamp(first) else 0.0
    except OSError:
        return 0.0
