"""What the enrichment API charges, in credits, and our estimate when a result does not say.

The API's price list: 1 credit per work email found, 3 per personal email, 10 per phone;
nothing found costs nothing. A work email counts as found when its status is one the API
charges for (an invalid address is not paid for). Budgets reserve the worst case (everything
asked is found); a stored result records `cost.credits` when the API sends it, else the
estimate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from crm_sync.enrichment.email_statuses import CATCH_ALL, DELIVERABLE, HIGH_PROBABILITY
from crm_sync.enrichment.models import EnrichmentResult
from crm_sync.fields import FIELD_PERSONAL_EMAIL, FIELD_PHONE, FIELD_WORK_EMAIL

CREDITS_PER_FIELD: Final = {FIELD_WORK_EMAIL: 1, FIELD_PERSONAL_EMAIL: 3, FIELD_PHONE: 10}
#: A work email with one of these statuses is charged for.
CHARGED_EMAIL_STATUSES: Final = frozenset({DELIVERABLE, HIGH_PROBABILITY, CATCH_ALL})


def worst_case_cost(enrich_fields: Iterable[str]) -> int:
    """Credits charged if everything asked is found (1 per email, 10 per phone)."""
    return sum(CREDITS_PER_FIELD[f] for f in enrich_fields)


def credits_of(result: EnrichmentResult) -> int:
    """Credits the API says it charged, or an estimate from what it found when it did not say."""
    if result.credits is not None:
        return result.credits
    total = 0
    for item in result.datas:
        contact = item.contact
        if contact.most_probable_email and (
            (contact.most_probable_email_status or "").upper() in CHARGED_EMAIL_STATUSES
        ):
            total += CREDITS_PER_FIELD[FIELD_WORK_EMAIL]
        if contact.most_probable_personal_email:
            total += CREDITS_PER_FIELD[FIELD_PERSONAL_EMAIL]
        if contact.most_probable_phone or contact.phones:
            total += CREDITS_PER_FIELD[FIELD_PHONE]
    return total
