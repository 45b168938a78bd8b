"""Shared plumbing for the runners: work dirs other users can reach, process-group stops, exit cleanup."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Protocol

from devservices.ports import DevServiceError


class Stoppable(Protocol):
    def stop(self) -> None: ...


_live: weakref.WeakSet[Stoppable] = weakref.WeakSet()
_live_lock = threading.Lock()


def register(service: Stoppable) -> None:
    """Remember a started service so that it is stopped at interpreter exit if nobody else stopped it."""
    with _live_lock:
        _live.add(service)


def unregister(service: Stoppable) -> None:
    with _live_lock:
        _live.discard(service)


@atexit.register
def _stop_leftovers() -> None:
    # a crashed test session must not leave daemons listening for the next one
    with _live_lock:
        services = list(_live)
    for service in services:
        # best effort: at exit there is nobody left to report a failure to
        with contextlib.suppress(Exception):
            getattr(service, "close", service.stop)()


def work_dir(path: Path | str | None, prefix: str) -> Path:
    """The given directory (created) or a fresh one under the system temp dir, reachable by service users."""
    p = Path(tempfile.mkdtemp(prefix=prefix)) if path is None else Path(path)
    p.mkdir(parents=True, exist_ok=True)
    make_traversable(p)
    return p.resolve()


# sun_path holds 108 bytes, NUL included
_UNIX_SOCKET_PATH_MAX = 107


def socket_dir(preferred: Path, longest_name: int, prefix: str) -> tuple[Path, bool]:
    """`preferred` if every socket name up to `longest_name` chars fits a unix socket path there, else a
    fresh short directory under /tmp; the flag says whether it is such a temporary one to remove later.

    Deep work dirs (a test's own dir inside a session dir) overflow sun_path, and Dovecot then fails
    with "net_listen_unix(...) failed: File name too long".
    """
    if len(str(preferred)) + 1 + longest_name <= _UNIX_SOCKET_PATH_MAX:
        preferred.mkdir(parents=True, exist_ok=True)
        return preferred, False
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    make_traversable(path)
    return path, True


def make_traversable(path: Path) -> None:
    """Give group/other r+x on `path` and every ancestor that lacks it.

    Dovecot's auth/mail processes (users dovecot, nobody) and PostgreSQL (user postgres) must reach files
    inside the work dir; mkdtemp and pytest's tmp_path create 0700 directories, and Dovecot then fails
    logins with "Temporary authentication failure" ("missing +x perm" in its log).
    """
    for p in [path.resolve(), *path.resolve().parents]:
        mode = p.stat().st_mode & 0o7777
        if mode & 0o055 != 0o055:
            os.chmod(p, mode | 0o055)


def chown(path: Path, user: str, group: str | None = None) -> None:
    shutil.chown(path, user=user, group=group)


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group we created; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, read from /proc.

    kill(-pgid, 0) is not enough: orphaned zombies keep succeeding until PID 1 reaps them.
    """
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: split after the last ')'
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def stop_process_group(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM the whole process group of a leader started with start_new_session=True, then SIGKILL
    whatever is left after `timeout`.

    Children of a daemon (Dovecot's imap/auth/log processes) share the leader's process group, so the
    group id names exactly what we started. Terminating only the Dovecot master takes 1-10 s (it waits
    for its children and leaves connected imap processes behind); the whole group exits in milliseconds.
    """
    pgid = proc.pid
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        # again and again: a daemon may fork a child (Dovecot spawns login processes on demand) just after
        # a signal, and that child, never told to stop, keeps the master waiting for it
        signal_group(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.1)
    if proc.poll() is None:
        signal_group(pgid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.01)
    if group_alive(pgid):
        signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.01)
    if group_alive(pgid):
        raise DevServiceError(f"processes {group_members(pgid)} of group {pgid} survived SIGKILL")


def kill_process_group(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGKILL the whole group at once, like a crash or an OOM kill, and reap the leader."""
    signal_group(proc.pid, signal.SIGKILL)
    proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} not readable)"
