"""Fixtures: a HubSpot emulator on a real socket and connectors pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.hubspot import HubSpotConnector, HubSpotSettings
from crm_sync.config import SourceConfig
from crm_sync.http_server import BackgroundServer
from crm_sync.sandbox.hubspot import HubSpotEmulator
from crm_sync.sandbox.people import Person
from tests.support.clock import FakeClock

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"


def person(index: int, *, email: str | None = None, phone: str | None = None, **kw: Any) -> Person:
    """A seeded person with a unique identity and chosen gaps."""
    fields: dict[str, Any] = {
        "first_name": f"First{index}",
        "last_name": f"Last{index}",
        "company": "Acme Analytics",
        "domain": "acme-analytics.com",
        "linkedin_url": None,
        "opted_out": False,
    }
    fields.update(kw)
    return Person(index=index, email=email, phone=phone, **fields)


def make_source(**overrides: Any) -> SourceConfig:
    """A HubSpot source config; `settings` entries are merged into the defaults."""
    settings = {"access_token": TOKEN, "requests_per_second": 1000.0}
    settings.update(overrides.pop("settings", {}))
    data: dict[str, Any] = {
        "name": "hs",
        "connector": "hubspot",
        "settings": settings,
        "fields": {"email": "email", "phone": "phone"},
        "opt_out_field": "crm_sync_opt_out",
    }
    data.update(overrides)
    return SourceConfig.model_validate(data)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock shared by an emulator (rate limits, search lag, timestamps) and a connector."""
    return FakeClock()


@pytest.fixture
def serve_emulator() -> Iterator[Callable[[HubSpotEmulator], BackgroundServer]]:
    """Start emulators on loopback sockets; all are stopped at the end of the test."""
    servers: list[BackgroundServer] = []

    def start(emulator: HubSpotEmulator) -> BackgroundServer:
        server = BackgroundServer(emulator.app).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def connect(
    serve_emulator: Callable[[HubSpotEmulator], BackgroundServer], clock: FakeClock
) -> Callable[..., HubSpotConnector]:
    """Serve an emulator and return a connector to it (the fake clock is shared)."""

    def build(emulator: HubSpotEmulator, **overrides: Any) -> HubSpotConnector:
        server = serve_emulator(emulator)
        settings = {"base_url": server.url, "access_token": emulator.token}
        settings.update(overrides.pop("settings", {}))
        source = make_source(settings=settings, **overrides)
        parsed = HubSpotSettings.model_validate(source.settings)
        return HubSpotConnector(source.spec(), parsed, clock=clock)

    return build
