"""How the HubSpot connector paces calls, and what each HubSpot error means for a retry.

The backoff itself is `crm_sync.retry.RetryPolicy`'s; this module only classifies. 429: retry
after what the body's `policyName` says (TEN_SECONDLY_ROLLING 10 s, SECONDLY 1 s), DAILY is
`QuotaExhausted`; 5xx, status 0 and connection errors are retried; 401/403 are `AuthError`;
any other 4xx is `ValidationError` with HubSpot's category and message (secrets scrubbed).
`Throttle` is pacing, not backoff: it keeps calls `1/requests_per_second` apart.
"""

from __future__ import annotations

import json
import re
from typing import Any

import urllib3

from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.errors import AuthError, QuotaExhausted, RateLimited, ServerError, ValidationError
from crm_sync.logs import scrub
from crm_sync.retry import Decision, Raise, Retry

WAIT_BY_POLICY = {"TEN_SECONDLY_ROLLING": 10.0, "SECONDLY": 1.0}


class Throttle:
    """Spaces calls at least 1/rate seconds apart on the given clock."""

    def __init__(self, rate: float, clock: Clock = SYSTEM_CLOCK) -> None:
        self.interval = 1.0 / rate
        self._clock = clock
        self._next = float("-inf")

    def wait(self) -> None:
        now = self._clock.monotonic()
        if now < self._next:
            self._clock.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


def error_fields(exc: Exception) -> tuple[str, str, dict[str, Any]]:
    """(category, message, body) of an ApiException, tolerating a non-JSON body."""
    try:
        body = json.loads(getattr(exc, "body", None) or "{}")
    except (ValueError, TypeError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    return str(body.get("category", "")), scrub(str(body.get("message", ""))), body


_FIELD_ERRORS = re.compile(r'"error"\s*:\s*"(PROPERTY_DOESNT_EXIST|READ_ONLY_VALUE)"')
_FIELD_NAME = re.compile(r'"name"\s*:\s*"([^"]+)"')


def field_refusal(exc: Exception) -> str:
    """HubSpot's reason when a 400 refuses the property itself (it does not exist, read-only).

    Such a refusal is no record's fault: the whole field is wrong, so the caller must hold
    the results rather than reject the records. "" for any other error.
    """
    if int(getattr(exc, "status", 0) or 0) != 400:
        return ""
    category, message, _ = error_fields(exc)
    match = _FIELD_ERRORS.search(message)
    if match is None:
        return ""
    name = _FIELD_NAME.search(message)
    prop = f"property {name.group(1)!r}" if name else "a property"
    return f"{match.group(1)}: {prop} ({category or 'VALIDATION_ERROR'})"


def classify(
    outcome: object,
    attempt: int,
    *,
    api_errors: tuple[type[Exception], ...],
    passthrough: frozenset[int] = frozenset(),
) -> Decision:
    """What to do after one attempt of a HubSpot call (`RetryPolicy.run`'s classification).

    An API error whose status is in `passthrough` is re-raised as is, for the caller to judge.
    """
    if isinstance(outcome, api_errors):
        if int(getattr(outcome, "status", 0) or 0) in passthrough:
            return None
        return classify_error(outcome)
    if isinstance(outcome, urllib3.exceptions.HTTPError):
        message = f"HubSpot unreachable after {attempt} attempts: {type(outcome).__name__}"
        return Retry(give_up=ServerError(message))
    return None


def classify_error(exc: Exception) -> Raise | Retry:
    """Retry (a rate window, a server error) or the error the caller should see."""
    status = int(getattr(exc, "status", 0) or 0)
    category, message, body = error_fields(exc)
    if status in (401, 403):
        return Raise(
            AuthError(
                f"HubSpot refused the access token ({status} {category or 'unauthorized'}); "
                "renew the private app token or grant it the crm.objects.contacts scopes",
                service="hubspot",
                code=category,
            )
        )
    if status == 429:
        policy = str(body.get("policyName", ""))
        if policy == "DAILY":
            return Raise(QuotaExhausted(f"HubSpot daily API limit reached: {message}", status=429))
        return Retry(
            after=WAIT_BY_POLICY.get(policy, 10.0),
            give_up=RateLimited(f"HubSpot kept answering 429 ({policy})", status=429),
        )
    if status == 0 or status >= 500:
        return Retry(give_up=ServerError(f"HubSpot kept failing ({status})", status=status))
    return Raise(
        ValidationError(
            f"HubSpot refused the request ({status} {category}): {message}",
            status=status,
            code=category,
        )
    )
