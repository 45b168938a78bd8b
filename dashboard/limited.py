"""Run one function on hostile input in a child process with a wall-time and address-space limit."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from typing import Any


class LimitExceeded(Exception):
    """The child ran out of time ("timeout"), died ("died": memory limit, crash) or raised ("error")."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _child(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...], memory: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as e:  # anything a hostile file provokes is an answer, not a crash
        conn.send(("error", f"{type(e).__name__}: {e}"[:300]))
    finally:
        conn.close()


def run_limited(fn: Callable[..., Any], args: tuple[Any, ...], *, seconds: float, memory: int) -> Any:
    """fn(*args) in a child limited to `memory` bytes and `seconds`; its result, or LimitExceeded.

    fn must be a module-level function (the child imports it). forkserver, as the parser pool: forking the
    threaded web server itself could copy a lock some other thread holds."""
    ctx = mp.get_context("forkserver")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, memory), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(seconds):
            raise LimitExceeded("timeout", f"timed out after {seconds:g} s")
        status, value = parent.recv()
    except EOFError:
        raise LimitExceeded("died", "the worker died (memory limit or a crash)") from None
    finally:
        parent.close()
        proc.join(1)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if status != "ok":
        raise LimitExceeded("error", value)
    return value
