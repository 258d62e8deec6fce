"""Selection support and planning: the ledger claim that makes double submission impossible.

A contact is claimed by one upsert per chunk: insert its ledger row, or, if it exists, set
`in_flight_batch_id` only `WHERE in_flight_batch_id IS NULL`. The database row lock decides
between concurrent planners (threads or replicas); rows are claimed in record id order so two
planners never wait on each other in a cycle.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from crm_sync.store.records import Batch, PlannedContact
from crm_sync.store.rows import load_batches
from crm_sync.store.schema import batch_contacts, batches, json_dumps, ledger, upsert
from crm_sync.store.states import BatchState

IN_FLIGHT = "in_flight"
COOLDOWN = "cooldown"
_CHUNK = 500


def chunks(items: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    """`items` in slices of at most `size` (keeps IN lists and bound parameters small)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def excluded_contacts(
    conn: Connection,
    now: datetime,
    source: str,
    record_ids: Sequence[str],
    *,
    found_cooldown: timedelta,
    not_found_cooldown: timedelta,
) -> dict[str, str]:
    """Record id -> "in_flight" | "cooldown" for those that must not be planned now."""
    excluded: dict[str, str] = {}
    columns = (ledger.c.record_id, ledger.c.in_flight_batch_id, ledger.c.last_attempt_at)
    for chunk in chunks(list(dict.fromkeys(record_ids))):
        query = select(*columns, ledger.c.found).where(
            ledger.c.source == source, ledger.c.record_id.in_(list(chunk))
        )
        for record_id, in_flight, last_attempt, found in conn.execute(query):
            if in_flight is not None:
                excluded[record_id] = IN_FLIGHT
            elif last_attempt is not None:
                cooldown = found_cooldown if found else not_found_cooldown
                if last_attempt > now - cooldown:
                    excluded[record_id] = COOLDOWN
    return excluded


def _claim(
    conn: Connection, now: datetime, source: str, batch_id: str, contacts: Sequence[PlannedContact]
) -> set[str]:
    """Claim the ledger rows of `contacts` for `batch_id`; return the record ids claimed."""
    claimed: set[str] = set()
    by_id = sorted(contacts, key=lambda c: c.record_id)
    for start in range(0, len(by_id), _CHUNK):
        rows = [
            {
                "source": source,
                "record_id": c.record_id,
                "in_flight_batch_id": batch_id,
                "last_attempt_at": now,
                "prev_attempt_at": None,
                "fields_asked": json_dumps(list(c.fields_asked)),
                "found": False,
                "attempts": 1,
                "updated_at": now,
            }
            for c in by_id[start : start + _CHUNK]
        ]
        insert: Any = upsert(conn, ledger).values(rows)
        statement = insert.on_conflict_do_update(
            index_elements=[ledger.c.source, ledger.c.record_id],
            set_={
                "in_flight_batch_id": insert.excluded.in_flight_batch_id,
                "prev_attempt_at": ledger.c.last_attempt_at,
                "last_attempt_at": insert.excluded.last_attempt_at,
                "fields_asked": insert.excluded.fields_asked,
                "attempts": ledger.c.attempts + 1,
                "updated_at": insert.excluded.updated_at,
            },
            where=ledger.c.in_flight_batch_id.is_(None),
        ).returning(ledger.c.record_id)
        claimed.update(conn.execute(statement).scalars())
    return claimed


def plan_batch(
    conn: Connection,
    now: datetime,
    *,
    source: str,
    run_id: str,
    owner: str,
    name: str,
    contacts: Sequence[PlannedContact],
    reserved_credits_for: Callable[[Sequence[PlannedContact]], int],
) -> Batch | None:
    """Insert a planned batch holding the contacts it could claim; None if it claimed none.

    `{batch_id}` and `{contacts}` in `name` become the new batch's id and size, so the name the
    provider's dashboard shows leads back to the batch (`crm-sync status`, `resolve`).
    """
    first_of_each: dict[str, PlannedContact] = {}
    for contact in contacts:
        first_of_each.setdefault(contact.record_id, contact)
    unique = list(first_of_each.values())
    batch_id = str(uuid.uuid4())
    claimed_ids = _claim(conn, now, source, batch_id, unique)
    claimed = [c for c in unique if c.record_id in claimed_ids]
    if not claimed:
        return None
    conn.execute(
        batches.insert().values(
            id=batch_id,
            source=source,
            state=BatchState.PLANNED,
            name=name.replace("{batch_id}", batch_id).replace("{contacts}", str(len(claimed))),
            run_id=run_id,
            reserved_credits=int(reserved_credits_for(claimed)),
            created_at=now,
            updated_at=now,
            state_changed_at=now,
            poll_attempts=0,
            owner=owner,
        )
    )
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
    return load_batches(conn, batches.c.id == batch_id)[0]
