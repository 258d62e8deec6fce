"""Finding and reading records through the connector, with simple-salesforce over a socket."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from connectors.base import FieldUpdate, Selection
from tests.support.salesforce import OPT_OUT, Org, expected_ids


def candidate_ids(connector: Any, selection: Selection | None = None) -> list[list[str]]:
    pages = connector.iter_candidates(selection or connector.selection())
    return [[contact.id for contact in page] for page in pages]


def test_contacts_page_through_every_candidate_once(org: Org) -> None:
    """Four pages of Contacts missing Email or MobilePhone, each candidate exactly once, by Id."""
    connector = org.connector()
    pages = candidate_ids(connector)
    assert len(pages) >= 3
    found = [i for page in pages for i in page]
    assert found == expected_ids(org, "Contact", ["Email", "MobilePhone"])
    assert connector.calls.counts == {"query": 1, "query_more": len(pages) - 1}
    assert connector.api_usage == (len(pages), 100_000)


def test_leads_page_with_their_own_company_fields(org: Org) -> None:
    """Leads page the same way and carry Company and Website themselves."""
    connector = org.connector(object="Lead", fields={"phone": "Phone"})
    pages = list(connector.iter_candidates(connector.selection()))
    assert len(pages) >= 3
    found = [c for page in pages for c in page]
    assert [c.id for c in found] == expected_ids(org, "Lead", ["Phone"])
    lead = org.emulator.records[found[0].id]
    assert (found[0].company, found[0].domain) == (lead["Company"], lead["Website"])
    assert all(c.email is None and c.phone is None for c in found)


def test_contact_values_follow_the_field_map(org: Org) -> None:
    """Email and phone come from the mapped fields; Account-less contacts have no company."""
    connector = org.connector(
        fields={"email": "Email", "phone": "Phone"}, linkedin_field="LinkedIn_URL__c"
    )
    contacts = [c for page in connector.iter_candidates(connector.selection()) for c in page]
    assert [c.id for c in contacts] == expected_ids(org, "Contact", ["Email", "Phone"])
    for contact in contacts:
        record = org.emulator.records[contact.id]
        assert contact.email == record["Email"]
        assert contact.phone == record["Phone"]
        assert contact.linkedin_url == record["LinkedIn_URL__c"]
        assert contact.first_name == record["FirstName"]
    assert any(c.company is None for c in contacts)
    assert any(c.domain and c.domain.startswith("https://www.") for c in contacts)


def test_only_the_wanted_fields_define_a_gap(org: Org) -> None:
    """Asking for the phone only ignores records that lack just an email."""
    connector = org.connector()
    selection = replace(connector.selection(), wanted=frozenset({"phone"}))
    found = [i for page in candidate_ids(connector, selection) for i in page]
    assert found == expected_ids(org, "Contact", ["MobilePhone"])


def test_user_filter_is_anded_as_one_group(org: Org) -> None:
    """The user's OR stays inside its parentheses: it narrows the gaps, never widens them."""
    fragment = "LastName LIKE 'b%' OR FirstName = 'Ada'"
    connector = org.connector(filters=fragment)
    found = [i for page in candidate_ids(connector) for i in page]

    def matches(record: dict[str, Any]) -> bool:
        last = (record["LastName"] or "").lower()
        return last.startswith("b") or record["FirstName"] == "Ada"

    expected = expected_ids(org, "Contact", ["Email", "MobilePhone"], matches)
    assert found == expected
    assert 0 < len(found) < len(expected_ids(org, "Contact", ["Email", "MobilePhone"]))


def test_opt_out_true_excludes_and_null_does_not(org: Org) -> None:
    """Opted-out records are skipped; a null opt-out counts as not opted out."""
    everyone = expected_ids(org, "Contact", ["Email", "MobilePhone"], opt_out=False)
    opted = [i for i in everyone if org.emulator.records[i][OPT_OUT]]
    assert opted
    org.emulator.set_field(everyone[0], OPT_OUT, None)
    found = [i for page in candidate_ids(org.connector()) for i in page]
    assert everyone[0] in found
    assert not set(opted) & set(found)
    unfiltered = [i for page in candidate_ids(org.connector(opt_out_field=None)) for i in page]
    assert unfiltered == everyone


def test_page_size_asks_for_a_smaller_batch(make_org: Any) -> None:
    """Selection.page_size becomes a batchSize header (Salesforce's minimum is 200)."""
    org = make_org(contacts=500)
    connector = org.connector(opt_out_field=None)
    selection = replace(connector.selection(), page_size=200)
    assert [len(p) for p in candidate_ids(connector, selection)] == [
        200,
        200,
        len(expected_ids(org, "Contact", ["Email", "MobilePhone"], opt_out=False)) - 400,
    ]


def test_pages_are_a_snapshot_while_records_change(org: Org) -> None:
    """Writes between pages neither repeat nor drop candidates of the running query."""
    connector = org.connector()
    expected = expected_ids(org, "Contact", ["Email", "MobilePhone"])
    found: list[str] = []
    for page in connector.iter_candidates(connector.selection()):
        found += [c.id for c in page]
        updates = [FieldUpdate(c.id, {"email": f"n{i}@filled.example"}) for i, c in enumerate(page)]
        connector.write([u for u, c in zip(updates, page, strict=True) if c.email is None])
    assert found == expected


def test_read_returns_current_values_by_the_ids_given(org: Org) -> None:
    """read() sees a person's edit, keys 15-character ids as given, and skips unknown ids."""
    ids = sorted(org.emulator.of_type("Contact"))[:3]
    org.emulator.set_field(ids[0], "MobilePhone", "+442071234567")
    org.emulator.delete(ids[2])
    connector = org.connector()
    found = connector.read([ids[0], ids[1][:15], ids[2], "not-an-id", "003AAAAAAAAAAAAAAA"])
    assert set(found) == {ids[0], ids[1][:15]}
    assert found[ids[0]].phone == "+442071234567"
    assert found[ids[1][:15]].id == ids[1]


def test_read_chunks_by_200(make_org: Any) -> None:
    """More ids than a batch are read in several queries."""
    org = make_org(contacts=450)
    connector = org.connector()
    ids = sorted(org.emulator.of_type("Contact"))
    assert set(connector.read(ids)) == set(ids)
    assert org.emulator.calls["query"] == 3
