"""The field vocabulary: the fields we fill in a CRM, and the enrichment API fields that find them.

A source maps each logical field (`email`, `phone`) to its CRM's own property name
(`sources[].fields`); the API is asked, per contact, for the enrich field of each logical field
the record lacks (`contact.emails` finds a work email, `contact.phones` a phone). Connectors
keep their own CRM property names and do not import this module.
"""

from __future__ import annotations

from typing import Final

EMAIL: Final = "email"
PHONE: Final = "phone"
#: The logical fields, in the order they are asked for and reported.
LOGICAL_FIELDS: Final = (EMAIL, PHONE)

FIELD_WORK_EMAIL: Final = "contact.emails"
FIELD_PERSONAL_EMAIL: Final = "contact.personal_emails"
FIELD_PHONE: Final = "contact.phones"
#: Every enrich field the API (v1 names) accepts in `enrich_fields`.
ENRICH_FIELDS: Final = (FIELD_WORK_EMAIL, FIELD_PERSONAL_EMAIL, FIELD_PHONE)

#: logical CRM field -> the API's enrich field that finds it (a personal email fills nothing).
ENRICH_FIELD_FOR: Final = {EMAIL: FIELD_WORK_EMAIL, PHONE: FIELD_PHONE}
LOGICAL_FOR: Final = {enrich: logical for logical, enrich in ENRICH_FIELD_FOR.items()}
