"""Free 127.0.0.1 ports, port readiness checks and on-demand installation of Debian packages."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterable

LOCALHOST = "127.0.0.1"

_handed_out: set[int] = set()
_ports_lock = threading.Lock()
_apt_lock = threading.Lock()
_apt_updated = False


class DevServiceError(RuntimeError):
    """A real service could not be installed, started or stopped; the message says what to do."""


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port on `host` that nothing listens on now and that this process has not handed out before.

    The kernel picks it (bind to port 0); remembering handed-out ports avoids giving the same port to two
    services started in one process before either has bound it.
    """
    with _ports_lock:
        for _ in range(50):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((host, 0))
                port = int(s.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise DevServiceError("could not find a free TCP port on " + host)


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, timeout: float = 10.0, *, alive: object = None) -> None:
    """Wait until host:port accepts connections; `alive` (a callable) aborts early when it returns False."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if callable(alive) and not alive():
            raise DevServiceError(f"process died before {host}:{port} accepted connections")
        time.sleep(0.02)
    raise DevServiceError(f"nothing accepted connections on {host}:{port} within {timeout:.0f} s")


def debian_package_installed(package: str) -> bool:
    """True when dpkg says `package` is installed (not merely known or half-configured)."""
    if shutil.which("dpkg-query") is None:
        return False
    res = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return res.returncode == 0 and res.stdout.strip().endswith("install ok installed")


def ensure_debian_packages(packages: Iterable[str], *, timeout: float = 600.0) -> list[str]:
    """Install the missing ones of `packages` with apt-get; return the names that were installed.

    Raises DevServiceError naming the packages and the command to run when this is not Debian, not root,
    or apt-get fails: tests must not silently skip because a service is missing.
    """
    global _apt_updated
    wanted = list(dict.fromkeys(packages))
    with _apt_lock:
        missing = [p for p in wanted if not debian_package_installed(p)]
        if not missing:
            return []
        command = "apt-get install -y --no-install-recommends " + " ".join(missing)
        if shutil.which("apt-get") is None:
            raise DevServiceError(
                f"Debian packages missing: {missing}; this is not a Debian system: {command}"
            )
        if os.geteuid() != 0:
            raise DevServiceError(f"Debian packages missing: {missing}; install them as root: {command}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        # a lock timeout rather than an immediate failure: another session may be running apt right now
        apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "-q"]
        if not _apt_updated:
            _run_apt([*apt, "update"], env, timeout, command)
            _apt_updated = True
        _run_apt([*apt, "install", "-y", "--no-install-recommends", *missing], env, timeout, command)
        still = [p for p in missing if not debian_package_installed(p)]
        if still:
            raise DevServiceError(f"apt-get ran but {still} is still not installed; try: {command}")
        return missing


def _run_apt(argv: list[str], env: dict[str, str], timeout: float, hint: str) -> None:
    try:
        res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DevServiceError(f"{' '.join(argv)} timed out after {timeout:.0f} s; try: {hint}") from exc
    if res.returncode != 0:
        tail = (res.stdout + res.stderr).strip().splitlines()[-15:]
        raise DevServiceError(
            f"{' '.join(argv)} failed with exit code {res.returncode}; try: {hint}\n" + "\n".join(tail)
        )
