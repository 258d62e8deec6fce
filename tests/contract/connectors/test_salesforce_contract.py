"""The connector contract, run against the Salesforce connector and the Salesforce emulator."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Mapping

import pytest

from connectors.base import Connector
from connectors.testing import ConnectorContract
from crm_sync.http_server import BackgroundServer
from crm_sync.sandbox.salesforce import SalesforceEmulator
from crm_sync.sandbox.salesforce.data import make_id
from tests.support.contract import registry_connector, served_contract

FIELDS = {"email": "Email", "phone": "MobilePhone"}
OPT_OUT = "Enrichment_Opt_Out__c"
PAGE_SIZE = 3  # the emulator's page: the connector asks for at least 200 a page


class SalesforceHarness:
    """Builds Salesforce connectors through the registry and edits the org's Contacts directly."""

    def __init__(
        self, emulator: SalesforceEmulator, server: BackgroundServer, auth: str = "session"
    ) -> None:
        self.emulator = emulator
        self.server = server
        self.auth = auth
        self._index = itertools.count(500_000)

    def make_connector(self, *, opt_out: bool = True) -> Connector:
        """A connector logging in with the harness's auth flow, found by name like any source."""
        settings = {**self.emulator.auth_settings(self.server.url, self.auth), "max_retries": 0}
        return registry_connector(
            "salesforce",
            settings=settings,
            fields=FIELDS,
            opt_out_field=OPT_OUT if opt_out else None,
        )

    def add_record(
        self,
        values: Mapping[str, str | None],
        *,
        first_name: str,
        last_name: str,
        opted_out: bool = False,
    ) -> str:
        """A Contact without an Account, created in the Salesforce UI."""
        record_id = make_id("Contact", next(self._index))
        now = self.emulator.stamp()
        record = {
            "Id": record_id,
            "FirstName": first_name,
            "LastName": last_name,
            "Email": None,
            "Phone": None,
            "MobilePhone": None,
            "LinkedIn_URL__c": None,
            OPT_OUT: opted_out,
            "AccountId": None,
            "CreatedDate": now,
            "LastModifiedDate": now,
            "SystemModstamp": now,
        }
        record.update({FIELDS[name]: value or None for name, value in values.items()})
        self.emulator.records[record_id] = record
        return record_id

    def set_value(self, record_id: str, logical_field: str, value: str | None) -> None:
        """An edit in the UI; Salesforce stores a cleared text field as null, never ""."""
        self.emulator.set_field(record_id, FIELDS[logical_field], value or None)

    def get_value(self, record_id: str, logical_field: str) -> str | None:
        """The field as the org stores it."""
        value = self.emulator.records[record_id].get(FIELDS[logical_field])
        return str(value) if value else None

    def unknown_id(self) -> str:
        """A well-formed Contact id that no record has."""
        return make_id("Contact", 999_999_999)


AUTH_FLOWS = ["session", "password", "jwt", "client_credentials"]


@pytest.fixture(scope="module", params=AUTH_FLOWS)
def contract(request: pytest.FixtureRequest) -> Iterator[ConnectorContract]:
    """One org (with unrelated seeded Contacts and Leads) shared by every check of a flow."""
    emulator = SalesforceEmulator(contacts=12, leads=5, page_size=PAGE_SIZE)
    harness = functools.partial(SalesforceHarness, emulator, auth=request.param)
    with served_contract(emulator.app, harness, page_size=PAGE_SIZE) as contract:
        yield contract


def test_salesforce_connector_keeps_the_contract(
    contract: ConnectorContract, contract_check: str
) -> None:
    """The Salesforce connector passes each contract check against the emulator."""
    contract.run(contract_check)
