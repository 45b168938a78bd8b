"""Parse documents and messages in persistent worker processes with a wall-time and address-space limit each."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, TypeVar

from parsers.documents import ParseOptions, parse_document, unreadable_document
from parsers.mail import MessageParseError, parse_message
from parsers.types import ParsedDocument, ParsedMessage

T = TypeVar("T")

# A worker is replaced after this many documents, so that heap fragmentation from big files cannot
# accumulate over a season of unattended running.
MAX_TASKS_PER_WORKER = 400
# A message worker is replaced after this many messages: its private memory creeps up (bench_poll: about
# 12 MB per worker over 1,000 messages) and a new one, forked from the preloaded forkserver, costs ~10 ms.
MAX_MESSAGES_PER_WORKER = 1000
MESSAGE_TASK_WEIGHT = MAX_TASKS_PER_WORKER / MAX_MESSAGES_PER_WORKER


def _set_limits(memory_limit_mb: int) -> None:
    import resource

    if memory_limit_mb > 0:
        limit = memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # A crashing native library must not leave gigabyte core files on the daemon's disk.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _die_with_daemon(daemon_pid: int) -> None:
    """Exit when the daemon that started this worker is gone, even in the middle of a document.

    The worker's parent is multiprocessing's forkserver, which can outlive a SIGKILLed daemon, so neither
    a parent-death signal nor a closed pipe (noticed only when the answer is sent) stops a long OCR run: a
    watchdog thread looks for the daemon's process once a second.
    """

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(daemon_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="intake-parser-watchdog", daemon=True).start()


def _document_task(data: bytes, filename: str, options: ParseOptions) -> ParsedDocument:
    try:
        return parse_document(data, filename, options=options)
    except MemoryError:
        return unreadable_document(data, filename, "exceeded memory limit")


def _message_task(raw: bytes, internaldate: datetime | None) -> tuple[str, Any]:
    """("ok", ParsedMessage), ("unparseable", reason) or ("bug", traceback): exceptions do not cross a pipe."""
    try:
        return "ok", parse_message(raw, internaldate=internaldate)
    except MessageParseError as exc:
        return "unparseable", str(exc)
    except MemoryError:
        return "unparseable", "exceeded memory limit"
    except Exception:
        return "bug", traceback.format_exc()


def _worker_main(conn: _Channel, options: ParseOptions, daemon_pid: int = 0) -> None:
    """Child process loop: receive a task, answer its result; None ends the loop.

    Tasks are ("document", data, filename) -> ParsedDocument and ("message", raw, internaldate) -> the
    tuple _message_task returns.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon's Ctrl-C is for the parent to handle
    if daemon_pid:
        _die_with_daemon(daemon_pid)
    _set_limits(options.memory_limit_mb)
    # Import the heavy libraries before the first document so its time limit is spent on the document.
    import parsers.pdf  # noqa: F401

    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        kind = task[0]
        result: Any
        if kind == "message":
            result = _message_task(task[1], task[2])
            fallback: Any = ("unparseable", "exceeded memory limit")
        else:
            result = _document_task(task[1], task[2], options)
            fallback = unreadable_document(task[1], task[2], "exceeded memory limit")
        try:
            conn.send(result)
        except MemoryError:
            conn.send(fallback)
        except (BrokenPipeError, EOFError, OSError):
            return  # the daemon is gone (killed mid-parse): nobody is waiting for the answer


# Bytes a pipe to or from a worker holds. With Linux's default (64 KB) a 170 KB message goes in three
# writes, each waiting for the GIL again in a daemon whose other threads are busy (bench_poll: 4 % more
# messages/s with 1 MB). 1 MB is what an unprivileged process may ask for.
PIPE_BYTES = 1 << 20


def _widen(conn: Connection) -> None:
    try:
        import fcntl

        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or a lower pipe-max-size: the default size only costs speed


class _Channel:
    """Two one-way pipes used as one connection (a socketpair's buffer cannot be enlarged unprivileged)."""

    def __init__(self, reader: Connection, writer: Connection) -> None:
        self.reader = reader
        self.writer = writer

    def send(self, obj: Any) -> None:
        self.writer.send(obj)

    def recv(self) -> Any:
        return self.reader.recv()

    def poll(self, timeout: float) -> bool:
        return self.reader.poll(timeout)

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


def _channel_pair(ctx: Any) -> tuple[_Channel, _Channel]:
    """(parent's end, child's end)."""
    task_r, task_w = ctx.Pipe(duplex=False)
    result_r, result_w = ctx.Pipe(duplex=False)
    for c in (task_w, result_r):
        _widen(c)
    return _Channel(result_r, task_w), _Channel(task_r, result_w)


class _Worker:
    def __init__(self, ctx: Any, options: ParseOptions) -> None:
        self.conn, child = _channel_pair(ctx)
        self.proc = ctx.Process(
            target=_worker_main, args=(child, options, os.getpid()), daemon=True, name="intake-parser"
        )
        self.proc.start()
        child.close()
        self.tasks = 0.0
        self.ready = False

    def wait_ready(self, timeout: float) -> bool:
        if self.ready:
            return True
        if self.conn.poll(timeout):
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                return False
            self.ready = isinstance(msg, tuple) and msg[0] == "ready"
        return self.ready

    def kill(self) -> None:
        try:
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join(5)
        finally:
            self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
            self.proc.join(5)
        except (OSError, ValueError):
            pass
        if self.proc.is_alive():
            self.kill()
        else:
            self.conn.close()


