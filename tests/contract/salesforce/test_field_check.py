"""Mapped fields checked by describe; a field refused on write holds, never rejects (issue 9)."""

from __future__ import annotations

from connectors.base import FieldUpdate, WriteStatus
from tests.support.salesforce import Org


def test_check_fields_names_missing_and_not_updateable_fields(org: Org) -> None:
    """One describe call: a missing and a read-only mapped field are named; healthy ones pass."""
    assert org.connector().check_fields() == []
    wrong = org.connector(fields={"email": "Emial", "phone": "CreatedDate"})
    before = org.emulator.calls["describe"]
    assert wrong.check_fields() == [
        "fields.email: Salesforce field Contact.Emial missing",
        "fields.phone: Salesforce field Contact.CreatedDate is not updateable",
    ]
    assert org.emulator.calls["describe"] == before + 1


def test_a_field_refused_on_write_is_field_refused_not_rejected(org: Org) -> None:
    """INVALID_FIELD_FOR_INSERT_UPDATE concerns the field: FIELD_REFUSED, the record untouched;
    a record's own problem (a duplicate email) stays REJECTED."""
    contacts = sorted(org.emulator.of_type("Contact"))
    read_only = org.connector(fields={"email": "Email", "phone": "CreatedDate"})
    (outcome,) = read_only.write([FieldUpdate(contacts[0], {"phone": "+14155550101"})])
    assert outcome.status is WriteStatus.FIELD_REFUSED
    assert outcome.reason.startswith("INVALID_FIELD_FOR_INSERT_UPDATE")
    taken = next(
        r["Email"]
        for rid, r in org.emulator.of_type("Contact").items()
        if r.get("Email") and rid != contacts[1]
    )
    (duplicate,) = org.connector().write([FieldUpdate(contacts[1], {"email": taken})])
    assert duplicate.status is WriteStatus.REJECTED
