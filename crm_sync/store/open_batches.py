"""The fresh lane's open batch: one per source, filled by incremental scans, then sealed.

    join   contacts claimed in the ledger for the source's `open` batch (created on demand), so
           the full scan and other replicas see them in flight; `fresh_contacts` keeps when each
           joined and when it was created in the CRM (for the latency histogram).
    seal   open -> planned with the credits of the contacts that fit the budget; the others are
           given back (claim cleared, cooldown undone) as if never taken.
    drop   open -> failed "not sent": every contact given back (fresh lane turned off).

Nothing in an open batch has been sent or reserved, so a crash loses nothing: the next process
finds the batch in the store and carries on filling or sending it. The incremental scan's cursor
lives in `scan_cursors` under `fresh:<source>`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from crm_sync.store.collecting import _claim as claim_batches
from crm_sync.store.operation import Work, lookup, write
from crm_sync.store.planning import _claim as claim_contacts
from crm_sync.store.records import OUTCOME_NOT_SENT, Batch, PlannedContact
from crm_sync.store.rows import load_batches
from crm_sync.store.schema import batch_contacts, batches, fresh_contacts, json_dumps, ledger
from crm_sync.store.states import BatchState
from crm_sync.store.transitions import free_contacts, transition

CURSOR_PREFIX = "fresh:"


@dataclass(frozen=True)
class OpenBatchInfo:
    """One open batch for the gauge: its source, size and when its oldest began to wait."""

    source: str
    batch_id: str
    contacts: int
    oldest_since: datetime | None


@dataclass(frozen=True)
class SettledContact:
    """A contact of a written batch, for the latency histogram."""

    source: str
    lane: str  # "fresh" or "full"
    start: datetime  # CRM creation or first seen (fresh); planned (full)
    written_at: datetime


def open_batch(conn: Connection, source: str) -> Batch | None:
    """The source's open batch with its contacts, if any."""
    found = load_batches(conn, (batches.c.state == BatchState.OPEN) & (batches.c.source == source))
    return found[0] if found else None


def join(
    conn: Connection,
    now: datetime,
    *,
    source: str,
    owner: str,
    run_id: str,
    contacts: Sequence[PlannedContact],
    created: Mapping[str, datetime],
    capacity: int,
) -> list[str]:
    """Claim up to the room left of `contacts` for the open batch; the record ids that joined."""
    batch = open_batch(conn, source)
    if batch is None:
        batch_id = str(uuid.uuid4())
        conn.execute(
            batches.insert().values(
                id=batch_id,
                source=source,
                state=BatchState.OPEN,
                name=f"crm-sync {source} fresh (open)",
                run_id=run_id,
                reserved_credits=0,
                created_at=now,
                updated_at=now,
                state_changed_at=now,
                poll_attempts=0,
                owner=owner,
            )
        )
        room = capacity
    else:
        batch_id = batch.id
        room = capacity - len(batch.contacts)
    first_of_each = {c.record_id: c for c in reversed(contacts)}
    wanted = [first_of_each[r] for r in dict.fromkeys(c.record_id for c in contacts)][:room]
    if not wanted:
        return []
    claimed_ids = claim_contacts(conn, now, source, batch_id, wanted)
    claimed = [c for c in wanted if c.record_id in claimed_ids]
    if claimed:
        conn.execute(
            batch_contacts.insert(),
            [
                {
                    "batch_id": batch_id,
                    "record_id": c.record_id,
                    "source": source,
                    "fields_asked": json_dumps(list(c.fields_asked)),
                    "request": json_dumps(c.request),
                }
                for c in claimed
            ],
        )
        conn.execute(
            fresh_contacts.insert(),
            [
                {
                    "batch_id": batch_id,
                    "record_id": c.record_id,
                    "source": source,
                    "joined_at": now,
                    "created_at": created.get(c.record_id, now),
                }
                for c in claimed
            ],
        )
    return [c.record_id for c in claimed]


def oldest_waiting(conn: Connection, batch_id: str) -> datetime | None:
    """When the longest-waiting contact of a batch started waiting (created, or first seen)."""
    query = select(func.min(fresh_contacts.c.created_at)).where(
        fresh_contacts.c.batch_id == batch_id
    )
    found: datetime | None = conn.execute(query).scalar()
    return found


def _give_back(conn: Connection, now: datetime, batch_id: str, record_ids: Sequence[str]) -> None:
    """Take contacts out of an open batch as if they never joined (cooldown undone)."""
    if not record_ids:
        return
    ids = list(record_ids)
    conn.execute(
        update(ledger)
        .where(ledger.c.in_flight_batch_id == batch_id, ledger.c.record_id.in_(ids))
        .values(
            in_flight_batch_id=None,
            last_attempt_at=ledger.c.prev_attempt_at,
            attempts=ledger.c.attempts - 1,
            updated_at=now,
        )
    )
    for table in (batch_contacts, fresh_contacts):
        conn.execute(delete(table).where(table.c.batch_id == batch_id, table.c.record_id.in_(ids)))


def seal(
    conn: Connection,
    now: datetime,
    batch_id: str,
    *,
    keep: Sequence[str],
    reserved_credits: int,
    name: str,
    owner: str,
) -> Batch | None:
    """open -> planned holding only `keep`, with its credits reserved; None if nothing is kept."""
    rows = conn.execute(
        select(batch_contacts.c.record_id).where(batch_contacts.c.batch_id == batch_id)
    ).scalars()
    kept = set(keep)
    _give_back(conn, now, batch_id, [r for r in rows if r not in kept])
    if not kept:
        drop(conn, now, batch_id, "not sent: nothing fitted the budget")
        return None
    values: dict[str, Any] = {"reserved_credits": reserved_credits, "name": name, "owner": owner}
    if not transition(conn, now, batch_id, (BatchState.OPEN,), BatchState.PLANNED, **values):
        return None
    return load_batches(conn, batches.c.id == batch_id)[0]


