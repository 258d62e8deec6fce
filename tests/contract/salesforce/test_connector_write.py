"""Writing values back through sObject collection updates, one outcome per record."""

from __future__ import annotations

from typing import Any

from connectors.base import FieldUpdate, WriteStatus
from tests.support.salesforce import Org


def test_one_bad_record_is_rejected_and_the_others_written(org: Org) -> None:
    """A bad email is rejected with Salesforce's code and words; the rest of the batch lands."""
    ids = sorted(org.emulator.of_type("Contact"))[:3]
    updates = [
        FieldUpdate(ids[0], {"email": "ada@acme.example"}),
        FieldUpdate(ids[1], {"email": "not an email"}),
        FieldUpdate(ids[2], {"email": "bob@acme.example", "phone": "+33612345678"}),
    ]
    outcomes = org.connector().write(updates)
    assert [o.record_id for o in outcomes] == ids
    assert [o.status for o in outcomes] == [
        WriteStatus.WRITTEN,
        WriteStatus.REJECTED,
        WriteStatus.WRITTEN,
    ]
    assert outcomes[1].reason.startswith("INVALID_EMAIL_ADDRESS: ")
    records = org.emulator.records
    assert records[ids[0]]["Email"] == "ada@acme.example"
    assert records[ids[2]]["MobilePhone"] == "+33612345678"
    assert [(w.record_id, w.fields) for w in org.emulator.writes] == [
        (ids[0], {"Email": "ada@acme.example"}),
        (ids[2], {"Email": "bob@acme.example", "MobilePhone": "+33612345678"}),
    ]


def test_duplicates_deleted_and_malformed_ids_are_rejected(org: Org) -> None:
    """Duplicate emails, deleted records and malformed ids each get their own reason."""
    ids = sorted(org.emulator.of_type("Contact"))[:3]
    org.emulator.set_field(ids[0], "Email", "taken@acme.example")
    org.emulator.delete(ids[2])
    outcomes = org.connector().write(
        [
            FieldUpdate(ids[1], {"email": "TAKEN@acme.example"}),
            FieldUpdate(ids[2], {"phone": "+33612345678"}),
            FieldUpdate("003-bad", {"phone": "+33612345678"}),
            FieldUpdate(ids[0], {"phone": "+33612345679"}),
        ]
    )
    reasons = [o.reason.split(":")[0] for o in outcomes]
    assert reasons == ["DUPLICATES_DETECTED", "ENTITY_IS_DELETED", "MALFORMED_ID", ""]
    assert outcomes[3].status is WriteStatus.WRITTEN
    assert org.emulator.calls["composite"] == 1


def test_lead_updates_use_the_lead_type(org: Org) -> None:
    """A Lead source writes Lead records."""
    lead_id = sorted(org.emulator.of_type("Lead"))[0]
    connector = org.connector(object="Lead", fields={"phone": "Phone"})
    outcomes = connector.write([FieldUpdate(lead_id, {"phone": "+14155550123"})])
    assert outcomes[0].status is WriteStatus.WRITTEN
    assert org.emulator.writes[0].object == "Lead"
    assert org.emulator.records[lead_id]["Phone"] == "+14155550123"


def test_writes_go_in_chunks_of_200(make_org: Any) -> None:
    """250 updates make two collection calls, and every record gets its outcome in order."""
    org = make_org(contacts=250)
    ids = sorted(org.emulator.of_type("Contact"))
    updates = [FieldUpdate(i, {"phone": f"+3361234{n:04d}"}) for n, i in enumerate(ids)]
    outcomes = org.connector().write(updates)
    assert [o.record_id for o in outcomes] == ids
    assert all(o.status is WriteStatus.WRITTEN for o in outcomes)
    assert org.emulator.calls["composite"] == 2
    assert len(org.emulator.writes) == 250


def test_a_field_without_a_mapping_is_rejected_locally(org: Org) -> None:
    """A logical field the source does not map is refused without calling Salesforce."""
    record_id = sorted(org.emulator.of_type("Contact"))[0]
    connector = org.connector(fields={"email": "Email"})
    outcomes = connector.write([FieldUpdate(record_id, {"phone": "+33612345678"})])
    assert outcomes[0].status is WriteStatus.REJECTED
    assert "phone" in outcomes[0].reason
    assert org.emulator.calls["composite"] == 0
