"""The one embedded HTTP server: uvicorn on a socket we bind ourselves, run in a daemon thread.

Used by the daemon (webhooks, health, metrics) and by the sandbox's emulators. Binding the
socket here means port 0 works and the real port is known before serving; a host with a colon
(`::1`, `::`) binds IPv6. The socket is made with `IPPROTO_TCP` (not 0) so asyncio sets
TCP_NODELAY on each accepted connection: without it, small answers wait on Nagle's algorithm
(about 40 ms a request on loopback). uvicorn installs no signal handlers outside the main thread,
so signals stay with the process (the daemon decides when to stop, after its grace).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import uvicorn

from crm_sync.clock import SYSTEM_CLOCK

__all__ = ["BackgroundServer", "serve"]


class BackgroundServer:
    """One uvicorn server on `host:port` (port 0: the OS chooses) in a thread; a context manager.

    `graceful_shutdown`: seconds `stop` lets open connections finish (None: uvicorn's default,
    no limit but the join's).
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        graceful_shutdown: int | None = None,
    ) -> None:
        self.app = app
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        bound = self.sock.getsockname()
        self.host: str = bound[0]
        self.port: int = bound[1]
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            timeout_graceful_shutdown=graceful_shutdown,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"http-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        """`http://host:port`, the host in brackets when it is IPv6."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        """Serve, and return once uvicorn accepts connections; RuntimeError if it cannot."""
        self._thread.start()
        deadline = SYSTEM_CLOCK.monotonic() + timeout
        while not self.server.started:
            if SYSTEM_CLOCK.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the HTTP server on port {self.port} did not start")
            SYSTEM_CLOCK.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit, wait for its thread, and close the socket."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        self.sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def serve(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[BackgroundServer]:
    """`with serve(app) as server: httpx.get(server.url)`."""
    with BackgroundServer(app, host, port) as server:
        yield server
