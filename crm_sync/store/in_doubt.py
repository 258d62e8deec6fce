"""in_doubt: how a batch gets there, and every way out of it.

In: a POST whose answer never came (`mark_in_doubt`), or a `sending` batch found after its
process died (`recover_stale_sending`). Out: a late answer (`transitions.to_submitted`), the
release after `state.in_doubt_release_hours` (`release_in_doubt`), or a person who has looked
(`crm-sync resolve`): the provider's dashboard shows whether the batch's enrichment exists (its
name carries the batch id). `sent` keeps the contacts' attempt, so their cooldown runs as for any
ask; `not sent` gives them back as if never asked. Each is one conditional UPDATE from the state
it expects.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, or_, select

from crm_sync.store.records import OUTCOME_IN_DOUBT_RELEASED, OUTCOME_NOT_SENT
from crm_sync.store.schema import batches
from crm_sync.store.states import BatchState
from crm_sync.store.transitions import free_contacts, transition

OUTCOME_SENT_UNKNOWN = "sent_result_unknown"
STALE_SENDING_ERROR = "found in sending after a restart: the POST may have reached the API"


def mark_in_doubt(conn: Connection, now: datetime, batch_id: str, error: str) -> bool:
    """sending -> in_doubt (the POST may have been executed); contacts stay in flight."""
    return transition(conn, now, batch_id, (BatchState.SENDING,), BatchState.IN_DOUBT, error=error)


def recover_stale_sending(
    conn: Connection,
    now: datetime,
    *,
    owner: str | None = None,
    older_than: timedelta | None = None,
    source: str | None = None,
    exclude_owner: str | None = None,
) -> list[str]:
    """sending batches of a dead process -> in_doubt; the ids moved by this call.

    Picks those sent by `owner` or stuck longer than `older_than` (either matches), or, with
    only `exclude_owner`, every one not sent by it (the caller holds the source's lease, so any
    other sender is gone); `source` narrows any of these to one source.
    """
    if owner is None and older_than is None and exclude_owner is None:
        raise ValueError("recover_stale_sending needs owner, older_than or exclude_owner")
    stale: list[Any] = []
    if owner is not None:
        stale.append(batches.c.owner == owner)
    if older_than is not None:
        stale.append(batches.c.state_changed_at <= now - older_than)
    conditions: list[Any] = [or_(*stale)] if stale else []
    if exclude_owner is not None:
        conditions.append(batches.c.owner != exclude_owner)
    if source is not None:
        conditions.append(batches.c.source == source)
    candidates = conn.execute(
        select(batches.c.id).where(batches.c.state == BatchState.SENDING, *conditions)
    ).scalars()
    return [
        batch_id
        for batch_id in list(candidates)
        if transition(
            conn,
            now,
            batch_id,
            (BatchState.SENDING,),
            BatchState.IN_DOUBT,
            *conditions,
            error=STALE_SENDING_ERROR,
        )
    ]


def release_in_doubt(conn: Connection, now: datetime, older_than: timedelta) -> list[str]:
    """in_doubt batches older than `older_than` -> released, contacts freed; the ids released."""
    old = batches.c.state_changed_at <= now - older_than
    candidates = conn.execute(
        select(batches.c.id).where(batches.c.state == BatchState.IN_DOUBT, old)
    )
    released = []
    for batch_id in list(candidates.scalars()):
        if transition(conn, now, batch_id, (BatchState.IN_DOUBT,), BatchState.RELEASED, old):
            free_contacts(conn, now, batch_id, OUTCOME_IN_DOUBT_RELEASED)
            released.append(batch_id)
    return released


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
