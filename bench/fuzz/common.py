"""Shared pieces of the fuzz harnesses: per-input watchdog, network ban, finding files, atheris start-up."""

from __future__ import annotations

import _thread
import hashlib
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HERE = Path(__file__).resolve().parent
CRASHES = HERE / "crashes"


class Hang(BaseException):
    """Raised in the main thread when one input ran past its limit (BaseException: parsers catch Exception)."""


class NetworkUsed(BaseException):
    """A parser tried to open a socket: parsers must never touch the network."""


def ban_network() -> None:
    """Make every socket creation fail loudly (a parser fetching a DTD or an image would hit this)."""

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise NetworkUsed("a parser tried to create a socket")

    socket.socket = refuse  # type: ignore[assignment,misc]
    socket.create_connection = refuse
    socket.getaddrinfo = refuse


class Watchdog:
    """One thread that interrupts the main thread with Hang when an input runs past `limit` seconds.

    It interrupts via _thread.interrupt_main (no real signal: libFuzzer owns SIGALRM for its -timeout),
    so a hang inside native code is only caught by libFuzzer's own -timeout, set higher by run.py.
    """

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._deadline = 0.0
        self._gen = 0
        self._fired = -1
        self._cv = threading.Condition()
        signal.signal(signal.SIGVTALRM, self._on_signal)
        threading.Thread(target=self._run, daemon=True, name="fuzz-watchdog").start()

    def _on_signal(self, *_: Any) -> None:
        raise Hang(f"input ran longer than {self.limit:g} s")

    def _run(self) -> None:
        with self._cv:
            while True:
                if self._deadline == 0.0:
                    self._cv.wait()
                    continue
                now = time.monotonic()
                if now >= self._deadline and self._fired != self._gen:
                    self._fired = self._gen
                    _thread.interrupt_main(signal.SIGVTALRM)
                    self._deadline = 0.0
                    continue
                self._cv.wait(max(0.001, self._deadline - now))

    def start(self) -> None:
        with self._cv:
            self._gen += 1
            self._deadline = time.monotonic() + self.limit
            self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._deadline = 0.0


def save_finding(target: str, kind: str, data: bytes, detail: str = "") -> Path:
    """Keep an input that hung or misbehaved without crashing: crashes/<target>/<kind>-<sha1>(.txt)."""
    d = CRASHES / target
    d.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha1(data).hexdigest()
    p = d / f"{kind}-{h}"
    if not p.exists():
        p.write_bytes(data)
        if detail:
            p.with_suffix(".txt").write_text(detail, encoding="utf-8")
        print(f"\n=== FINDING {kind}: {p}\n{detail[:2000]}", file=sys.stderr, flush=True)
    return p


def run(target: str, one_input: Callable[[bytes], None], limit: float, instrumented: Callable[[], None]) -> None:
    """Start atheris: `instrumented` imports the code under test inside atheris' import instrumentation."""
    import atheris

    with atheris.instrument_imports():
        instrumented()
    ban_network()
    dog = Watchdog(float(os.environ.get("FUZZ_HANG_S", limit)))

    slow = float(os.environ.get("FUZZ_SLOW_S", 2.0))

    def test(data: bytes) -> None:
        t0 = time.monotonic()
        try:
            dog.start()
            one_input(data)
        except Hang as exc:
            dog.stop()
            if time.monotonic() - t0 >= dog.limit * 0.9:  # not a late interrupt meant for the previous input
                save_finding(target, "hang", data, f"{exc}\n{traceback.format_exc()}")
        finally:
            dog.stop()
        took = time.monotonic() - t0
        if slow <= took < dog.limit * 0.9:
            # Inputs are small (-max_len): one this slow points at superlinear work, which bigger input turns
            # into a hang.
            save_finding(target, "slow", data, f"{took:.2f} s for {len(data)} bytes")

    atheris.Setup(sys.argv, test)
    atheris.Fuzz()
