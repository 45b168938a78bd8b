"""A small TCP proxy on 127.0.0.1 that can cut, stall or drop connections, to test network failures."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from types import TracebackType
from typing import Self

from devservices import _proc
from devservices.ports import LOCALHOST, DevServiceError

_CHUNK = 65536


class _Conn:
    """One client connection and its upstream; the proxy's lock guards the counters and budgets."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.down_budget: int | None = None  # bytes still allowed server -> client before the cut
        self.up_budget: int | None = None  # bytes still allowed client -> server before the cut
        self.abort = False
        self.closed = threading.Event()

    def close(self, *, reset: bool = False) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for s in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                if reset:
                    # SO_LINGER 0: close() sends RST, as a middlebox or a crashed peer would
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()


class TcpProxy:
    """Listens on 127.0.0.1:`port` and forwards every connection to `target_host`:`target_port`.

    Faults, all thread-safe and callable while clients are connected:
    - cut_after_bytes(n): each open connection is closed once n more bytes went server -> client
      (direction="up": client -> server), e.g. in the middle of a FETCH literal;
    - drop_all(): close every open connection now;
    - pause()/resume(): stop forwarding (connections stay open and silent: client timeouts);
    - refuse_new(True): new connections are closed right after accept.
    """

    def __init__(self, target_host: str, target_port: int, *, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.host = LOCALHOST
        self._requested_port = port
        self.port = 0
        self._lock = threading.Lock()
        self._conns: list[_Conn] = []
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._refuse_new = False
        self._cut_new: tuple[int, str, bool] | None = None
        self.accepted = 0
        self.bytes_down = 0
        self.bytes_up = 0

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._listener is not None:
            return self
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((self.host, self._requested_port))
        except OSError as exc:
            s.close()
            raise DevServiceError(
                f"proxy cannot listen on {self.host}:{self._requested_port}: {exc}"
            ) from exc
        s.listen(64)
        self.port = int(s.getsockname()[1])
        # keep the port on restart: clients are configured with it
        self._requested_port = self.port
        self._listener = s
        self._stopping.clear()
        self._accept_thread = threading.Thread(target=self._accept_loop, name="TcpProxy-accept", daemon=True)
        self._accept_thread.start()
        _proc.register(self)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._forwarding.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
            self._accept_thread = None
        self.drop_all()
        _proc.unregister(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------------------------

    def cut_after_bytes(
        self, n: int, *, direction: str = "down", reset: bool = False, new_connections: bool = False
    ) -> None:
        """Close each open connection after `n` more bytes in `direction` ("down": server to client).

        `reset` closes with RST instead of FIN. With `new_connections`, connections opened later get the
        same budget too (until clear_faults()); by default a client that reconnects gets a clean line.
        """
        if direction not in ("down", "up"):
            raise ValueError("direction is 'down' (server to client) or 'up' (client to server)")
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            for c in self._conns:
                self._arm(c, n, direction, reset)
            self._cut_new = (n, direction, reset) if new_connections else None
        if n == 0:
            for c in self.connections():
                c.close(reset=reset)

    def drop_all(self, *, reset: bool = False) -> int:
        """Close every open connection now; return how many were closed."""
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            c.close(reset=reset)
        return len(conns)

    def pause(self) -> None:
        """Stop forwarding in both directions; bytes wait in the kernel buffers, the peers see silence."""
        self._forwarding.clear()

    def resume(self) -> None:
        self._forwarding.set()

    def refuse_new(self, refuse: bool = True) -> None:
        self._refuse_new = refuse

    def clear_faults(self) -> None:
        with self._lock:
            self._cut_new = None
            for c in self._conns:
                c.down_budget = c.up_budget = None
        self._refuse_new = False
        self._forwarding.set()

    def connections(self) -> list[_Conn]:
        with self._lock:
            return [c for c in self._conns if not c.closed.is_set()]

    @property
    def connection_count(self) -> int:
        return len(self.connections())

    # -- internals -------------------------------------------------------------------------------------

    @staticmethod
    def _arm(c: _Conn, n: int, direction: str, reset: bool) -> None:
        if direction == "down":
            c.down_budget = n
        else:
            c.up_budget = n
        c.abort = reset

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        # a timeout, because closing a socket does not wake a thread blocked in accept() on Linux
        listener.settimeout(0.1)
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            if self._refuse_new:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                # the server is down: the client sees its connection closed, like a refused connect
                client.close()
                continue
            conn = _Conn(client, upstream)
            with self._lock:
                self.accepted += 1
                self._conns.append(conn)
                if self._cut_new is not None:
                    self._arm(conn, *self._cut_new)
            threading.Thread(target=self._pump, args=(conn,), name="TcpProxy-pump", daemon=True).start()

    def _pump(self, c: _Conn) -> None:
        try:
            while not c.closed.is_set() and not self._stopping.is_set():
                if not self._forwarding.wait(timeout=0.1):
                    continue
                try:
                    readable, _, _ = select.select([c.client, c.upstream], [], [], 0.1)
                except (OSError, ValueError):
                    break
                for src in readable:
                    if not self._forwarding.is_set():
                        break
                    down = src is c.upstream
                    dst = c.client if down else c.upstream
                    try:
                        data = src.recv(_CHUNK)
                    except OSError:
                        data = b""
                    if not data:
                        c.close()
                        break
                    cut = False
                    with self._lock:
                        budget = c.down_budget if down else c.up_budget
                        if budget is not None and len(data) >= budget:
                            data, cut = data[:budget], True
                        elif budget is not None:
                            if down:
                                c.down_budget = budget - len(data)
                            else:
                                c.up_budget = budget - len(data)
                        if down:
                            self.bytes_down += len(data)
                        else:
                            self.bytes_up += len(data)
                    try:
                        if data:
                            dst.sendall(data)
                    except OSError:
                        c.close()
                        break
                    if cut:
                        c.close(reset=c.abort)
                        break
        finally:
            c.close()
            with self._lock:
                if c in self._conns:
                    self._conns.remove(c)
