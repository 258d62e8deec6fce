"""What the enrichment emulator remembers, so a test can assert on what the daemon sent.

Plain value objects plus two pure helpers (the identity key and the sliding-window count);
the emulator owns the lists and guards them with its lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SubmittedContact:
    """One contact of one accepted bulk POST (a repeated contact appears once per POST)."""

    enrichment_id: str
    custom: dict[str, str]
    enrich_fields: tuple[str, ...]
    identity: str  # "first|last|domain-or-company|linkedin", lowercased
    at: float  # the emulator clock's monotonic seconds

    @property
    def key(self) -> str:
        """The CRM record id when the daemon sent one, else the identity."""
        return self.custom.get("crm_id") or self.identity


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One HTTP call to the API; `counted` is True when it used a slot of the rate limit."""

    at: float
    method: str
    path: str
    status: int
    counted: bool


@dataclass(frozen=True, slots=True)
class WebhookAttempt:
    """One webhook POST; `status` is None when the connection failed (`error` says how)."""

    enrichment_id: str
    url: str
    attempt: int  # 1 for the first send, 2 for the first retry, ...
    status: int | None
    error: str | None
    at: float


@dataclass(frozen=True, slots=True)
class Exchange:
    """One call as seen on the wire (kept when `record_exchanges`, for OpenAPI tests)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes


@dataclass(slots=True)
class Faults:
    """Switches a test may flip while the server runs (plain attributes, read per call)."""

    error_rate: float = 0.0  # fraction of calls answered 500/502/503 before any work
    latency: float = 0.0  # seconds slept before each answer
    drop_webhooks: bool = False  # never send webhooks (checked before each attempt)
    drop_batch_webhooks: bool = False  # v2: send per-contact events but not the batch one
    statuses: tuple[int, ...] = field(default=(500, 502, 503))


def identity_key(
    firstname: str | None,
    lastname: str | None,
    domain: str | None,
    company_name: str | None,
    linkedin_url: str | None,
) -> str:
    """The lowercase identity of a request item, used when it carries no `crm_id`."""
    parts = (firstname, lastname, domain or company_name, linkedin_url)
    return "|".join((p or "").strip().lower() for p in parts)


def max_in_window(times: Iterable[float], window: float) -> int:
    """The largest number of instants that fall within any half-open window (t - window, t]."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best
