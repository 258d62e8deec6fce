"""The store's vocabulary: the states a batch moves through, and what storing a result came to.

Both are `StrEnum`s whose values are the strings the database has always held, so rows written
before and after read the same and no migration is needed; a member compares equal to its string.

    open -> planned -> sending -> submitted -> received -> written
                          |           ^  \\-> failed (unreadable result)
                          v           |
                       in_doubt ------+ (a late answer)   in_doubt -> released | failed
    planned | sending -> failed (refused, not sent)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class BatchState(StrEnum):
    """Where a batch is; each move is a conditional UPDATE naming the state it expects."""

    #: The fresh lane's open batch: contacts claimed, waiting (no credits reserved, nothing sent).
    OPEN = "open"
    PLANNED = "planned"
    SENDING = "sending"
    SUBMITTED = "submitted"
    RECEIVED = "received"
    WRITTEN = "written"
    IN_DOUBT = "in_doubt"
    FAILED = "failed"
    RELEASED = "released"


#: Every state, in the order a batch moves through them.
STATES: Final = tuple(BatchState)
#: States whose credits do not count against a budget: nothing was (or may have been) spent
#: that we still hold against the account.
UNCOUNTED_STATES: Final = (BatchState.FAILED, BatchState.RELEASED)
#: States whose credits are reserved but not yet known to be spent (no result stored yet).
IN_FLIGHT_STATES: Final = (
    BatchState.OPEN,
    BatchState.PLANNED,
    BatchState.SENDING,
    BatchState.SUBMITTED,
    BatchState.IN_DOUBT,
)
#: States a per-contact result may still be attached to (the batch result is not in).
AWAITING_RESULT_STATES: Final = (BatchState.SENDING, BatchState.SUBMITTED, BatchState.IN_DOUBT)


class StoreOutcome(StrEnum):
    """What keeping a result (a batch's or one contact's) came to; webhooks answer by it."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    #: No batch carries the id (or the contact is not in an open batch): nothing kept.
    UNKNOWN = "unknown"
    #: No batch carries this id yet: kept in early_results until one does.
    KEPT = "kept"
