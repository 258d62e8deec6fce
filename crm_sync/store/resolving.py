"""Settling an in_doubt batch by hand (`crm-sync resolve`), once a person has looked.

The provider's dashboard shows whether the batch's enrichment exists (its name carries the
batch id). `sent` keeps the contacts' attempt, so their cooldown runs as for any ask; `not sent`
gives them back as if never asked. Each is one conditional UPDATE from `in_doubt`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from crm_sync.store.records import OUTCOME_NOT_SENT
from crm_sync.store.schema import batches
from crm_sync.store.states import BatchState
from crm_sync.store.transitions import free_contacts, transition

OUTCOME_SENT_UNKNOWN = "sent_result_unknown"


def find_batch_ids(conn: Connection, prefix: str) -> list[str]:
    """Ids of the batches whose id starts with `prefix` (a full id matches itself)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = select(batches.c.id).where(batches.c.id.like(f"{escaped}%", escape="\\"))
    return [row[0] for row in conn.execute(query.limit(5))]


def resolve_not_sent(conn: Connection, now: datetime, batch_id: str) -> bool:
    """in_doubt -> failed "not sent (resolved by hand)"; contacts freed with no cooldown."""
    if not transition(
        conn,
        now,
        batch_id,
        (BatchState.IN_DOUBT,),
        BatchState.FAILED,
        error="not sent (resolved by hand)",
    ):
        return False
    free_contacts(conn, now, batch_id, OUTCOME_NOT_SENT)
    return True


def resolve_sent(conn: Connection, now: datetime, batch_id: str) -> bool:
    """in_doubt -> released "sent, result unknown"; contacts freed, their cooldown applies."""
    error = "sent (resolved by hand); result not fetched"
    if not transition(
        conn, now, batch_id, (BatchState.IN_DOUBT,), BatchState.RELEASED, error=error
    ):
        return False
    free_contacts(conn, now, batch_id, OUTCOME_SENT_UNKNOWN)
    return True
