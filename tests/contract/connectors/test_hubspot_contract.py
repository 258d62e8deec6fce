"""The connector contract, run against the HubSpot connector and the HubSpot emulator."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping

import pytest

from connectors.base import Connector
from connectors.testing import ConnectorContract
from crm_sync.http_server import BackgroundServer
from crm_sync.sandbox.hubspot import HubSpotEmulator
from tests.support.contract import registry_connector, served_contract

FIELDS = {"email": "email", "phone": "mobilephone"}
OPT_OUT = "crm_sync_opt_out"


class HubSpotHarness:
    """Builds HubSpot connectors through the registry and seeds the emulator as a person would."""

    def __init__(
        self, emulator: HubSpotEmulator, server: BackgroundServer, auth: str = "private_app"
    ) -> None:
        self.emulator = emulator
        self.server = server
        self.auth = auth

    def make_connector(self, *, opt_out: bool = True) -> Connector:
        """A connector with the harness's auth flow, found by name like any configured source."""
        settings = {
            **self.emulator.auth_settings(self.auth),
            "base_url": self.server.url,
            "requests_per_second": 10_000.0,
            "max_retries": 0,
        }
        return registry_connector(
            "hubspot", settings=settings, fields=FIELDS, opt_out_field=OPT_OUT if opt_out else None
        )

    def add_record(
        self,
        values: Mapping[str, str | None],
        *,
        first_name: str,
        last_name: str,
        opted_out: bool = False,
    ) -> str:
        """A contact created in the HubSpot UI."""
        properties = {FIELDS[name]: value for name, value in values.items()}
        return self.emulator.add_contact(
            firstname=first_name,
            lastname=last_name,
            **properties,
            **{OPT_OUT: "true" if opted_out else None},
        )

    def set_value(self, record_id: str, logical_field: str, value: str | None) -> None:
        """An edit in the HubSpot UI."""
        self.emulator.set_property(record_id, FIELDS[logical_field], value)

    def get_value(self, record_id: str, logical_field: str) -> str | None:
        """The property as the emulator stores it."""
        props = self.emulator.store.get(record_id) or {}
        return props.get(FIELDS[logical_field]) or None

    def unknown_id(self) -> str:
        """A numeric id far past the emulator's counter."""
        return "987654321"


@pytest.fixture(scope="module", params=["private_app", "oauth"])
def contract(request: pytest.FixtureRequest) -> Iterator[ConnectorContract]:
    """One emulator (with unrelated seeded contacts) shared by every check of an auth flow."""
    emulator = HubSpotEmulator(
        contacts=12,
        phone_property="mobilephone",
        ten_secondly_limit=100_000,
        search_per_second=10_000,
    )
    harness = functools.partial(HubSpotHarness, emulator, auth=request.param)
    with served_contract(emulator.app, harness, page_size=3) as contract:
        yield contract


def test_hubspot_connector_keeps_the_contract(
    contract: ConnectorContract, contract_check: str
) -> None:
    """The HubSpot connector passes each contract check against the emulator."""
    contract.run(contract_check)
