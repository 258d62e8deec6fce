"""The enrichment API's facts as the emulator states them, read from the reference, not the client.

The emulator never borrows the client's constants, statuses or signer: when the client misreads
the API (a wrong limit, price, field name or signature), the two disagree and a test fails.
References: `shared/reference/enrichment-api.md` ("the reference" below), the seeds it cites
(`shared/seeds/000_*.txt` FullEnrich, `002_*.txt` DeepEnrich) and FullEnrich's published
`shared/reference/fullenrich-openapi-v2.yml` ("the v2 spec").
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

# -- requests (the reference, "Endpoints (v1)" and the POST body notes) ---------------------------

#: "At most 100 items in `datas`" (both seeds: "up to 100 contacts per request").
MAX_CONTACTS_PER_BULK = 100
#: "`custom`: values must be strings; at most 10 keys, 100 characters each."
MAX_CUSTOM_KEYS = 10
MAX_CUSTOM_VALUE_LENGTH = 100

#: v1 `enrich_fields`: "`contact.emails` (work email), `contact.phones`, `contact.personal_emails`".
FIELD_WORK_EMAIL = "contact.emails"
FIELD_PERSONAL_EMAIL = "contact.personal_emails"
FIELD_PHONE = "contact.phones"
ENRICH_FIELDS = (FIELD_WORK_EMAIL, FIELD_PERSONAL_EMAIL, FIELD_PHONE)

# -- credits (the reference, "Credits") ------------------------------------------------------------

#: "1 per work email found, 3 per personal email, 10 per phone; nothing found costs nothing."
CREDITS_PER_FIELD = {FIELD_WORK_EMAIL: 1, FIELD_PERSONAL_EMAIL: 3, FIELD_PHONE: 10}


# -- results (the reference, "Result object") ------------------------------------------------------


class JobStatus(StrEnum):
    """A result object's `status`; terminal: FINISHED, CANCELED, CREDITS_INSUFFICIENT."""

    CREATED = "CREATED"
    IN_PROGRESS = "IN_PROGRESS"
    FINISHED = "FINISHED"
    CANCELED = "CANCELED"
    CREDITS_INSUFFICIENT = "CREDITS_INSUFFICIENT"
    RATE_LIMIT = "RATE_LIMIT"
    UNKNOWN = "UNKNOWN"


# -- webhooks (the reference, "Webhooks") ----------------------------------------------------------

#: "header `X-Signature-SHA1` = lowercase hex HMAC-SHA1 of the raw body bytes, keyed with the API
#: key" (documented for FullEnrich v2; the reference takes it as likely the same for v1).
SIGNATURE_HEADER = "X-Signature-SHA1"


def signature(body: bytes, api_key: str) -> str:
    """The `X-Signature-SHA1` value the API sends with `body`."""
    return hmac.new(api_key.encode(), body, hashlib.sha1).hexdigest()


# -- v2 (the reference, "v2, for reference", and the v2 spec) -------------------------------------

#: v2 renames `contact.emails` to `contact.work_emails` (the spec's `enrich_fields` enum).
V2_ENRICH_FIELDS = {
    "contact.work_emails": FIELD_WORK_EMAIL,
    "contact.personal_emails": FIELD_PERSONAL_EMAIL,
    "contact.phones": FIELD_PHONE,
}
#: The v2 spec's per-contact webhook event (`webhook_events.contact_finished`).
CONTACT_EVENT = "contact_finished"
#: v1 error codes whose v2 name differs (the spec's 400 examples: `first_name`, `last_name`).
V2_ERROR_CODES = {
    "error.enrichment.firstname.empty": "error.enrichment.first_name.empty",
    "error.enrichment.lastname.empty": "error.enrichment.last_name.empty",
}

__all__ = [
    "CONTACT_EVENT",
    "CREDITS_PER_FIELD",
    "ENRICH_FIELDS",
    "FIELD_PERSONAL_EMAIL",
    "FIELD_PHONE",
    "FIELD_WORK_EMAIL",
    "MAX_CONTACTS_PER_BULK",
    "MAX_CUSTOM_KEYS",
    "MAX_CUSTOM_VALUE_LENGTH",
    "SIGNATURE_HEADER",
    "V2_ENRICH_FIELDS",
    "V2_ERROR_CODES",
    "JobStatus",
    "signature",
]