def _forkserver_preload() -> list[str]:
    """Modules the forkserver imports once, so that every worker forked from it starts with them.

    multiprocessing makes each new worker import the program's main module again (for `python -m
    intake.cli` that is the whole daemon: half a second of imports per worker, paid again by every
    replacement after a timeout). With the module already in the forkserver that costs nothing.
    """
    mods = ["__main__", "parsers.sandbox", "parsers.pdf"]
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", None)
    if name and not name.endswith("__main__"):
        mods.append(name)
    return mods


class ParserPool:
    """A few persistent parser processes; `parse` and `parse_message` are safe to call from several threads.

    Each call gets `options.time_limit_s` of wall time; a worker that overruns is killed and replaced and
    the document is reported unreadable ("timed out after N s"), the message unparseable. Each worker runs
    under RLIMIT_AS = `options.memory_limit_mb`: a MemoryError inside becomes "exceeded memory limit", and
    so does a worker killed by a signal (native libraries abort on allocation failure).
    """

    def __init__(self, options: ParseOptions | None = None, workers: int = 1, *, start_method: str = "forkserver"):
        self.options = options or ParseOptions()
        methods = mp.get_all_start_methods()
        self._ctx = mp.get_context(start_method if start_method in methods else "spawn")
        if self._ctx.get_start_method() == "forkserver":
            # Takes effect when the forkserver starts (once per process); later pools share it.
            self._ctx.set_forkserver_preload(_forkserver_preload())
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(max(1, workers)):
            self._add_worker()

    def _add_worker(self) -> None:
        w = _Worker(self._ctx, self.options)
        with self._lock:
            self._all.add(w)
        self._idle.put(w)

    def _retire(self, w: _Worker, kill: bool) -> None:
        with self._lock:
            self._all.discard(w)
        if kill:
            w.kill()
        else:
            w.stop()
        if not self._closed:
            self._add_worker()

    def _run(self, task: tuple[Any, ...], failed: Callable[[str, float], T], weight: float = 1.0) -> Any:
        """Send one task to an idle worker under the time limit; `failed(reason, elapsed)` answers for a
        worker that could not start, overran or died."""
        if self._closed:
            raise RuntimeError("ParserPool is closed")
        limit = self.options.time_limit_s
        w = self._idle.get()
        # Start-up (imports, forkserver) is not charged to the task, but is bounded too.
        if not w.wait_ready(max(60.0, limit)):
            self._retire(w, kill=True)
            return failed("parser process failed to start", 0.0)
        t0 = time.perf_counter()
        try:
            w.conn.send(task)
        except (OSError, ValueError) as exc:
            self._retire(w, kill=True)
            return failed(f"parser process unavailable ({exc})", 0.0)
        if not w.conn.poll(limit):
            self._retire(w, kill=True)
            return failed(f"timed out after {limit:g} s", time.perf_counter() - t0)
        try:
            result = w.conn.recv()
        except (EOFError, OSError):
            w.proc.join(2)
            code = w.proc.exitcode
            self._retire(w, kill=True)
            reason = "exceeded memory limit"
            if code is not None and code < 0:
                reason += f" (parser process killed by signal {-code})"
            return failed(reason, time.perf_counter() - t0)
        w.tasks += weight
        if w.tasks >= MAX_TASKS_PER_WORKER:
            self._retire(w, kill=False)
        else:
            self._idle.put(w)
        return result

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        """Parse in a worker under the pool's limits; always returns a ParsedDocument."""

        def failed(reason: str, elapsed: float) -> ParsedDocument:
            doc = unreadable_document(data, filename, reason)
            if elapsed:
                doc.elapsed = elapsed
            return doc

        result: ParsedDocument = self._run(("document", data, filename), failed)
        return result

    def parse_message(self, raw: bytes, *, internaldate: datetime | None = None) -> ParsedMessage:
        """parsers.mail.parse_message in a worker under the pool's limits.

        Raises MessageParseError when the bytes are not a message, or when parsing them overran the time
        or memory limit (a hostile message must not stall or kill the daemon); RuntimeError when no worker
        could run it or the parser has a bug (the traceback is in the message).
        """
        unavailable = ("parser process failed to start", "parser process unavailable")

        def failed(reason: str, _elapsed: float) -> tuple[str, str]:
            return ("bug" if reason.startswith(unavailable) else "unparseable"), reason

        status, value = self._run(("message", raw, internaldate), failed, MESSAGE_TASK_WEIGHT)
        if status == "ok":
            parsed: ParsedMessage = value
            return parsed
        if status == "unparseable":
            raise MessageParseError(value)
        raise RuntimeError(f"message parser failed in its worker process: {value}")

    def close(self) -> None:
        """Stop every worker (idle ones politely, busy ones are killed when their call returns)."""
        self._closed = True
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for w in workers:
            w.stop()

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class InProcessParser:
    """The same API without processes or limits: for unit tests and one-off tools."""

    def __init__(self, options: ParseOptions | None = None) -> None:
        self.options = options or ParseOptions()

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        return parse_document(data, filename, options=self.options)

    def parse_message(self, raw: bytes, *, internaldate: datetime | None = None) -> ParsedMessage:
        return parse_message(raw, internaldate=internaldate)

    def close(self) -> None:
        return None

    def __enter__(self) -> InProcessParser:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
