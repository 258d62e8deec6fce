"""Counters a test reads: submissions per contact (by crm_id, else identity)."""

from __future__ import annotations

import httpx

from crm_sync.sandbox.enrichment import EnrichmentEmulator
from tests.emulators.enrichment.conftest import bulk, contact

LINKEDIN = "https://www.linkedin.com/in/grace-hopper/"


def test_submissions_counted_by_crm_id(api: tuple[EnrichmentEmulator, httpx.Client]) -> None:
    """Every POST counts each contact once more, keyed by custom.crm_id."""
    emulator, client = api
    client.post("/contact/enrich/bulk", json=bulk(contact(custom={"crm_id": "a"})))
    client.post(
        "/contact/enrich/bulk",
        json=bulk(contact(custom={"crm_id": "a"}), contact("Grace", custom={"crm_id": "b"})),
    )
    assert emulator.submissions_per_contact() == {"a": 2, "b": 1}


def test_submissions_without_crm_id_use_identity(
    api: tuple[EnrichmentEmulator, httpx.Client],
) -> None:
    """Without crm_id the key is first|last|domain-or-company|linkedin, lowercased."""
    emulator, client = api
    emulator.strict_input = False  # a LinkedIn URL alone is accepted
    items = [
        contact("Ada", "Lovelace", domain="Acme-Analytics.com"),
        {"firstname": "Alan", "lastname": "Turing", "company_name": "Initech"},
        {"linkedin_url": LINKEDIN},
    ]
    client.post("/contact/enrich/bulk", json=bulk(*items))
    assert emulator.submissions_per_contact() == {
        "ada|lovelace|acme-analytics.com|": 1,
        "alan|turing|initech|": 1,
        f"|||{LINKEDIN}": 1,
    }


def test_submission_records_what_was_asked(api: tuple[EnrichmentEmulator, httpx.Client]) -> None:
    """Each submission keeps its enrichment id, custom and enrich_fields."""
    emulator, client = api
    item = contact(custom={"crm_id": "x", "source": "hubspot"}, enrich_fields=["contact.phones"])
    response = client.post("/contact/enrich/bulk", json=bulk(item))
    (submission,) = emulator.submitted
    assert submission.enrichment_id == response.json()["enrichment_id"]
    assert submission.custom == {"crm_id": "x", "source": "hubspot"}
    assert submission.enrich_fields == ("contact.phones",)
