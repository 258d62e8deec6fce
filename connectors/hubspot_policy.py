"""How the HubSpot connector paces and retries calls, and what each HubSpot error means.

429: wait as the body's `policyName` says (TEN_SECONDLY_ROLLING 10 s, SECONDLY 1 s), DAILY is
`QuotaExhausted`; 5xx and status 0 back off exponentially; 401/403 are `AuthError`; any other
4xx is `ValidationError` with HubSpot's category and message (secrets scrubbed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from crm_sync.errors import AuthError, QuotaExhausted, RateLimited, ServerError, ValidationError
from crm_sync.logs import scrub

WAIT_BY_POLICY = {"TEN_SECONDLY_ROLLING": 10.0, "SECONDLY": 1.0}


class Throttle:
    """Spaces calls at least 1/rate seconds apart, with an injected clock and sleep."""

    def __init__(
        self, rate: float, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self.interval = 1.0 / rate
        self._clock, self._sleep = clock, sleep
        self._next = float("-inf")

    def wait(self) -> None:
        now = self._clock()
        if now < self._next:
            self._sleep(self._next - now)
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


def backoff(attempt: int) -> float:
    """Seconds before retry `attempt + 1` after a server or connection failure."""
    return float(min(0.5 * 2.0**attempt, 30.0))


def retry_wait(exc: Exception, attempt: int, retries: int) -> float:
    """Seconds to wait before retrying, or raise the error the caller should see."""
    status = int(getattr(exc, "status", 0) or 0)
    category, message, body = error_fields(exc)
    if status in (401, 403):
        raise AuthError(
            f"HubSpot refused the access token ({status} {category or 'unauthorized'}); "
            "renew the private app token or grant it the crm.objects.contacts scopes",
            service="hubspot",
            code=category,
        ) from None
    if status == 429:
        policy = str(body.get("policyName", ""))
        if policy == "DAILY":
            raise QuotaExhausted(
                f"HubSpot daily API limit reached: {message}", status=429
            ) from None
        if attempt >= retries:
            raise RateLimited(f"HubSpot kept answering 429 ({policy})", status=429) from None
        return WAIT_BY_POLICY.get(policy, 10.0)
    if status == 0 or status >= 500:
        if attempt >= retries:
            raise ServerError(f"HubSpot kept failing ({status})", status=status) from None
        return backoff(attempt)
    raise ValidationError(
        f"HubSpot refused the request ({status} {category}): {message}",
        status=status,
        code=category,
    ) from None
