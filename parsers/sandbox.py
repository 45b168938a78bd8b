"""Parse documents in persistent worker processes with a wall-time and an address-space limit each."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from parsers.documents import ParseOptions, parse_document, unreadable_document
from parsers.types import ParsedDocument

# A worker is replaced after this many documents, so that heap fragmentation from big files cannot
# accumulate over a season of unattended running.
MAX_TASKS_PER_WORKER = 400


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


def _worker_main(conn: Connection, options: ParseOptions, daemon_pid: int = 0) -> None:
    """Child process loop: receive (data, filename), answer a ParsedDocument; None ends the loop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon's Ctrl-C is for the parent to handle
    if daemon_pid:
        _die_with_daemon(daemon_pid)
    _set_limits(options.memory_limit_mb)
    # Import the heavy libraries before the first document so its time limit is spent on the document.
    import parsers.pdf  # noqa: F401

    conn.send(("ready", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        data, filename = msg
        try:
            result: Any = parse_document(data, filename, options=options)
        except MemoryError:
            result = unreadable_document(data, filename, "exceeded memory limit")
        try:
            conn.send(result)
        except MemoryError:
            conn.send(unreadable_document(data, filename, "exceeded memory limit"))
        except (BrokenPipeError, EOFError, OSError):
            return  # the daemon is gone (killed mid-parse): nobody is waiting for the answer


class _Worker:
    def __init__(self, ctx: Any, options: ParseOptions) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(
            target=_worker_main, args=(child, options, os.getpid()), daemon=True, name="intake-parser"
        )
        self.proc.start()
        child.close()
        self.tasks = 0
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


class ParserPool:
    """A few persistent parser processes; `parse` is safe to call from several threads.

    Each call gets `options.time_limit_s` of wall time; a worker that overruns is killed and replaced and
    the document is reported unreadable ("timed out after N s"). Each worker runs under RLIMIT_AS =
    `options.memory_limit_mb`: a MemoryError inside becomes "exceeded memory limit", and so does a worker
    killed by a signal (native libraries abort on allocation failure).
    """

    def __init__(self, options: ParseOptions | None = None, workers: int = 1, *, start_method: str = "forkserver"):
        self.options = options or ParseOptions()
        methods = mp.get_all_start_methods()
        self._ctx = mp.get_context(start_method if start_method in methods else "spawn")
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

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        """Parse in a worker under the pool's limits; always returns a ParsedDocument."""
        if self._closed:
            raise RuntimeError("ParserPool is closed")
        limit = self.options.time_limit_s
        w = self._idle.get()
        t0 = time.perf_counter()
        # Start-up (imports, forkserver) is not charged to the document, but is bounded too.
        if not w.wait_ready(max(60.0, limit)):
            self._retire(w, kill=True)
            return unreadable_document(data, filename, "parser process failed to start")
        t0 = time.perf_counter()
        try:
            w.conn.send((data, filename))
        except (OSError, ValueError) as exc:
            self._retire(w, kill=True)
            return unreadable_document(data, filename, f"parser process unavailable ({exc})")
        if not w.conn.poll(limit):
            self._retire(w, kill=True)
            doc = unreadable_document(data, filename, f"timed out after {limit:g} s")
            doc.elapsed = time.perf_counter() - t0
            return doc
        try:
            result = w.conn.recv()
        except (EOFError, OSError):
            w.proc.join(2)
            code = w.proc.exitcode
            self._retire(w, kill=True)
            reason = "exceeded memory limit"
            if code is not None and code < 0:
                reason += f" (parser process killed by signal {-code})"
            doc = unreadable_document(data, filename, reason)
            doc.elapsed = time.perf_counter() - t0
            return doc
        w.tasks += 1
        if w.tasks >= MAX_TASKS_PER_WORKER:
            self._retire(w, kill=False)
        else:
            self._idle.put(w)
        return result

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

    def close(self) -> None:
        return None

    def __enter__(self) -> InProcessParser:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
