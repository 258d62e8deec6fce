"""The v2 dialect: FullEnrich's `/api/v2`, as published in its OpenAPI file.

What v2 renames, and where it goes in the internal (v1-shaped) model:

    v2 request                       internal
    data[]                           datas[]
    first_name / last_name           firstname / lastname
    contact.work_emails              contact.emails (the work email)
    webhook_events.contact_finished  (per-contact webhooks; no v1 equivalent)

    v2 result item                                internal ResultItem.contact
    input.first_name / last_name / company_domain firstname / lastname / domain
    contact_info.most_probable_work_email         most_probable_email (+ _status)
    contact_info.most_probable_personal_email     most_probable_personal_email (+ _status)
    contact_info.most_probable_phone.number       most_probable_phone
    contact_info.work_emails / personal_emails    emails / personal_emails (each with status)
    contact_info.phones                           phones (number, region)
    profile (a Person)                            profile (its names only); its professional
                                                  network URL becomes a LINKEDIN social_medias

Everything else v2 returns (the rest of `profile`: employment, skills, ...) is dropped here,
without error. An item that cannot be read becomes an item whose `contact` is unreadable, so
the per-item reader marks that one contact malformed and reads the others.
"""

from __future__ import annotations

from typing import Any

from crm_sync.enrichment.models import BulkRequest, ContactRequest
from crm_sync.fields import FIELD_PERSONAL_EMAIL, FIELD_PHONE, FIELD_WORK_EMAIL

CONTACT_EVENT = "contact_finished"
#: Per-contact events are sent to the batch webhook URL plus this suffix, so the receiver
#: knows the kind of event from the route it configured, not from the payload.
CONTACT_EVENT_PATH = "/contact"
V2_FIELD_WORK_EMAIL = "contact.work_emails"
ENRICH_FIELDS_TO_V2 = {
    FIELD_WORK_EMAIL: V2_FIELD_WORK_EMAIL,
    FIELD_PERSONAL_EMAIL: FIELD_PERSONAL_EMAIL,
    FIELD_PHONE: FIELD_PHONE,
}
ENRICH_FIELDS_FROM_V2 = {v: k for k, v in ENRICH_FIELDS_TO_V2.items()}
#: v2 error codes whose name differs from v1's (the internal names).
ERROR_CODES_FROM_V2 = {
    "error.enrichment.first_name.empty": "error.enrichment.firstname.empty",
    "error.enrichment.last_name.empty": "error.enrichment.lastname.empty",
}
ERROR_CODES_TO_V2 = {v: k for k, v in ERROR_CODES_FROM_V2.items()}
#: What is kept of v2's `profile` (a whole Person); the rest is not used by crm-sync.
PROFILE_KEYS = ("id", "full_name", "first_name", "last_name")
#: The marker an unreadable item's `contact` gets: a string, which no reader takes for data.
UNREADABLE = "unreadable v2 result item"


def contact_to_v2(contact: ContactRequest) -> dict[str, Any]:
    """One request item in v2's names; absent rather than null."""
    item: dict[str, Any] = {
        "first_name": contact.firstname,
        "last_name": contact.lastname,
        "domain": contact.domain,
        "company_name": contact.company_name,
        "linkedin_url": contact.linkedin_url,
        "enrich_fields": [ENRICH_FIELDS_TO_V2[f] for f in contact.enrich_fields],
        "custom": dict(contact.custom),
    }
    return {k: v for k, v in item.items() if v is not None}


def _dict(value: Any) -> dict[str, Any] | None:
    """`value` when it is an object, {} when absent, None when it is something else."""
    if value is None:
        return {}
    return value if isinstance(value, dict) else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _email(value: Any) -> tuple[Any, Any]:
    """(address, status) as sent: a value of the wrong type is left for the reader to refuse."""
    found = _dict(value)
    if found is None:
        return value, None  # not an object: unreadable
    return found.get("email"), found.get("status")


def _linkedin(profile: dict[str, Any]) -> list[dict[str, str]]:
    social = _dict(profile.get("social_profiles")) or {}
    network = _dict(social.get("professional_network")) or {}
    url = _text(network.get("url"))
    return [{"url": url, "type": "LINKEDIN"}] if url else []


def _list(value: Any) -> list[Any] | None:
    if value is None:
        return []
    return value if isinstance(value, list) else None


