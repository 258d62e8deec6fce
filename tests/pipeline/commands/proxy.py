"""A TCP proxy that can freeze: the database "hangs" (accepts, never answers) on demand.

Frozen, it stops forwarding bytes on open connections and accepts new ones without ever
connecting them upstream: what a stuck server or a silent network partition looks like.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class FreezingProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._running = threading.Event()  # set: forwarding; clear: frozen
        self._running.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def freeze(self) -> None:
        self._running.clear()

    def thaw(self) -> None:
        self._running.set()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            if not self._running.is_set():
                continue  # accepted, never answered
            upstream = socket.create_connection(self._upstream)
            self._sockets.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while not self._closed.is_set():
                data = source.recv(65536)
                if not data:
                    break
                while not self._running.wait(0.05):
                    if self._closed.is_set():
                        return
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def __enter__(self) -> FreezingProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed.set()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


class SilentServer:
    """Accepts TCP connections and never sends a byte (a database that hangs at connect)."""

    def __init__(self) -> None:
        self._proxy = FreezingProxy(("127.0.0.1", 9))
        self._proxy.freeze()
        self.port = self._proxy.port

    def __enter__(self) -> SilentServer:
        self._proxy.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._proxy.__exit__(exc_type, exc, tb)
