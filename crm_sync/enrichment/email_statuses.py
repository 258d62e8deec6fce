"""The email statuses the enrichment API returns, and which of them we write by default.

A source may widen or narrow what it writes (`sources[].accepted_email_statuses`, validated
against `EMAIL_STATUSES`); the credits an email costs by its status are in `prices.py`.
"""

from __future__ import annotations

from typing import Final

DELIVERABLE: Final = "DELIVERABLE"
HIGH_PROBABILITY: Final = "HIGH_PROBABILITY"
CATCH_ALL: Final = "CATCH_ALL"
INVALID: Final = "INVALID"
INVALID_DOMAIN: Final = "INVALID_DOMAIN"

#: Every status the API documents for a found email.
EMAIL_STATUSES: Final = (DELIVERABLE, HIGH_PROBABILITY, CATCH_ALL, INVALID, INVALID_DOMAIN)
#: Written unless a source says otherwise: a catch-all domain accepts any address, so its
#: email may bounce.
WRITABLE_BY_DEFAULT: Final = (DELIVERABLE, HIGH_PROBABILITY)
