"""Per-contact results (v2 `contact_finished` events): stored as they arrive, written one by one.

A contact's item is kept against the batch that holds the contact until write-back settles it
(`written_at`). A claim (`claim_owner`, `claim_until`) lets one replica write it while the
others skip it. When every contact of a submitted batch is settled, the batch can complete
without waiting for the batch webhook or a poll.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from crm_sync.store.operation import Work, lookup, write
from crm_sync.store.schema import batch_contacts, batches, contact_results
from crm_sync.store.states import AWAITING_RESULT_STATES, BatchState, StoreOutcome


@dataclass(frozen=True)
class ContactResult:
    """One stored per-contact result item (internal shape, JSON text)."""

    batch_id: str
    record_id: str
    raw_item: str


def store_one(
    conn: Connection, now: datetime, batch_id: str, record_id: str, raw_item: str
) -> StoreOutcome:
    """Keep `raw_item` for a contact of an open batch: "stored", "duplicate" or "unknown"."""
    member = conn.execute(
        select(batches.c.state)
        .select_from(batches.join(batch_contacts, batch_contacts.c.batch_id == batches.c.id))
        .where(batches.c.id == batch_id, batch_contacts.c.record_id == record_id)
    ).first()
    if member is None:
        return StoreOutcome.UNKNOWN
    if member.state not in AWAITING_RESULT_STATES:
        return StoreOutcome.DUPLICATE  # the batch result is in: it holds this contact too
    seen = conn.execute(
        select(contact_results.c.record_id).where(
            contact_results.c.batch_id == batch_id, contact_results.c.record_id == record_id
        )
    ).first()
    if seen is not None:
        return StoreOutcome.DUPLICATE
    conn.execute(
        contact_results.insert().values(
            batch_id=batch_id, record_id=record_id, raw_item=raw_item, received_at=now
        )
    )
    return StoreOutcome.STORED


def claim_pending(
    conn: Connection, now: datetime, *, owner: str, limit: int, lease: timedelta
) -> list[ContactResult]:
    """Unwritten results of open batches with no live claim, claimed for `owner`."""
    free = or_(contact_results.c.claim_until.is_(None), contact_results.c.claim_until <= now)
    eligible = and_(
        contact_results.c.written_at.is_(None),
        free,
        contact_results.c.batch_id.in_(
            select(batches.c.id).where(batches.c.state.in_(AWAITING_RESULT_STATES))
        ),
    )
    rows = list(
        conn.execute(
            select(contact_results)
            .where(eligible)
            .order_by(contact_results.c.received_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    claimed = []
    for row in rows:
        key = and_(
            contact_results.c.batch_id == row.batch_id,
            contact_results.c.record_id == row.record_id,
        )
        statement = (
            update(contact_results)
            .where(key, eligible)
            .values(claim_owner=owner, claim_until=now + lease)
        )
        if conn.execute(statement).rowcount == 1:
            claimed.append(ContactResult(row.batch_id, row.record_id, row.raw_item))
    return claimed


def mark_written(conn: Connection, now: datetime, batch_id: str, record_ids: Sequence[str]) -> None:
    """These results are settled (their outcome is on the batch's contacts)."""
    if record_ids:
        conn.execute(
            update(contact_results)
            .where(
                contact_results.c.batch_id == batch_id,
                contact_results.c.record_id.in_(list(record_ids)),
            )
            .values(written_at=now, claim_owner=None, claim_until=None)
        )


def settled_batches(conn: Connection) -> list[str]:
    """Submitted batches with per-contact results whose every contact has an outcome."""
    unsettled = (
        select(func.count())
        .select_from(batch_contacts)
        .where(batch_contacts.c.batch_id == batches.c.id, batch_contacts.c.outcome.is_(None))
        .scalar_subquery()
    )
    with_events = select(contact_results.c.batch_id).distinct()
    return list(
        conn.execute(
            select(batches.c.id).where(
                batches.c.state == BatchState.SUBMITTED,
                batches.c.id.in_(with_events),
                unsettled == 0,
            )
        ).scalars()
    )


def items_of(conn: Connection, batch_id: str) -> list[str]:
    """Every stored result item of a batch (JSON text), in arrival order."""
    return list(
        conn.execute(
            select(contact_results.c.raw_item)
            .where(contact_results.c.batch_id == batch_id)
            .order_by(contact_results.c.received_at)
        ).scalars()
    )


class ContactResults:
    """The store's per-contact results, each method one transaction."""

    def __init__(self, write: Callable[[Work], Any], read: Callable[[Work], Any]) -> None:
        self._write = write
        self._read = read

    store = write(store_one)
    claim_pending = write(claim_pending)
    mark_written = write(mark_written)
    settled_batches = lookup(settled_batches)
    items = lookup(items_of)


__all__ = ["ContactResult", "ContactResults"]
