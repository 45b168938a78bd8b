"""Named crash points for the crash-safety tests and the rehearsal; inert unless INTAKE_FAULT names one."""

from __future__ import annotations

import os
import signal
import threading

_hits: dict[str, int] = {}
_lock = threading.Lock()


def crash_point(name: str) -> None:
    """SIGKILL this process here when INTAKE_FAULT lists `name` (or `name:N` for the N-th time here).

    SIGKILL, not an exception: nothing gets to clean up, exactly like a power cut or the OOM killer.
    """
    spec = os.environ.get("INTAKE_FAULT")
    if not spec:
        return
    for item in spec.split(","):
        point, _, nth = item.strip().partition(":")
        if point != name:
            continue
        with _lock:
            _hits[name] = _hits.get(name, 0) + 1
            count = _hits[name]
        if count >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
