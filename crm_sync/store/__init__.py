"""The durable state store: batches, the contact ledger, runs and leases (SQLite or PostgreSQL)."""

from crm_sync.store.collecting import DUPLICATE, STORED, UNKNOWN
from crm_sync.store.planning import COOLDOWN, IN_FLIGHT
from crm_sync.store.records import (
    FAILED,
    IN_DOUBT,
    PLANNED,
    RECEIVED,
    RELEASED,
    SENDING,
    STATES,
    SUBMITTED,
    WRITTEN,
    Batch,
    BatchContact,
    ContactOutcome,
    LedgerRow,
    PlannedContact,
    RunRow,
    WebhookEvent,
)
from crm_sync.store.store import Store

__all__ = [
    "COOLDOWN",
    "DUPLICATE",
    "FAILED",
    "IN_DOUBT",
    "IN_FLIGHT",
    "PLANNED",
    "RECEIVED",
    "RELEASED",
    "SENDING",
    "STATES",
    "STORED",
    "SUBMITTED",
    "UNKNOWN",
    "WRITTEN",
    "Batch",
    "BatchContact",
    "ContactOutcome",
    "LedgerRow",
    "PlannedContact",
    "RunRow",
    "Store",
    "WebhookEvent",
]
