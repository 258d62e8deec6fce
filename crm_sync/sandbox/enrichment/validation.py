"""Validation of `POST /contact/enrich/bulk` bodies, with the API's own error codes.

The first problem found rejects the whole request (the real API does the same), unless the
query flags `checkDomain=false` / `checkLinkedinUrl=false` ask to skip such contacts instead:
a skipped contact is kept in the job, costs nothing, and comes back empty.

Input rules: with `linkedin_alone=True` a valid LinkedIn URL is enough (FullEnrich's current
docs); with `linkedin_alone=False` (strict, the emulator's default) every item needs a first
name, a last name and a company name or domain, LinkedIn URL or not, and the first item that
lacks one refuses the POST with `error.enrichment.firstname.empty`, `...lastname.empty` or
`...company.empty`, as an independent fake of the API and DeepEnrich's docs do. Strict mode
also leaves the item's index out of error messages (`contact.lastname is empty`, not
`datas[7].lastname is empty`): the real messages are not documented, so a client must find the
offending item by itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from crm_sync.sandbox.enrichment.facts import (
    ENRICH_FIELDS,
    FIELD_PHONE,
    FIELD_WORK_EMAIL,
    MAX_CONTACTS_PER_BULK,
    MAX_CUSTOM_KEYS,
    MAX_CUSTOM_VALUE_LENGTH,
)
from crm_sync.sandbox.people import normalize_domain

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?:{_LABEL}\.)+[a-z]{{2,63}}$")
_LINKEDIN = re.compile(r"^https?://(?:[a-z]{2,3}\.)?linkedin\.com/(?:in|pub)/[^/?#\s]+/?$", re.I)
_WEBHOOK = re.compile(r"^https?://[^\s/]+(?:/\S*)?$", re.I)
DEFAULT_FIELDS = (FIELD_WORK_EMAIL, FIELD_PHONE)


class ApiFailure(Exception):
    """A request the API refuses: `status`, and the body `{"code", "message"}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{status} {code}: {message}")

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def _bad(code: str, message: str) -> ApiFailure:
    return ApiFailure(400, code, message)


@dataclass(frozen=True, slots=True)
class ValidContact:
    """One accepted item of `datas`; empty strings are normalised to None."""

    firstname: str | None
    lastname: str | None
    domain: str | None
    company_name: str | None
    linkedin_url: str | None
    enrich_fields: tuple[str, ...]
    custom: dict[str, str]
    skipped: bool = False  # invalid, but the caller asked to skip rather than fail


@dataclass(frozen=True, slots=True)
class ValidBulk:
    name: str
    webhook_url: str | None
    contacts: tuple[ValidContact, ...]


def _text(item: dict[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad("error.body.invalid", f"{where}.{key} must be a string")
    return value.strip() or None


def _custom(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    problem = None
    if not isinstance(value, dict):
        problem = "must be an object"
    elif len(value) > MAX_CUSTOM_KEYS:
        problem = f"holds more than {MAX_CUSTOM_KEYS} keys"
    elif any(not isinstance(v, str) for v in value.values()):
        problem = "values must be strings"
    elif any(
        len(v) > MAX_CUSTOM_VALUE_LENGTH or len(k) > MAX_CUSTOM_VALUE_LENGTH
        for k, v in value.items()
    ):
        problem = f"values are limited to {MAX_CUSTOM_VALUE_LENGTH} characters"
    if problem:
        raise _bad("error.enrichment.custom.invalid", f"{where}.custom {problem}")
    return dict(value)


def _fields(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_FIELDS
    if (
        not isinstance(value, list)
        or not value
        or any(not isinstance(f, str) or f not in ENRICH_FIELDS for f in value)
    ):
        raise _bad(
            "error.enrichment.enrich_fields.invalid",
            f"{where}.enrich_fields must be a non-empty list of {', '.join(ENRICH_FIELDS)}",
        )
    return tuple(dict.fromkeys(value))


def valid_domain(text: str) -> bool:
    """A host name with a public-looking suffix; a scheme or `www.` prefix is tolerated."""
    return bool(_DOMAIN.match(normalize_domain(text))) if "." in text else False


def valid_linkedin(text: str) -> bool:
    return bool(_LINKEDIN.match(text))


def _contact(
    item: Any, where: str, *, check_domain: bool, check_linkedin: bool, linkedin_alone: bool
) -> ValidContact:
    if not isinstance(item, dict):
        raise _bad("error.body.invalid", f"{where} must be an object")
    first, last = _text(item, "firstname", where), _text(item, "lastname", where)
    domain, company = _text(item, "domain", where), _text(item, "company_name", where)
    linkedin = _text(item, "linkedin_url", where)
    custom = _custom(item.get("custom"), where)
    fields = _fields(item.get("enrich_fields"), where)
    skipped = False
    if linkedin and not valid_linkedin(linkedin):
        if check_linkedin:
            raise _bad("error.enrichment.linkedin_url.invalid", f"{where}.linkedin_url is invalid")
        skipped, linkedin = True, None
    if domain and not valid_domain(domain):
        if check_domain:
            raise _bad("error.enrichment.domain.invalid", f"{where}.domain is invalid")
        skipped = True
    if (not linkedin or not linkedin_alone) and not skipped:
        if not first:
            raise _bad("error.enrichment.firstname.empty", f"{where}.firstname is empty")
        if not last:
            raise _bad("error.enrichment.lastname.empty", f"{where}.lastname is empty")
        if not (domain or company):
            raise _bad("error.enrichment.company.empty", f"{where} needs a domain or company_name")
    return ValidContact(first, last, domain, company, linkedin, fields, custom, skipped)


def validate_bulk(
    payload: Any,
    *,
    check_domain: bool = True,
    check_linkedin: bool = True,
    linkedin_alone: bool = False,
    name_items: bool = True,
) -> ValidBulk:
    """The accepted request, or ApiFailure(400, code, message) for the first problem found."""
    if not isinstance(payload, dict):
        raise _bad("error.body.invalid", "The body must be a JSON object")
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _bad("error.enrichment.name.empty", "The enrichment name is empty")
    webhook = payload.get("webhook_url")
    if webhook is not None and (not isinstance(webhook, str) or not _WEBHOOK.match(webhook)):
        if not (isinstance(webhook, str) and not webhook.strip()):
            raise _bad("error.enrichment.webhook_url.invalid", "The webhook url is invalid")
        webhook = None
    datas = payload.get("datas")
    if datas is None or (isinstance(datas, list) and not datas):
        raise _bad("error.enrichment.data.empty", "No contact to enrich in datas")
    if not isinstance(datas, list):
        raise _bad("error.body.invalid", "datas must be a list")
    if len(datas) > MAX_CONTACTS_PER_BULK:
        raise _bad(
            "error.enrichment.data.too_many",
            f"At most {MAX_CONTACTS_PER_BULK} contacts per enrichment",
        )
    contacts = tuple(
        _contact(
            item,
            f"datas[{i}]" if name_items else "contact",
            check_domain=check_domain,
            check_linkedin=check_linkedin,
            linkedin_alone=linkedin_alone,
        )
        for i, item in enumerate(datas)
    )
    return ValidBulk(name, webhook or None, contacts)
