"""What each provider accepts as one item of a bulk POST, checked before a contact is planned.

One item that breaks the provider's input rules makes the whole POST fail with a 400, so an item
we know the API would refuse must never reach it. The rules, one table per provider, as their
documents state them:

    provider     an item is accepted when it has
    -----------  ------------------------------------------------------------------
    fullenrich   first name + last name + (company name or domain), OR a LinkedIn URL
    deepenrich   first name + last name + (company name or domain), always

FullEnrich's LinkedIn-alone route is documented but may not be enforced that way (an
independent fake of the API, and older docs, refuse it with `error.enrichment.lastname.empty`).
`InputRules.learn` therefore drops that route the first time the API refuses an item for a
missing name or company: the table starts with what the provider documents and never pays a
second refused POST to find out it is stricter. The pipeline remembers what was learned in the
state store for `REMEMBER_STRICT` (`remembered_key`), so a CronJob's next runs do not pay it
again; after that the documented rule is tried once more (the provider may have relaxed it).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from crm_sync.logs import get_logger

REMEMBER_STRICT = timedelta(days=30)
_STRICT_SINCE = "strict since "


def remembered_key(provider: str) -> str:
    """The state store key (a row of `scan_cursors`) that remembers a provider's strictness."""
    return f"input_rules:{provider}"


def remembered_value(now: datetime) -> str:
    return f"{_STRICT_SINCE}{now.isoformat()}"


def still_strict(value: str | None, now: datetime) -> bool:
    """True when `value` (as stored) says the provider was found strict within REMEMBER_STRICT."""
    if not value or not value.startswith(_STRICT_SINCE):
        return False
    try:
        since = datetime.fromisoformat(value.removeprefix(_STRICT_SINCE))
    except ValueError:
        return False
    return now - since < REMEMBER_STRICT


# A reason names the first requirement an item misses (kept stable: reports count them).
MISSING_FIRST_NAME = "missing_first_name"
MISSING_LAST_NAME = "missing_last_name"
MISSING_COMPANY = "missing_company"

# The API's code for each reason, where it has one.
API_CODE_FOR = {
    MISSING_FIRST_NAME: "error.enrichment.firstname.empty",
    MISSING_LAST_NAME: "error.enrichment.lastname.empty",
    MISSING_COMPANY: "error.enrichment.company.empty",
}

# The API's codes that say "this item lacks a name or a company" (the strict rule in force).
IDENTITY_CODES = frozenset(
    {
        "error.enrichment.firstname.empty",
        "error.enrichment.lastname.empty",
        "error.enrichment.company.empty",
        "error.enrichment.company_name.empty",
        "error.enrichment.domain.empty",
    }
)


# Codes that name one item's field: splitting the batch finds the item. Any other code (the
# name, the webhook URL, the body, the number of items, a code we do not know) concerns the
# whole request: splitting would only cost POSTs and wrongly blame every contact.
_ITEM_CODE = re.compile(
    r"^error\.enrichment\."
    r"(?:firstname|lastname|domain|company|company_name|linkedin_url|custom|enrich_fields)\."
)


def is_item_code(code: str) -> bool:
    """True when the API's 400 code is about one item of `datas` (not the whole request)."""
    return bool(_ITEM_CODE.match(code))


@dataclass(frozen=True)
class ProviderRules:
    """One provider's table: the named identity, and whether a LinkedIn URL alone suffices."""

    provider: str
    linkedin_alone: bool


PROVIDER_RULES: dict[str, ProviderRules] = {
    "fullenrich": ProviderRules("fullenrich", linkedin_alone=True),
    "deepenrich": ProviderRules("deepenrich", linkedin_alone=False),
}


def _text(item: Mapping[str, Any], key: str) -> bool:
    value = item.get(key)
    return isinstance(value, str) and bool(value.strip())


def named_identity_problem(item: Mapping[str, Any]) -> str | None:
    """The first of first name, last name, company-or-domain that the item lacks, or None."""
    if not _text(item, "firstname"):
        return MISSING_FIRST_NAME
    if not _text(item, "lastname"):
        return MISSING_LAST_NAME
    if not (_text(item, "company_name") or _text(item, "domain")):
        return MISSING_COMPANY
    return None


class InputRules:
    """A provider's table for one process, stricter once the API has shown it is (thread-safe)."""

    def __init__(self, provider: str) -> None:
        try:
            table = PROVIDER_RULES[provider]
        except KeyError:
            raise ValueError(f"no input rules for provider {provider!r}") from None
        self.provider = provider
        self._linkedin_alone = table.linkedin_alone
        self._lock = threading.Lock()

    @property
    def linkedin_alone(self) -> bool:
        return self._linkedin_alone

    def problem(self, item: Mapping[str, Any]) -> str | None:
        """Why the API would refuse this request item (the wire dict), or None if it accepts it.

        The item is what will be sent: an invalid LinkedIn URL or domain was already dropped by
        `policies.build_request`, so only what the API would see is judged.
        """
        missing = named_identity_problem(item)
        if missing is None:
            return None
        if self._linkedin_alone and _text(item, "linkedin_url"):
            return None
        return missing

    def tighten(self) -> None:
        """Apply the stricter rule (remembered from an earlier refusal)."""
        with self._lock:
            self._linkedin_alone = False

    def learn(self, code: str, items: list[Mapping[str, Any]]) -> bool:
        """Take in the API's refusal of a POST of `items`; True when the rules became stricter.

        Only a refusal for a missing name or company, of a POST holding an item our table let
        through on its LinkedIn URL alone, shows the LinkedIn-alone route closed.
        """
        if code not in IDENTITY_CODES:
            return False
        with self._lock:
            if not self._linkedin_alone:
                return False
            if all(named_identity_problem(item) is None for item in items):
                return False
            self._linkedin_alone = False
        get_logger(component="enrichment.input_rules").warning(
            "input_rules_stricter",
            provider=self.provider,
            code=code,
            reason="the API refused a LinkedIn URL without a full name and company",
        )
        return True