def drop(conn: Connection, now: datetime, batch_id: str, error: str) -> bool:
    """open -> failed: every contact given back untouched (never sent, no cooldown)."""
    if not transition(conn, now, batch_id, (BatchState.OPEN,), BatchState.FAILED, error=error):
        return False
    free_contacts(conn, now, batch_id, OUTCOME_NOT_SENT)
    return True


def give_back_stale(
    conn: Connection, now: datetime, source: str, older_than: timedelta
) -> list[str]:
    """Drop the source's open batches opened before `now - older_than` (no fresh lane sends
    them any more: a running one sends within about max_batch_wait_seconds); their ids."""
    query = select(batches.c.id).where(
        batches.c.state == BatchState.OPEN,
        batches.c.source == source,
        batches.c.created_at < now - older_than,
    )
    dropped = []
    for batch_id in list(conn.execute(query).scalars()):
        if drop(conn, now, batch_id, "not sent: the open batch was left by a stopped fresh lane"):
            dropped.append(batch_id)
    return dropped


def open_batches(conn: Connection) -> list[OpenBatchInfo]:
    """Every open batch, with its size and oldest joiner (for the gauge)."""
    query = (
        select(
            batches.c.source,
            batches.c.id,
            func.count(fresh_contacts.c.record_id),
            func.min(fresh_contacts.c.created_at),
        )
        .select_from(batches.outerjoin(fresh_contacts, fresh_contacts.c.batch_id == batches.c.id))
        .where(batches.c.state == BatchState.OPEN)
        .group_by(batches.c.source, batches.c.id)
    )
    return [OpenBatchInfo(*row) for row in conn.execute(query)]


def last_fresh_post(conn: Connection, source: str) -> datetime | None:
    """When the fresh lane last moved a batch of `source` past `open` (the POST rate's clock)."""
    fresh_ids = select(fresh_contacts.c.batch_id).where(fresh_contacts.c.source == source)
    query = select(func.max(batches.c.submitted_at)).where(batches.c.id.in_(fresh_ids))
    found: datetime | None = conn.execute(query).scalar()
    return found


def claim_received_fresh(
    conn: Connection, now: datetime, *, owner: str, limit: int, lease: timedelta
) -> list[Batch]:
    """Received batches of the fresh lane, claimed for write-back (as `claim_received` does)."""
    fresh_ids = select(fresh_contacts.c.batch_id).distinct()
    return claim_batches(
        conn,
        now,
        owner=owner,
        limit=limit,
        lease=lease,
        eligible=[batches.c.state == BatchState.RECEIVED, batches.c.id.in_(fresh_ids)],
        order_by=batches.c.received_at,
    )


def claim_due_polls_fresh(
    conn: Connection, now: datetime, *, owner: str, limit: int, lease: timedelta
) -> list[Batch]:
    """Submitted fresh-lane batches due for a poll, claimed (as `claim_due_polls` does)."""
    fresh_ids = select(fresh_contacts.c.batch_id).distinct()
    return claim_batches(
        conn,
        now,
        owner=owner,
        limit=limit,
        lease=lease,
        eligible=[
            batches.c.state == BatchState.SUBMITTED,
            batches.c.next_poll_at <= now,
            batches.c.id.in_(fresh_ids),
        ],
        order_by=batches.c.next_poll_at,
    )


def any_received_fresh(conn: Connection) -> bool:
    """Whether a fresh-lane batch waits for write-back (a read, before taking the write lock)."""
    fresh_ids = select(fresh_contacts.c.batch_id)
    query = select(batches.c.id).where(
        batches.c.state == BatchState.RECEIVED, batches.c.id.in_(fresh_ids)
    )
    return conn.execute(query.limit(1)).first() is not None


def settled_since(conn: Connection, since: datetime) -> list[SettledContact]:
    """Contacts of batches written after `since`: when they started waiting, when written."""
    written = (batches.c.state == BatchState.WRITTEN) & (batches.c.written_at > since)
    fresh = conn.execute(
        select(batches.c.source, fresh_contacts.c.created_at, batches.c.written_at)
        .select_from(batches.join(fresh_contacts, fresh_contacts.c.batch_id == batches.c.id))
        .where(written)
    ).all()
    fresh_ids = select(fresh_contacts.c.batch_id)
    full = conn.execute(
        select(batches.c.source, batches.c.created_at, batches.c.written_at)
        .select_from(batches.join(batch_contacts, batch_contacts.c.batch_id == batches.c.id))
        .where(written, batches.c.id.not_in(fresh_ids))
    ).all()
    return [SettledContact(s, "fresh", start, at) for s, start, at in fresh] + [
        SettledContact(s, "full", start, at) for s, start, at in full
    ]


class OpenBatchStore:
    """The functions above bound to a Store's transactions (`store.open_batches`)."""

    def __init__(self, write: Callable[[Work], Any], read: Callable[[Work], Any]) -> None:
        self._write = write
        self._read = read

    get = lookup(open_batch)
    join = write(join)
    oldest_waiting = lookup(oldest_waiting)
    seal = write(seal)
    drop = write(drop)
    give_back_stale = write(give_back_stale)
    all_open = lookup(open_batches)
    last_post = lookup(last_fresh_post)
    claim_due_polls = write(claim_due_polls_fresh)
    any_received = lookup(any_received_fresh)
    claim_received = write(claim_received_fresh)
    settled_since = lookup(settled_since)
