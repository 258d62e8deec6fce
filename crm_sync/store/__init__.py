"""The durable state store: batches, the contact ledger, runs and leases (SQLite or PostgreSQL).

`Store` is the one entry point (one transaction per method); `states` holds its vocabulary
(`BatchState`, `StoreOutcome`), `records` the frozen values it hands out, and the other modules
the SQL by concern: planning, submitting transitions, collecting results, write-back, reports,
the fresh lane's open batches, runs and leases, opening with readable errors.
"""

from crm_sync.store.planning import COOLDOWN, IN_FLIGHT
from crm_sync.store.records import (
    Batch,
    BatchContact,
    ContactOutcome,
    LedgerRow,
    PlannedContact,
    RunRow,
    WebhookEvent,
)
from crm_sync.store.states import STATES, BatchState, StoreOutcome
from crm_sync.store.store import Store

__all__ = [
    "COOLDOWN",
    "IN_FLIGHT",
    "STATES",
    "Batch",
    "BatchContact",
    "BatchState",
    "ContactOutcome",
    "LedgerRow",
    "PlannedContact",
    "RunRow",
    "Store",
    "StoreOutcome",
    "WebhookEvent",
]
