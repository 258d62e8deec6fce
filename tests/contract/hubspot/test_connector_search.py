"""The connector's search for gaps against the emulator, over real sockets."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from connectors.base import Selection
from connectors.hubspot import HubSpotConnector
from crm_sync.sandbox.hubspot import HubSpotEmulator
from tests.support.hubspot import TOKEN, person

Connect = Callable[..., HubSpotConnector]


def _all_ids(connector: HubSpotConnector, selection: Selection | None = None) -> list[str]:
    pages = list(connector.iter_candidates(selection or connector.selection()))
    return [c.id for page in pages for c in page]


def test_large_backlog_is_found_past_the_result_cap(connect: Connect) -> None:
    """25,000 contacts, 12,000 without a phone: all 12,000 found once each, beyond 10,000."""
    people = [
        person(i, email=f"p{i}@acme-analytics.com", phone=None if i % 25 < 12 else "+15550100")
        for i in range(25_000)
    ]
    emulator = HubSpotEmulator(
        people=people, token=TOKEN, search_per_second=10_000, ten_secondly_limit=100_000
    )
    connector = connect(emulator, fields={"phone": "phone"})
    started = time.perf_counter()
    ids = _all_ids(connector)
    elapsed = time.perf_counter() - started
    expected = [rid for rid, p in emulator.records.items() if not p["phone"]]
    assert len(expected) == 12_000
    assert ids == expected  # every one, once, in ascending id order
    assert connector.calls.counts["search"] == emulator.calls["search"] == 60
    print(f"\n12,000 of 25,000 found in {elapsed:.2f}s over {emulator.calls['search']} searches")


def test_filters_and_opt_out_are_honoured(connect: Connect) -> None:
    """Only contacts matching the user's filters and not opted out are candidates."""
    people = [
        person(0, company="Acme Analytics"),
        person(1, company="Initech"),
        person(2, company="Acme Analytics", opted_out=True),
        person(3, company="Acme Analytics", email="a@b.co", phone="+15550100"),
        person(4, company="ACME ANALYTICS"),
    ]
    emulator = HubSpotEmulator(people=people, token=TOKEN)
    filters: list[dict[str, Any]] = [
        {"propertyName": "company", "operator": "EQ", "value": "Acme Analytics"}
    ]
    connector = connect(emulator, filters=filters)
    contacts = [c for page in connector.iter_candidates(connector.selection()) for c in page]
    assert [c.id for c in contacts] == ["101", "105"]
    assert contacts[0].first_name == "First0"
    assert contacts[0].domain == "acme-analytics.com"
    assert contacts[0].email is None


def test_opt_out_with_other_values_is_not_excluded(connect: Connect) -> None:
    """An opt-out property holding "false" or nothing keeps the contact; "true" excludes it."""
    emulator = HubSpotEmulator(people=[person(i) for i in range(3)], token=TOKEN)
    emulator.set_property("101", "crm_sync_opt_out", "false")
    emulator.set_property("102", "crm_sync_opt_out", "true")
    connector = connect(emulator)
    assert _all_ids(connector) == ["101", "103"]


def test_phone_mapped_to_mobilephone(connect: Connect) -> None:
    """With `phone: mobilephone`, gaps and values are read from mobilephone, not phone."""
    emulator = HubSpotEmulator(people=[person(i, phone="+15550100") for i in range(3)], token=TOKEN)
    emulator.set_property("102", "mobilephone", "+447400123456")
    connector = connect(emulator, fields={"phone": "mobilephone"})
    ids = _all_ids(connector)
    assert ids == ["101", "103"]
    assert connector.read(["102"])["102"].phone == "+447400123456"


def test_records_leaving_the_result_set_between_pages_are_not_skipped(connect: Connect) -> None:
    """Writing phones for page one before fetching page two skips no one (keyset paging)."""
    emulator = HubSpotEmulator(people=[person(i, email="x@y.co") for i in range(50)], token=TOKEN)
    connector = connect(emulator, fields={"phone": "phone"})
    seen: list[str] = []
    for page in connector.iter_candidates(Selection(frozenset({"phone"}), page_size=10)):
        seen.extend(c.id for c in page)
        for contact in page:
            emulator.set_property(contact.id, "phone", "+15550100")
    assert seen == [str(101 + i) for i in range(50)]


def test_both_fields_wanted_yields_each_record_once(connect: Connect) -> None:
    """A contact missing both email and phone matches two groups but comes once."""
    people = [
        person(0),
        person(1, email="a@b.co"),
        person(2, phone="+15550100"),
        person(3, email="c@d.co", phone="+15550101"),
    ]
    connector = connect(HubSpotEmulator(people=people, token=TOKEN))
    assert _all_ids(connector) == ["101", "102", "103"]


def test_validate_filters_reports_each_problem() -> None:
    """Bad shapes, unknown operators and too many filters are reported with their index."""
    problems = HubSpotConnector.validate_filters(
        [
            {"propertyName": "company", "operator": "EQ", "value": "Acme"},
            {"propertyName": "company", "operator": "LIKE", "value": "Acme"},
            {"propertyName": "country", "operator": "IN", "value": "FR"},
            {"operator": "HAS_PROPERTY"},
            "company = Acme",
            {"propertyName": "x", "operator": "EQ", "value": "1", "extra": 1},
            {"propertyName": "x", "operator": "NOT_HAS_PROPERTY"},
            {"propertyName": "x", "operator": "BETWEEN", "value": "1"},
        ]
    )
    joined = "\n".join(problems)
    assert "filters[1].operator: unknown operator 'LIKE'" in joined
    assert "filters[2].values" in joined
    assert "filters[3].propertyName" in joined
    assert "filters[4]: must be a mapping" in joined
    assert "filters[5].extra: unknown key" in joined
    assert "filters[7].highValue" in joined
    assert "filters: at most 7 filters" in joined
    assert not any(p.startswith(("filters[0]", "filters[6]")) for p in problems)
    assert HubSpotConnector.validate_filters(None) == []
    assert HubSpotConnector.validate_filters({"company": "Acme"}) == [
        "filters: must be a list of HubSpot filters {propertyName, operator, value}"
    ]
