"""Bulk POST validation: the API's 400 codes, and that a refused POST costs and records nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crm_sync.sandbox.enrichment import EnrichmentEmulator
from crm_sync.sandbox.enrichment.validation import ApiFailure, valid_domain, validate_bulk
from tests.emulators.enrichment.conftest import bulk, contact

LINKEDIN = "https://www.linkedin.com/in/ada-lovelace-1/"


CASES: list[tuple[str, Any]] = [
    ("error.enrichment.name.empty", bulk(name="")),
    ("error.enrichment.name.empty", {"datas": [contact()]}),
    ("error.enrichment.data.empty", {"name": "x", "datas": []}),
    ("error.enrichment.data.empty", {"name": "x"}),
    (
        "error.enrichment.data.too_many",
        bulk(*[contact(custom={"crm_id": str(i)}) for i in range(101)]),
    ),
    ("error.enrichment.firstname.empty", bulk(contact(first=""))),
    ("error.enrichment.firstname.empty", bulk(contact(first=None))),
    ("error.enrichment.lastname.empty", bulk(contact(last="  "))),
    ("error.enrichment.company.empty", bulk({"firstname": "Ada", "lastname": "Lovelace"})),
    ("error.enrichment.domain.invalid", bulk(contact(domain="not a domain"))),
    ("error.enrichment.domain.invalid", bulk(contact(domain="acme"))),
    (
        "error.enrichment.linkedin_url.invalid",
        bulk(contact(linkedin_url="https://example.com/ada")),
    ),
    ("error.enrichment.custom.invalid", bulk(contact(custom={"crm_id": 12}))),
    ("error.enrichment.custom.invalid", bulk(contact(custom={f"k{i}": "v" for i in range(11)}))),
    ("error.enrichment.custom.invalid", bulk(contact(custom={"crm_id": "x" * 101}))),
    ("error.enrichment.custom.invalid", bulk(contact(custom=["crm_id"]))),
    ("error.enrichment.enrich_fields.invalid", bulk(contact(enrich_fields=[]))),
    ("error.enrichment.enrich_fields.invalid", bulk(contact(enrich_fields=["contact.fax"]))),
    ("error.enrichment.enrich_fields.invalid", bulk(contact(enrich_fields="contact.emails"))),
    ("error.body.invalid", [contact()]),
    ("error.body.invalid", bulk("not an object")),  # type: ignore[arg-type]
    ("error.enrichment.webhook_url.invalid", bulk(webhook_url="not a url")),
]


@pytest.mark.parametrize(("code", "payload"), CASES)
def test_invalid_post_is_refused_with_the_code(
    shared_api: tuple[EnrichmentEmulator, httpx.Client], code: str, payload: Any
) -> None:
    """Each invalid body gets 400 with its code, and creates no job, no submission, no charge."""
    emulator, client = shared_api
    before = emulator.balance
    response = client.post("/contact/enrich/bulk", json=payload)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    assert emulator.job_ids() == []
    assert emulator.submitted == []
    assert emulator.credits_charged == 0
    assert emulator.balance == before


def test_malformed_json_is_body_invalid(
    shared_api: tuple[EnrichmentEmulator, httpx.Client],
) -> None:
    """Bytes that are not JSON answer 400 error.body.invalid."""
    emulator, client = shared_api
    response = client.post(
        "/contact/enrich/bulk", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "error.body.invalid"
    assert emulator.job_ids() == []


def test_linkedin_url_alone_is_enough_when_lenient(
    api: tuple[EnrichmentEmulator, httpx.Client],
) -> None:
    """Lenient (FullEnrich's docs): a valid LinkedIn URL needs neither names nor company."""
    emulator, client = api
    emulator.strict_input = False
    response = client.post("/contact/enrich/bulk", json=bulk({"linkedin_url": LINKEDIN}))
    assert response.status_code == 200
    assert len(emulator.submitted) == 1


@pytest.mark.parametrize(
    ("item", "code"),
    [
        ({"linkedin_url": LINKEDIN}, "error.enrichment.firstname.empty"),
        ({"linkedin_url": LINKEDIN, "firstname": "Ada"}, "error.enrichment.lastname.empty"),
        (
            {"linkedin_url": LINKEDIN, "firstname": "Ada", "lastname": "Lovelace"},
            "error.enrichment.company.empty",
        ),
    ],
)
def test_strict_mode_refuses_a_linkedin_url_without_names_and_company(
    api: tuple[EnrichmentEmulator, httpx.Client], item: dict[str, str], code: str
) -> None:
    """Strict (the default, as an independent fake): the whole POST is refused, nothing made."""
    emulator, client = api
    assert emulator.strict_input
    response = client.post("/contact/enrich/bulk", json=bulk(contact(), item))
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert "datas[" not in response.json()["message"]  # which item: the client finds out
    assert emulator.job_ids() == []


def test_exactly_100_contacts_are_accepted(api: tuple[EnrichmentEmulator, httpx.Client]) -> None:
    """The limit is inclusive: 100 contacts make one job of 100 submissions."""
    emulator, client = api
    items = [contact(custom={"crm_id": str(i)}) for i in range(100)]
    assert client.post("/contact/enrich/bulk", json=bulk(*items)).status_code == 200
    assert len(emulator.submitted) == 100


def test_check_domain_false_skips_instead_of_failing(
    api: tuple[EnrichmentEmulator, httpx.Client],
) -> None:
    """With checkDomain=false an invalid contact is kept, comes back empty and costs nothing."""
    emulator, client = api
    items = [
        contact(domain="bad domain", custom={"crm_id": "bad"}),
        contact(custom={"crm_id": "ok"}),
    ]
    response = client.post(
        "/contact/enrich/bulk", params={"checkDomain": "false"}, json=bulk(*items)
    )
    assert response.status_code == 200
    emulator.finish_all()
    datas = emulator.result_body(response.json()["enrichment_id"])["datas"]
    assert datas[0]["custom"] == {"crm_id": "bad"}
    assert datas[0]["contact"]["emails"] == []
    assert datas[0]["contact"]["phones"] == []
    assert datas[1]["contact"]["most_probable_email"] == "ada.lovelace@acme-analytics.com"


def test_validation_reports_the_first_problem() -> None:
    """The error names the item at fault, so a client can log which contact was refused."""
    with pytest.raises(ApiFailure) as caught:
        validate_bulk(bulk(contact(), contact(last="")))
    assert caught.value.code == "error.enrichment.lastname.empty"
    assert "datas[1]" in caught.value.message


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("acme.com", True),
        ("https://www.acme-analytics.com/", True),
        ("wayne-foods.co.uk", True),
        ("acme", False),
        ("acme..com", False),
        ("-acme.com", False),
        ("acme .com", False),
    ],
)
def test_domain_rule(text: str, ok: bool) -> None:
    """Host names with a suffix pass; bare words, empty labels and spaces do not."""
    assert valid_domain(text) is ok
