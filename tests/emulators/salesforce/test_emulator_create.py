"""The Salesforce emulator creates Contacts and Leads, spoken to with simple-salesforce."""

from __future__ import annotations

import time

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connectors.salesforce import SalesforceSettings, build_session
from tests.support.salesforce import Org


def _client(org: Org) -> Salesforce:
    """simple-salesforce on the connector's session (https:// rewritten to the plain emulator)."""
    settings = SalesforceSettings.model_validate(
        {"instance_url": org.server.url, "session_id": org.emulator.session_id}
    )
    return Salesforce(
        instance_url=org.server.url,
        session_id=org.emulator.session_id,
        session=build_session(settings),
    )


def test_create_contact_and_lead_with_system_modstamp(org: Org) -> None:
    """201 with the new id; CreatedDate, LastModifiedDate and SystemModstamp are set to now."""
    sf = _client(org)
    contact = sf.Contact.create({"FirstName": "Ada", "LastName": "Lovelace"})
    lead = sf.Lead.create({"LastName": "Hopper", "Company": "Navy"})
    assert contact["success"]
    assert lead["success"]
    record = org.emulator.records[contact["id"]]
    assert record["SystemModstamp"] == record["CreatedDate"] == record["LastModifiedDate"]
    assert record["SystemModstamp"].startswith(time.strftime("%Y-%m-%d", time.gmtime()))
    assert org.emulator.records[lead["id"]]["Company"] == "Navy"


def test_create_refuses_missing_required_and_read_only_fields(org: Org) -> None:
    """A Lead without Company: REQUIRED_FIELD_MISSING; a SystemModstamp given: read-only."""
    sf = _client(org)
    before = len(org.emulator.records)
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.Lead.create({"LastName": "NoCompany"})
    assert missing.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    with pytest.raises(SalesforceMalformedRequest) as read_only:
        sf.Contact.create({"LastName": "X", "SystemModstamp": "2024-01-01T00:00:00.000+0000"})
    assert read_only.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert len(org.emulator.records) == before


def test_soql_datetime_literals_are_unquoted(org: Org) -> None:
    """`SystemModstamp > 2024-...Z` selects by time; a quoted datetime is refused like SOQL."""
    sf = _client(org)
    created = sf.Contact.create({"LastName": "Fresh"})
    rows = sf.query("SELECT Id FROM Contact WHERE SystemModstamp > 2024-06-01T00:00:00Z")
    assert [r["Id"] for r in rows["records"]] == [created["id"]]
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Id FROM Contact WHERE SystemModstamp > '2024-06-01T00:00:00Z'")


def test_a_write_moves_system_modstamp(org: Org) -> None:
    """An update (what crm-sync's write does) sets SystemModstamp to now."""
    sf = _client(org)
    record_id = next(iter(org.emulator.of_type("Contact")))
    assert org.emulator.records[record_id]["SystemModstamp"].startswith("2024-01-01")
    sf.Contact.update(record_id, {"MobilePhone": "+14155550100"})
    assert not org.emulator.records[record_id]["SystemModstamp"].startswith("2024-01-01")
