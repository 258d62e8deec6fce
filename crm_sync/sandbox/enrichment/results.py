"""Result objects of the enrichment emulator: what is "found" for a contact, and what it costs.

Everything here is pure: the truth comes from `people.truth_for_request` (a hash of the
identity), so the same request always gives the same result, and a test can predict it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from crm_sync.sandbox.enrichment.facts import (
    CREDITS_PER_FIELD,
    FIELD_PERSONAL_EMAIL,
    FIELD_PHONE,
    FIELD_WORK_EMAIL,
    JobStatus,
)
from crm_sync.sandbox.enrichment.records import identity_key
from crm_sync.sandbox.enrichment.validation import ValidContact
from crm_sync.sandbox.people import Truth, truth_for_request

CHARGED_EMAIL_STATUSES = frozenset({"DELIVERABLE", "HIGH_PROBABILITY", "CATCH_ALL"})
PERSONAL_EMAIL_STATUS = "DELIVERABLE"


def truth_of(contact: ValidContact) -> Truth:
    return truth_for_request(
        contact.firstname,
        contact.lastname,
        contact.domain,
        contact.company_name,
        contact.linkedin_url,
    )


def empty_contact(contact: ValidContact) -> dict[str, Any]:
    """The "nothing found" contact: names echoed, every other scalar "" and every list []."""
    return {
        "firstname": contact.firstname or "",
        "lastname": contact.lastname or "",
        "domain": contact.domain or "",
        "most_probable_email": "",
        "most_probable_email_status": "",
        "most_probable_personal_email": "",
        "most_probable_personal_email_status": "",
        "most_probable_phone": "",
        "emails": [],
        "personal_emails": [],
        "phones": [],
        "social_medias": [],
    }


def _has_profile(contact: ValidContact) -> bool:
    """About two contacts in three carry a `profile`; the others omit the key (as observed)."""
    key = identity_key(
        contact.firstname,
        contact.lastname,
        contact.domain,
        contact.company_name,
        contact.linkedin_url,
    )
    return hashlib.sha256(key.encode()).digest()[0] % 3 != 0


def found_contact(contact: ValidContact) -> tuple[dict[str, Any], int]:
    """The contact as the API returns it (only the fields asked), and the credits it costs."""
    truth, asked = truth_of(contact), contact.enrich_fields
    out, cost = empty_contact(contact), 0
    if FIELD_WORK_EMAIL in asked and truth.work_email and truth.email_status:
        out["most_probable_email"] = truth.work_email
        out["most_probable_email_status"] = truth.email_status
        out["emails"] = [{"email": truth.work_email, "status": truth.email_status}]
        if truth.email_status in CHARGED_EMAIL_STATUSES:
            cost += CREDITS_PER_FIELD[FIELD_WORK_EMAIL]
    if FIELD_PERSONAL_EMAIL in asked and truth.personal_email:
        out["most_probable_personal_email"] = truth.personal_email
        out["most_probable_personal_email_status"] = PERSONAL_EMAIL_STATUS
        out["personal_emails"] = [{"email": truth.personal_email, "status": PERSONAL_EMAIL_STATUS}]
        cost += CREDITS_PER_FIELD[FIELD_PERSONAL_EMAIL]
    if FIELD_PHONE in asked and truth.phone:
        out["most_probable_phone"] = truth.phone
        out["phones"] = [{"number": truth.phone, "region": truth.phone_region or ""}]
        cost += CREDITS_PER_FIELD[FIELD_PHONE]
    found = out["emails"] or out["personal_emails"] or out["phones"]
    if found and contact.linkedin_url:
        out["social_medias"] = [{"url": contact.linkedin_url, "type": "LINKEDIN"}]
    if found and _has_profile(contact):
        out["profile"] = {
            "full_name": f"{contact.firstname or ''} {contact.lastname or ''}".strip(),
            "company": {"name": contact.company_name or "", "domain": contact.domain or ""},
        }
    return out, cost


def empty_datas(contacts: tuple[ValidContact, ...]) -> list[dict[str, Any]]:
    """`datas` with nothing found for anyone (a canceled job, or results forced too early)."""
    return [{"custom": dict(c.custom), "contact": empty_contact(c)} for c in contacts]


@dataclass(frozen=True, slots=True)
class Settlement:
    """The outcome of processing a job against a balance."""

    status: JobStatus
    datas: list[dict[str, Any]]
    credits: int


def settle(contacts: tuple[ValidContact, ...], balance: int) -> Settlement:
    """Process contacts in order; the first one the balance cannot pay stops the job.

    That contact and every later one come back empty and cost nothing; the earlier ones keep
    their data and their charge. The status is then CREDITS_INSUFFICIENT.
    """
    status, datas, charged = JobStatus.FINISHED, [], 0
    for contact in contacts:
        item: dict[str, Any] = {"custom": dict(contact.custom), "contact": empty_contact(contact)}
        if status is JobStatus.FINISHED and not contact.skipped:
            found, cost = found_contact(contact)
            if cost > balance - charged:
                status = JobStatus.CREDITS_INSUFFICIENT
            else:
                item["contact"], charged = found, charged + cost
        datas.append(item)
    return Settlement(status, datas, charged)


def result_object(
    enrichment_id: str, name: str, status: JobStatus, credits: int, datas: list[Any]
) -> dict[str, Any]:
    """The GET answer and webhook body, in the reference's key order."""
    return {
        "id": enrichment_id,
        "name": name,
        "status": status.value,
        "cost": {"credits": credits},
        "datas": datas,
    }
