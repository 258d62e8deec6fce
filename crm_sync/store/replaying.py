"""Results kept for later: batches held after a field refusal, and claims for `crm-sync replay`.

A batch is *held* when the CRM refused a mapped field (it does not exist, it is read-only): it
stays `received` with its unwritten contacts still in flight (so neither re-asked nor cooled
down), its `error` says why, and its claim is left to lapse, so a later run retries it
without hammering the CRM within one run. `replay` claims held batches at once, and any other
received batch whose claim is free.

`replay` also takes the contacts of *written* batches that the CRM rejected (outcome `rejected`,
or `rejected: ...` as stores before this version wrote it, including a field refusal then
treated as a record's): their paid result is in the store and was never written. They are
re-decided with the same rules and their new outcome replaces the old one, in the batch and in
the ledger, unless the contact has been asked again since (its ledger row then belongs to a newer
batch and is left alone).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from crm_sync.store.records import Batch, ContactOutcome
from crm_sync.store.rows import load_batches
from crm_sync.store.schema import batch_contacts, batches, json_dumps, ledger
from crm_sync.store.states import BatchState

HELD_PREFIX = "held: "


def hold_batch(conn: Connection, now: datetime, batch_id: str, *, owner: str, reason: str) -> bool:
    """Keep a claimed received batch unwritten: the CRM refused a mapped field (`reason`).

    True if this owner held the claim.
    """
    statement = (
        update(batches)
        .where(
            batches.c.id == batch_id,
            batches.c.state == BatchState.RECEIVED,
            batches.c.claim_owner == owner,
        )
        .values(error=(HELD_PREFIX + reason)[:2000], updated_at=now)
    )
    return conn.execute(statement).rowcount == 1


def claim_for_replay(
    conn: Connection,
    now: datetime,
    *,
    owner: str,
    lease: timedelta,
    source: str | None = None,
    since: datetime | None = None,
) -> list[Batch]:
    """Received batches that are held or unclaimed, claimed for `owner`, oldest result first."""
    eligible = [
        batches.c.state == BatchState.RECEIVED,
        or_(
            batches.c.claim_until.is_(None),
            batches.c.claim_until <= now,
            batches.c.error.like(HELD_PREFIX + "%"),
        ),
    ]
    if source is not None:
        eligible.append(batches.c.source == source)
    if since is not None:
        eligible.append(batches.c.received_at >= since)
    ids = list(
        conn.execute(
            select(batches.c.id).where(*eligible).order_by(batches.c.received_at, batches.c.id)
        ).scalars()
    )
    claimed = []
    for batch_id in ids:
        statement = (
            update(batches)
            .where(batches.c.id == batch_id, *eligible)
            .values(claim_owner=owner, claim_until=now + lease, error=None, updated_at=now)
        )
        if conn.execute(statement).rowcount == 1:
            claimed.append(batch_id)
    return load_batches(conn, batches.c.id.in_(claimed)) if claimed else []


def replayable_batches(
    conn: Connection, *, source: str | None = None, since: datetime | None = None
) -> list[Batch]:
    """What `replay --dry-run` would take, without claiming anything."""
    eligible = [batches.c.state == BatchState.RECEIVED]
    if source is not None:
        eligible.append(batches.c.source == source)
    if since is not None:
        eligible.append(batches.c.received_at >= since)
    return load_batches(conn, and_(*eligible))


def _rejected(column: Any) -> Any:
    return or_(column == "rejected", column.like("rejected:%"))


def rejected_in_written(
    conn: Connection, *, source: str | None = None, since: datetime | None = None
) -> list[tuple[Batch, frozenset[str]]]:
    """Written batches holding CRM-rejected contacts not asked again since, with their ids.

    The ledger row must still be free and still say `rejected`: a contact planned or settled
    by a newer batch since is not this batch's to change.
    """
    eligible = [batches.c.state == BatchState.WRITTEN, batches.c.raw_result.is_not(None)]
    if source is not None:
        eligible.append(batches.c.source == source)
    if since is not None:
        eligible.append(batches.c.received_at >= since)
    pairs = conn.execute(
        select(batch_contacts.c.batch_id, batch_contacts.c.record_id)
        .join(batches, batches.c.id == batch_contacts.c.batch_id)
        .join(
            ledger,
            and_(
                ledger.c.source == batch_contacts.c.source,
                ledger.c.record_id == batch_contacts.c.record_id,
            ),
        )
        .where(
            *eligible,
            _rejected(batch_contacts.c.outcome),
            _rejected(ledger.c.outcome),
            ledger.c.in_flight_batch_id.is_(None),
        )
    ).all()
    wanted: dict[str, set[str]] = {}
    for batch_id, record_id in pairs:
        wanted.setdefault(batch_id, set()).add(record_id)
    if not wanted:
        return []
    found = load_batches(conn, batches.c.id.in_(list(wanted)))
    return [(b, frozenset(wanted[b.id])) for b in found]


def record_replayed(
    conn: Connection, now: datetime, batch_id: str, source: str, outcomes: list[ContactOutcome]
) -> None:
    """The new outcome of replayed contacts of a written batch, where still `rejected`."""
    for o in outcomes:
        values = {
            "outcome": o.outcome,
            "values_written": json_dumps(dict(o.values_written)),
            "outcome_detail": o.detail[:1000] if o.detail else None,
        }
        conn.execute(
            update(batch_contacts)
            .where(
                batch_contacts.c.batch_id == batch_id,
                batch_contacts.c.record_id == o.record_id,
                _rejected(batch_contacts.c.outcome),
            )
            .values(**values)
        )
        conn.execute(
            update(ledger)
            .where(
                ledger.c.source == source,
                ledger.c.record_id == o.record_id,
                ledger.c.in_flight_batch_id.is_(None),
                _rejected(ledger.c.outcome),
            )
            .values(**values, found=bool(o.found), updated_at=now)
        )


def held_batches(conn: Connection) -> list[Batch]:
    """Received batches held by a field refusal, with their contacts (for `status`)."""
    held = and_(batches.c.state == BatchState.RECEIVED, batches.c.error.like(HELD_PREFIX + "%"))
    return load_batches(conn, held)
