"""Small frozen values the store hands out and takes in; no behaviour, no database types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from crm_sync.store.states import BatchState

# Ledger outcomes the store itself writes; the pipeline writes its own (written, not_found, ...).
OUTCOME_API_REJECTED: Final = "api_rejected"
OUTCOME_IN_DOUBT_RELEASED: Final = "in_doubt_released"
OUTCOME_NOT_SENT: Final = "not_sent"
#: The API refuses the item (its code in `reason`); the contact has the not-found cooldown.
OUTCOME_INVALID_INPUT: Final = "invalid_input"
#: On the contacts of a batch the API refused as a whole: they moved to smaller batches.
OUTCOME_SPLIT: Final = "split"
OUTCOME_NO_RESULT: Final = "no_result"
#: Written by the pipeline for contacts the API did not process; clears the cooldown.
OUTCOME_RETRY: Final = "retry"
#: One result item could not be read (its reason is the outcome's detail); not-found cooldown.
OUTCOME_MALFORMED: Final = "malformed"
#: A finished result had no item for the contact; not-found cooldown (it may have been charged).
OUTCOME_NOT_RETURNED: Final = "not_returned"


@dataclass(frozen=True)
class PlannedContact:
    """A contact the planner wants to send: what to ask for and the exact request item."""

    record_id: str
    fields_asked: tuple[str, ...]
    request: dict[str, Any]


@dataclass(frozen=True)
class BatchContact:
    """One contact of a batch, with its outcome once written back."""

    record_id: str
    fields_asked: tuple[str, ...]
    request: dict[str, Any]
    outcome: str | None
    values_written: dict[str, str]
    detail: str | None = None


@dataclass(frozen=True)
class ContactOutcome:
    """What write-back did with one contact of a received batch; `detail` says why, if useful."""

    record_id: str
    outcome: str
    values_written: dict[str, str]
    found: bool
    detail: str | None = None


@dataclass(frozen=True)
class Batch:
    """A batch as stored; `contacts` is filled by get_batch, the claims and in_doubt_batches."""

    id: str
    source: str
    state: BatchState
    name: str
    run_id: str
    enrichment_id: str | None
    reserved_credits: int
    credits_spent: int | None
    created_at: datetime
    updated_at: datetime
    state_changed_at: datetime
    submitted_at: datetime | None
    received_at: datetime | None
    written_at: datetime | None
    next_poll_at: datetime | None
    poll_attempts: int
    result_status: str | None
    raw_result: str | None
    result_source: str | None
    error: str | None
    owner: str
    claim_owner: str | None
    claim_until: datetime | None
    contacts: tuple[BatchContact, ...] = field(default=())
    read_failures: int = 0  # polls whose terminal result could not be read at all


@dataclass(frozen=True)
class LedgerRow:
    """The ledger entry of one CRM record: drives cooldowns and the audit trail."""

    source: str
    record_id: str
    in_flight_batch_id: str | None
    last_attempt_at: datetime | None
    fields_asked: tuple[str, ...]
    outcome: str | None
    values_written: dict[str, str]
    found: bool
    attempts: int
    updated_at: datetime
    detail: str | None = None


@dataclass(frozen=True)
class RunRow:
    """One run of the cycle, for `crm-sync status`."""

    id: str
    owner: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    report: dict[str, Any] | None


@dataclass(frozen=True)
class WebhookEvent:
    """One webhook delivery and what the store made of it ("stored", "duplicate", "unknown")."""

    id: str
    enrichment_id: str
    received_at: datetime
    outcome: str
    body_sha1: str


@dataclass(frozen=True)
class EarlyResult:
    """A verified result whose enrichment id no batch carried when it arrived, kept as received."""

    enrichment_id: str
    raw_result: str
    result_status: str
    result_source: str
    credits_spent: int | None
    received_at: datetime
    attached_batch_id: str | None
    attached_at: datetime | None
