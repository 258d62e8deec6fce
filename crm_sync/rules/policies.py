"""The rules that protect the user's CRM and wallet, as pure functions (no I/O, easy to test).

- ask only for what a contact lacks;
- a contact needs a minimum identity before it is worth paying for;
- write an email only when its status is accepted and it is plausible (`plausibility`),
  a phone only without letters and in valid E.164;
- fill empty fields only, unless the source allows overwriting that field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import phonenumbers

from connectors.base import Contact
from crm_sync.enrichment.models import ContactRequest, ContactResult
from crm_sync.fields import EMAIL, ENRICH_FIELD_FOR, LOGICAL_FIELDS, LOGICAL_FOR, PHONE
from crm_sync.rules.plausibility import Refusal, email_problem, phone_problem

_LINKEDIN = re.compile(r"^https?://([a-z]{2,3}\.)?linkedin\.com/(in|pub)/[^/?#\s]+", re.I)


def fields_to_ask(contact: Contact, wanted: frozenset[str]) -> tuple[str, ...]:
    """The API enrich fields for what this contact lacks, in a stable order."""
    return tuple(
        ENRICH_FIELD_FOR[f] for f in LOGICAL_FIELDS if f in wanted and not contact.value(f)
    )


def normalize_domain(value: str | None) -> str | None:
    """`https://www.Acme.com/about` -> `acme.com`; None for something that is not a domain."""
    if not value:
        return None
    text = re.sub(r"^[a-z]+://", "", value.strip().lower())
    text = text.removeprefix("www.").split("/")[0].split("?")[0].split(":")[0]
    if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", text):
        return None
    return text


def identity_problem(contact: Contact) -> str | None:
    """Why a record cannot be enriched, or None: names plus company or domain, or a LinkedIn URL."""
    has_linkedin = bool(contact.linkedin_url and _LINKEDIN.match(contact.linkedin_url))
    if has_linkedin:
        return None
    if not (contact.first_name and contact.first_name.strip()):
        return "missing_first_name"
    if not (contact.last_name and contact.last_name.strip()):
        return "missing_last_name"
    if not (contact.company and contact.company.strip()) and not normalize_domain(contact.domain):
        return "missing_company"
    return None


def build_request(contact: Contact, enrich_fields: tuple[str, ...], source: str) -> ContactRequest:
    """The API request item for a contact; `custom` carries the CRM record id back to us."""
    linkedin = (
        contact.linkedin_url
        if contact.linkedin_url and _LINKEDIN.match(contact.linkedin_url)
        else None
    )
    return ContactRequest(
        firstname=(contact.first_name or "").strip() or None,
        lastname=(contact.last_name or "").strip() or None,
        domain=normalize_domain(contact.domain),
        company_name=(contact.company or "").strip() or None,
        linkedin_url=linkedin,
        enrich_fields=list(enrich_fields),
        custom={"crm_id": contact.id, "source": source},
    )


def to_e164(raw: str | None, region_hint: str | None = None) -> str | None:
    """A phone number in E.164, or None when phonenumbers does not call it valid."""
    if not raw or not raw.strip():
        return None
    try:
        parsed = phonenumbers.parse(raw, (region_hint or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@dataclass
class FieldDecision:
    """What to do with one contact's result, field by field."""

    values: dict[str, str] = field(default_factory=dict)  # logical field -> value to write
    found: set[str] = field(default_factory=set)  # logical fields the API found something for
    kept_existing: set[str] = field(default_factory=set)  # found, but the CRM already has a value
    not_accepted: set[str] = field(default_factory=set)  # found, but status or format refused
    not_found: set[str] = field(default_factory=set)
    invalid: dict[str, Refusal] = field(default_factory=dict)  # found, but not plausible

    @property
    def found_anything(self) -> bool:
        return bool(self.found)


def decide(
    current: Contact,
    result: ContactResult,
    asked: tuple[str, ...] | list[str],
    *,
    accepted_email_statuses: tuple[str, ...],
    overwrite: Mapping[str, bool],
) -> FieldDecision:
    """Decide, from a fresh read of the record, which found values may be written."""
    decision = FieldDecision()
    for enrich_field in asked:
        logical = LOGICAL_FOR.get(enrich_field)
        if logical is None:
            continue
        value = _candidate(logical, result, accepted_email_statuses, decision)
        if value is None:
            continue
        existing = current.value(logical)
        if (existing and not overwrite.get(logical, False)) or existing == value:
            decision.kept_existing.add(logical)
        else:
            decision.values[logical] = value
    return decision


def _candidate(
    logical: str, result: ContactResult, accepted: tuple[str, ...], decision: FieldDecision
) -> str | None:
    if logical == EMAIL:
        return _email_candidate(result, accepted, decision)
    return _phone_candidate(result, decision)


def _email_candidate(
    result: ContactResult, accepted: tuple[str, ...], decision: FieldDecision
) -> str | None:
    email = result.most_probable_email
    if not email:
        decision.not_found.add(EMAIL)
        return None
    decision.found.add(EMAIL)
    if (result.most_probable_email_status or "").upper() not in accepted:
        decision.not_accepted.add(EMAIL)
        return None
    email = email.strip()
    refusal = email_problem(email)
    if refusal is not None:
        decision.invalid[EMAIL] = refusal
        return None
    return email


def _phone_candidate(result: ContactResult, decision: FieldDecision) -> str | None:
    phone = result.most_probable_phone or (result.phones[0].number if result.phones else None)
    if not phone:
        decision.not_found.add(PHONE)
        return None
    decision.found.add(PHONE)
    refusal = phone_problem(phone)
    if refusal is not None:  # before phonenumbers, which reads letters as keypad digits
        decision.invalid[PHONE] = refusal
        return None
    e164 = to_e164(phone, result.phone_region)
    if e164 is None:
        decision.not_accepted.add(PHONE)
    return e164
