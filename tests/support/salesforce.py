"""Fixtures: a Salesforce emulator on a real loopback socket and connectors pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.salesforce import SalesforceConnector
from crm_sync.clock import SYSTEM_CLOCK
from crm_sync.config import SourceConfig
from crm_sync.http_server import BackgroundServer
from crm_sync.sandbox.salesforce import SalesforceEmulator
from crm_sync.sandbox.salesforce.keys import sandbox_key_pair
from tests.support.clock import FakeClock

OPT_OUT = "Enrichment_Opt_Out__c"


class Org:
    """An emulator, its server, and a way to build connectors against it."""

    def __init__(self, emulator: SalesforceEmulator, server: BackgroundServer) -> None:
        self.emulator = emulator
        self.server = server
        # sleeps are recorded and skipped; the wall clock starts now (JWT assertions expire)
        self.clock = FakeClock(SYSTEM_CLOCK.now())

    def connector(
        self,
        *,
        fields: dict[str, str] | None = None,
        filters: Any = None,
        opt_out_field: str | None = OPT_OUT,
        **settings: Any,
    ) -> SalesforceConnector:
        """A connector using the session id unless other credentials are given."""
        if not {"username", "session_id", "consumer_key", "auth"} & set(settings):
            settings.update(instance_url=self.server.url, session_id=self.emulator.session_id)
        source = SourceConfig(
            name="sf",
            connector="salesforce",
            fields=fields or {"email": "Email", "phone": "MobilePhone"},
            settings=settings,
            filters=filters,
            opt_out_field=opt_out_field,
        )
        return SalesforceConnector(
            source.spec(),
            SalesforceConnector.settings_model.model_validate(settings),
            clock=self.clock,
        )

    def jwt_settings(self, **overrides: Any) -> dict[str, Any]:
        """Settings of the JWT bearer flow for the emulator's app and pre-authorized user."""
        settings: dict[str, Any] = {
            "consumer_key": self.emulator.oauth_app.consumer_key,
            "username": self.emulator.username,
            "private_key": sandbox_key_pair().private_key,
            "login_url": self.server.url,
        }
        settings.update(overrides)
        return settings

    def client_credentials_settings(self, **overrides: Any) -> dict[str, Any]:
        """Settings of the client credentials flow for the emulator's app."""
        settings: dict[str, Any] = {
            "consumer_key": self.emulator.oauth_app.consumer_key,
            "consumer_secret": self.emulator.oauth_app.consumer_secret,
            "login_url": self.server.url,
        }
        settings.update(overrides)
        return settings


@pytest.fixture
def make_org() -> Iterator[Callable[..., Org]]:
    """Start emulators on demand; stop them all at the end of the test."""
    servers: list[BackgroundServer] = []

    def _make(**kwargs: Any) -> Org:
        emulator = SalesforceEmulator(**kwargs)
        server = BackgroundServer(emulator.app).start()
        servers.append(server)
        return Org(emulator, server)

    yield _make
    for server in servers:
        server.stop()


@pytest.fixture
def org(make_org: Callable[..., Org]) -> Org:
    """180 Contacts and 180 Leads, 50 records a page: four pages of candidates."""
    return make_org(contacts=180, leads=180, page_size=50)


def expected_ids(
    org: Org,
    sobject: str,
    fields: list[str],
    extra: Callable[[dict[str, Any]], bool] = lambda record: True,
    opt_out: bool = True,
) -> list[str]:
    """Ids the connector should find, computed from the emulator's records in plain Python."""
    return sorted(
        record_id
        for record_id, record in org.emulator.of_type(sobject).items()
        if any(record.get(f) is None for f in fields)
        and not (opt_out and record.get(OPT_OUT) is True)
        and extra(record)
    )
