"""Fixtures for the enrichment emulator tests: the emulator on a real socket, a webhook receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sync.http_server import BackgroundServer
from crm_sync.sandbox.enrichment import EnrichmentEmulator

KEY = "sandbox-enrichment-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def contact(first: str = "Ada", last: str = "Lovelace", **extra: Any) -> dict[str, Any]:
    """One valid `datas` item; keyword arguments override or add fields."""
    item: dict[str, Any] = {"firstname": first, "lastname": last, "domain": "acme-analytics.com"}
    item.update(extra)
    return item


def bulk(*items: dict[str, Any], name: str = "test batch", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "datas": list(items) or [contact()]}
    body.update(extra)
    return body


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `predicate` until true; fail the test if it never becomes true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached")
        time.sleep(0.005)


@dataclass
class Receiver:
    """A webhook endpoint: answers the queued statuses in turn (then 200), keeps what it got."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.received.append((body, dict(request.headers)))
            status = self.statuses.pop(0) if self.statuses else 200
        return Response(status_code=status)

    def count(self) -> int:
        with self.lock:
            return len(self.received)


@pytest.fixture
def make_api() -> Iterator[Callable[..., tuple[EnrichmentEmulator, httpx.Client]]]:
    """Start an emulator with the given options on a real socket; give it and an authed client."""
    started: list[tuple[BackgroundServer, httpx.Client]] = []

    def make(**options: Any) -> tuple[EnrichmentEmulator, httpx.Client]:
        emulator = EnrichmentEmulator(**options)
        server = BackgroundServer(emulator.app).start()
        client = httpx.Client(base_url=f"{server.url}/api/v1", headers=AUTH, timeout=10)
        started.append((server, client))
        return emulator, client

    yield make
    for server, client in started:
        client.close()
        server.stop()


@pytest.fixture(scope="module")
def shared_api() -> Iterator[tuple[EnrichmentEmulator, httpx.Client]]:
    """One emulator for a whole module, for tests that change no state (refused calls)."""
    emulator = EnrichmentEmulator(completion_delay=3600, rate_limit_calls=10_000)
    with (
        BackgroundServer(emulator.app) as server,
        httpx.Client(base_url=f"{server.url}/api/v1", headers=AUTH) as client,
    ):
        yield emulator, client


@pytest.fixture
def api(
    make_api: Callable[..., tuple[EnrichmentEmulator, httpx.Client]],
) -> tuple[EnrichmentEmulator, httpx.Client]:
    """An emulator whose jobs never finish alone (tests call finish_all)."""
    return make_api(completion_delay=3600)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on its own socket."""
    rec = Receiver()
    app = Starlette(routes=[Route("/hook", rec.hook, methods=["POST"])])
    with BackgroundServer(app) as server:
        rec.url = f"{server.url}/hook"
        yield rec