def item_to_internal(raw: Any) -> dict[str, Any]:
    """One v2 result item (`RecordEnrichment`) as an internal result item."""
    item = _dict(raw)
    if item is None:
        return {"custom": {}, "contact": UNREADABLE}
    custom = item.get("custom")
    info, given, profile = (_dict(item.get(k)) for k in ("contact_info", "input", "profile"))
    lists = [_list((info or {}).get(k)) for k in ("work_emails", "personal_emails", "phones")]
    if info is None or given is None or profile is None or any(v is None for v in lists):
        return {"custom": custom, "contact": UNREADABLE}
    work, personal = (
        _email(info.get("most_probable_work_email")),
        _email(info.get("most_probable_personal_email")),
    )
    phone = _dict(info.get("most_probable_phone"))
    number = info.get("most_probable_phone") if phone is None else phone.get("number")
    contact: dict[str, Any] = {
        "firstname": _text(given.get("first_name")) or _text(profile.get("first_name")),
        "lastname": _text(given.get("last_name")) or _text(profile.get("last_name")),
        "domain": _text(given.get("company_domain")),
        "most_probable_email": work[0],
        "most_probable_email_status": work[1],
        "most_probable_personal_email": personal[0],
        "most_probable_personal_email_status": personal[1],
        "most_probable_phone": number,
        "emails": lists[0],
        "personal_emails": lists[1],
        "phones": lists[2],
        "social_medias": _linkedin(profile),
    }
    kept = {k: profile[k] for k in PROFILE_KEYS if isinstance(profile.get(k), str)}
    if kept:
        contact["profile"] = kept
    return {"custom": custom, "contact": contact}


class _V2:
    """FullEnrich v2: `data`, `first_name`, `contact.work_emails`, results in `contact_info`."""

    version = "v2"

    def request_body(
        self, request: BulkRequest, *, contact_events: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": request.name,
            "data": [contact_to_v2(c) for c in request.datas],
        }
        if request.webhook_url:
            body["webhook_url"] = request.webhook_url
            if CONTACT_EVENT in contact_events:
                url = request.webhook_url.rstrip("/") + CONTACT_EVENT_PATH
                body["webhook_events"] = {CONTACT_EVENT: url}
        return body

    def to_internal(self, body: dict[str, Any]) -> dict[str, Any]:
        if "datas" in body and "data" not in body:
            # The configuration says v2: a v1 body is not read as v1 (the payload never decides).
            raise ValueError("a v1 result (datas) where the configuration expects v2 (data)")
        out: dict[str, Any] = {k: body[k] for k in ("id", "name", "status", "cost") if k in body}
        data = body.get("data")
        if isinstance(data, list):
            out["datas"] = [item_to_internal(item) for item in data]
        elif data is not None:
            out["datas"] = data  # not a list: left for the reader to refuse
        return out

    def contact_event_items(self, body: Any) -> tuple[str | None, list[dict[str, Any]]]:
        """Both readings of a `contact_finished` body: the result envelope holding one item
        (`{"id", "status": "IN_PROGRESS", "data": [item]}`), or the bare item itself."""
        if not isinstance(body, dict):
            raise ValueError("a contact event must be a JSON object")
        if "data" in body:
            enrichment_id = body.get("id")
            data = body.get("data")
            if not isinstance(data, list):
                raise ValueError("a contact event's data must be a list")
            ident = enrichment_id if isinstance(enrichment_id, str) and enrichment_id else None
            return ident, [item_to_internal(item) for item in data]
        ident = body.get("enrichment_id") or body.get("id")
        return (ident if isinstance(ident, str) and ident else None), [item_to_internal(body)]

    def looks_like_result(self, body: Any) -> bool:
        return isinstance(body, dict) and ("status" in body or "data" in body)

    def error_code(self, code: str) -> str:
        return ERROR_CODES_FROM_V2.get(code, code)


V2 = _V2()

__all__ = [
    "CONTACT_EVENT",
    "CONTACT_EVENT_PATH",
    "ENRICH_FIELDS_FROM_V2",
    "ENRICH_FIELDS_TO_V2",
    "ERROR_CODES_FROM_V2",
    "ERROR_CODES_TO_V2",
    "V2",
    "contact_to_v2",
    "item_to_internal",
]
