"""The one embedded server: binds IPv6 when the host says so, and answers without Nagle's delay."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crm_sync.http_server import BackgroundServer, serve


def _app(server: list[BackgroundServer]) -> Starlette:
    """Answers with TCP_NODELAY of every connection uvicorn holds (this request's among them)."""

    async def nodelay(request: Request) -> JSONResponse:
        flags = []
        for protocol in server[0].server.server_state.connections:
            sock: Any = protocol.transport.get_extra_info("socket")
            flags.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        return JSONResponse({"nodelay": flags})

    return Starlette(routes=[Route("/", nodelay)])


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_accepted_connections_have_tcp_nodelay() -> None:
    """Each accepted connection has TCP_NODELAY set (the listening socket is IPPROTO_TCP)."""
    holder: list[BackgroundServer] = []
    with serve(_app(holder)) as server:
        holder.append(server)
        assert server.sock.proto == socket.IPPROTO_TCP
        answer = httpx.get(server.url, timeout=10).json()
    assert answer["nodelay"], "uvicorn held no connection"
    assert all(flag != 0 for flag in answer["nodelay"])


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback (::1) on this host")
def test_an_ipv6_host_binds_ipv6_and_serves() -> None:
    """`::1` binds an AF_INET6 socket; the URL brackets the address and answers."""
    holder: list[BackgroundServer] = []
    with BackgroundServer(_app(holder), "::1") as server:
        holder.append(server)
        assert server.sock.family == socket.AF_INET6
        assert server.url == f"http://[::1]:{server.port}"
        answer = httpx.get(server.url, timeout=10)
    assert answer.status_code == 200
    assert all(flag != 0 for flag in answer.json()["nodelay"])


def test_port_zero_gives_the_real_port_before_start_and_stop_before_start_is_safe() -> None:
    """The OS-chosen port is known at once; stopping a server never started only closes it."""
    server = BackgroundServer(_app([]))
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"
    server.stop()
    assert server.sock.fileno() == -1
