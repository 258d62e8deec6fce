"""The rules that protect the user's CRM and wallet."""

from __future__ import annotations

import pytest

from connectors.base import Contact
from crm_sync.enrichment.models import ContactResult
from crm_sync.enrichment.prices import worst_case_cost
from crm_sync.fields import FIELD_PHONE, FIELD_WORK_EMAIL
from crm_sync.pipeline.budget import Budget
from crm_sync.rules.policies import (
    build_request,
    decide,
    fields_to_ask,
    identity_problem,
    normalize_domain,
    to_e164,
)

ACCEPTED = ("DELIVERABLE", "HIGH_PROBABILITY")
BOTH = frozenset({"email", "phone"})


def test_asks_only_for_what_is_missing() -> None:
    """A contact with an email but no phone is asked for phones only."""
    contact = Contact("1", "Ada", "Lovelace", "Acme", "acme.com", email="ada@acme.com")
    assert fields_to_ask(contact, BOTH) == (FIELD_PHONE,)
    assert worst_case_cost(fields_to_ask(contact, BOTH)) == 10
    assert fields_to_ask(Contact("2", phone="+14155550123"), BOTH) == (FIELD_WORK_EMAIL,)
    assert fields_to_ask(Contact("3"), frozenset({"email"})) == (FIELD_WORK_EMAIL,)


@pytest.mark.parametrize(
    ("contact", "problem"),
    [
        (Contact("1", "Ada", "Lovelace", "Acme"), None),
        (Contact("1", "Ada", "Lovelace", None, "https://www.acme.com/x"), None),
        (Contact("1", None, None, linkedin_url="https://www.linkedin.com/in/ada"), None),
        (Contact("1", "Ada", None, "Acme"), "missing_last_name"),
        (Contact("1", "", "Lovelace", "Acme"), "missing_first_name"),
        (Contact("1", "Ada", "Lovelace"), "missing_company"),
        (Contact("1", "Ada", "Lovelace", None, "not a domain"), "missing_company"),
    ],
)
def test_minimum_identity(contact: Contact, problem: str | None) -> None:
    """Names plus company or domain, or a LinkedIn URL, are needed before paying."""
    assert identity_problem(contact) == problem


def test_request_carries_the_record_id_and_a_clean_domain() -> None:
    """The CRM id travels in `custom` as strings; websites become bare domains."""
    contact = Contact("0031", "Ada", "Lovelace", "Acme", "HTTPS://www.Acme.com/about")
    request = build_request(contact, (FIELD_PHONE,), "hs")
    assert request.custom == {"crm_id": "0031", "source": "hs"}
    assert request.domain == "acme.com"
    assert request.wire()["enrich_fields"] == [FIELD_PHONE]
    assert normalize_domain("example") is None


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 415-555-2671", None, "+14155552671"),
        ("+44 7400 123456", None, "+447400123456"),
        ("07400 123456", "GB", "+447400123456"),
        ("+33.6.12.34.56.78", None, "+33612345678"),
        ("+0 000", None, None),
        ("", None, None),
        ("call me", "US", None),
    ],
)
def test_phones_are_written_in_e164_or_not_at_all(
    raw: str, region: str | None, expected: str | None
) -> None:
    """phonenumbers decides; an invalid number is never written."""
    assert to_e164(raw, region) == expected


def _result(**kwargs: object) -> ContactResult:
    return ContactResult.model_validate(kwargs)


def test_fill_empty_only_and_accepted_statuses() -> None:
    """A field a person filled is kept; catch-all emails are not written by default."""
    current = Contact("1", "Ada", "Lovelace", "Acme", phone="+14155552671")
    result = _result(
        most_probable_email="ada@acme.com",
        most_probable_email_status="CATCH_ALL",
        most_probable_phone="+44 7400 123456",
    )
    decision = decide(
        current,
        result,
        [FIELD_WORK_EMAIL, FIELD_PHONE],
        accepted_email_statuses=ACCEPTED,
        overwrite={},
    )
    assert decision.values == {}
    assert decision.kept_existing == {"phone"}
    assert decision.not_accepted == {"email"}
    overwrite = decide(
        current,
        result,
        [FIELD_PHONE],
        accepted_email_statuses=ACCEPTED,
        overwrite={"phone": True},
    )
    assert overwrite.values == {"phone": "+447400123456"}


def test_not_found_is_empty_strings_and_lists() -> None:
    """The API's "" and [] mean nothing was found."""
    result = ContactResult.model_validate(
        {"most_probable_email": "", "most_probable_phone": "", "phones": [], "emails": []}
    )
    decision = decide(
        Contact("1"),
        result,
        [FIELD_WORK_EMAIL, FIELD_PHONE],
        accepted_email_statuses=ACCEPTED,
        overwrite={},
    )
    assert not decision.found_anything
    assert decision.not_found == {"email", "phone"}


def test_budget_takes_the_smallest_ceiling() -> None:
    """What does not fit the smallest ceiling waits; exhausted means not even one credit is left."""
    budget = Budget({"balance": 25, "per_run": 12})
    assert budget.take(10)
    assert not budget.take(10)
    assert budget.take(1)
    assert budget.take(1)
    assert budget.exhausted
    assert Budget().take(10**9)
