"""Collecting and handing out work: results from webhooks or polls, and claims on batches.

A claim (`claim_owner`, `claim_until`) lets one replica poll or write back a batch while the
others skip it; it lapses by itself if that replica dies. Candidates are selected with
`FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite serialises writers with `BEGIN IMMEDIATE`) and
each claim is still a conditional UPDATE.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, or_, select, update

from crm_sync.store.records import Batch, EarlyResult
from crm_sync.store.rows import load_batches
from crm_sync.store.schema import batches, early_results, upsert, webhook_events
from crm_sync.store.states import BatchState, StoreOutcome
from crm_sync.store.transitions import to_submitted


def store_result(
    conn: Connection,
    now: datetime,
    enrichment_id: str,
    raw_body: str,
    status: str,
    *,
    source_kind: str,
    credits_spent: int | None,
    keep_unknown: bool = False,
) -> str:
    """submitted -> received with the raw result: "stored", "duplicate" or "unknown".

    With `keep_unknown`, a result no batch carries the id of is kept in `early_results` in
    this same transaction ("kept"; "duplicate" when it already was), so an acknowledged
    delivery is never a forgotten one.
    """
    incoming = Incoming(enrichment_id, raw_body, status, source_kind, credits_spent)
    outcome = _store_on_batch(conn, now, incoming)
    if outcome == StoreOutcome.UNKNOWN and keep_unknown:
        outcome = keep_early(conn, now, incoming)
    if source_kind == "webhook":
        digest = hashlib.sha1(raw_body.encode("utf-8"), usedforsecurity=False).hexdigest()
        conn.execute(
            webhook_events.insert().values(
                id=str(uuid.uuid4()),
                enrichment_id=enrichment_id,
                received_at=now,
                outcome=outcome,
                body_sha1=digest,
            )
        )
    return outcome


@dataclass(frozen=True)
class Incoming:
    """A terminal result on its way into the store."""

    enrichment_id: str
    raw_body: str
    status: str
    source_kind: str
    credits_spent: int | None


def _store_on_batch(conn: Connection, now: datetime, incoming: Incoming) -> StoreOutcome:
    enrichment_id, credits_spent = incoming.enrichment_id, incoming.credits_spent
    values: dict[str, Any] = {
        "state": BatchState.RECEIVED,
        "raw_result": incoming.raw_body,
        "result_status": incoming.status,
        "result_source": incoming.source_kind,
        "received_at": now,
        "state_changed_at": now,
        "updated_at": now,
        "claim_owner": None,
        "claim_until": None,
    }
    if credits_spent is not None:
        values["credits_spent"] = credits_spent
    statement = (
        update(batches)
        .where(batches.c.enrichment_id == enrichment_id, batches.c.state == BatchState.SUBMITTED)
        .values(**values)
    )
    if conn.execute(statement).rowcount == 1:
        return StoreOutcome.STORED
    known = conn.execute(select(batches.c.id).where(batches.c.enrichment_id == enrichment_id))
    return StoreOutcome.DUPLICATE if known.first() is not None else StoreOutcome.UNKNOWN


def keep_early(conn: Connection, now: datetime, incoming: Incoming) -> StoreOutcome:
    """Keep a result for an id no batch carries yet: "kept", or "duplicate" if it already is."""
    values = {
        "enrichment_id": incoming.enrichment_id,
        "raw_result": incoming.raw_body,
        "result_status": incoming.status,
        "result_source": incoming.source_kind,
        "credits_spent": incoming.credits_spent,
        "received_at": now,
    }
    insert: Any = upsert(conn, early_results).values(**values)
    insert = insert.on_conflict_do_nothing(index_elements=["enrichment_id"])
    added = conn.execute(insert.returning(early_results.c.enrichment_id)).first()
    return StoreOutcome.KEPT if added is not None else StoreOutcome.DUPLICATE


def attach_early(conn: Connection, now: datetime, enrichment_id: str) -> str | None:
    """Hand a kept result to the batch that now carries its id.

    None when nothing is kept for that id (or it was attached already); otherwise what
    `store_result` made of it ("stored"; "duplicate" when the batch already had a result;
    "unknown" when still no batch carries the id, and the result stays kept).
    """
    row = conn.execute(
        select(early_results)
        .where(
            early_results.c.enrichment_id == enrichment_id,
            early_results.c.attached_batch_id.is_(None),
        )
        .with_for_update()
    ).first()
    if row is None:
        return None
    m = row._mapping
    incoming = Incoming(
        enrichment_id, m["raw_result"], m["result_status"], m["result_source"], m["credits_spent"]
    )
    outcome = _store_on_batch(conn, now, incoming)
    if outcome != StoreOutcome.UNKNOWN:
        batch_id = conn.execute(
            select(batches.c.id).where(batches.c.enrichment_id == enrichment_id)
        ).scalar_one()
        conn.execute(
            update(early_results)
            .where(early_results.c.enrichment_id == enrichment_id)
            .values(attached_batch_id=batch_id, attached_at=now)
        )
    return outcome


def mark_submitted(
    conn: Connection, now: datetime, batch_id: str, enrichment_id: str, *, next_poll_at: datetime
) -> bool:
    """sending -> submitted with the API's id (also from in_doubt: a late answer is kept).

    A result kept for that id (its webhook came before the POST's answer) is attached in
    the same transaction: the batch goes straight on to `received`.
    """
    moved = to_submitted(conn, now, batch_id, enrichment_id, next_poll_at)
    if moved:
        attach_early(conn, now, enrichment_id)
    return moved


def known_early_ids(conn: Connection, _now: datetime) -> list[str]:
    """Ids of kept results, not attached yet, that a batch now carries (a read, cheap when idle).

    Closes the race where a result is kept while the POST's answer is being recorded (each
    transaction missed the other's row); `attach_early` then hands each one over.
    """
    query = (
        select(early_results.c.enrichment_id)
        .join(batches, batches.c.enrichment_id == early_results.c.enrichment_id)
        .where(early_results.c.attached_batch_id.is_(None))
    )
    return list(conn.execute(query).scalars())


def count_early(conn: Connection, _now: datetime) -> int:
    """How many kept results no batch has claimed yet."""
    query = select(func.count()).where(early_results.c.attached_batch_id.is_(None))
    return int(conn.execute(query.select_from(early_results)).scalar_one())


def load_early(conn: Connection, *, attached: bool | None = False) -> list[EarlyResult]:
    """Kept results, oldest first: unattached (default), attached (True) or all (None)."""
    query = select(early_results).order_by(early_results.c.received_at)
    if attached is not None:
        column = early_results.c.attached_batch_id
        query = query.where(column.is_not(None) if attached else column.is_(None))
    return [EarlyResult(**dict(row._mapping)) for row in conn.execute(query)]


def prune_early(conn: Connection, now: datetime, older_than: timedelta) -> list[str]:
    """Forget unattached kept results older than `older_than`; the ids forgotten.

    Attached ones are deleted at the same age: their result lives on in the batch.
    """
    old = early_results.c.received_at <= now - older_than
    ids = list(conn.execute(select(early_results.c.enrichment_id).where(old)).scalars())
    if ids:
        conn.execute(early_results.delete().where(early_results.c.enrichment_id.in_(ids)))
    return ids


def record_read_failure(
    conn: Connection,
    now: datetime,
    batch_id: str,
    *,
    owner: str,
    error: str,
    next_poll_at: datetime,
) -> int | None:
    """Count one unreadable result of a submitted batch and schedule the next poll.

    Returns the failures counted so far, or None if the batch is no longer the owner's.
    """
    mine = (
        batches.c.id == batch_id,
        batches.c.state == BatchState.SUBMITTED,
        batches.c.claim_owner == owner,
    )
    statement = (
        update(batches)
        .where(*mine)
        .values(
            read_failures=batches.c.read_failures + 1,
            error=error,
            next_poll_at=next_poll_at,
            claim_owner=None,
            claim_until=None,
            updated_at=now,
        )
    )
    if conn.execute(statement).rowcount != 1:
        return None
    count = conn.execute(select(batches.c.read_failures).where(batches.c.id == batch_id))
    return int(count.scalar_one())


def _claim(
    conn: Connection,
    now: datetime,
    *,
    owner: str,
    limit: int,
    lease: timedelta,
    eligible: list[Any],
    order_by: Any,
) -> list[Batch]:
    """Claim up to `limit` eligible batches with no live claim; return them with contacts."""
    free = or_(batches.c.claim_until.is_(None), batches.c.claim_until <= now)
    candidates = conn.execute(
        select(batches.c.id)
        .where(*eligible, free)
        .order_by(order_by, batches.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).scalars()
    claimed = []
    for batch_id in list(candidates):
        statement = (
            update(batches)
            .where(batches.c.id == batch_id, *eligible, free)
            .values(claim_owner=owner, claim_until=now + lease, updated_at=now)
        )
        if conn.execute(statement).rowcount == 1:
            claimed.append(batch_id)
    if not claimed:
        return []
    return load_batches(conn, batches.c.id.in_(claimed))


def claim_due_polls(
    conn: Connection, now: datetime, *, owner: str, limit: int, lease: timedelta
) -> list[Batch]:
    """Submitted batches whose next poll is due, claimed for `owner`."""
    eligible = [batches.c.state == BatchState.SUBMITTED, batches.c.next_poll_at <= now]
    return _claim(
        conn,
        now,
        owner=owner,
        limit=limit,
        lease=lease,
        eligible=eligible,
        order_by=batches.c.next_poll_at,
    )


def claim_received(
    conn: Connection,
    now: datetime,
    *,
    owner: str,
    limit: int,
    lease: timedelta,
    source: str | None = None,
) -> list[Batch]:
    """Received batches claimed for write-back by `owner`."""
    eligible = [batches.c.state == BatchState.RECEIVED]
    if source is not None:
        eligible.append(batches.c.source == source)
    return _claim(
        conn,
        now,
        owner=owner,
        limit=limit,
        lease=lease,
        eligible=eligible,
        order_by=batches.c.received_at,
    )


def schedule_poll(
    conn: Connection, now: datetime, batch_id: str, *, owner: str, next_poll_at: datetime
) -> bool:
    """Count a poll that found the batch unfinished, set the next one and drop the claim."""
    statement = (
        update(batches)
        .where(
            batches.c.id == batch_id,
            batches.c.state == BatchState.SUBMITTED,
            batches.c.claim_owner == owner,
        )
        .values(
            poll_attempts=batches.c.poll_attempts + 1,
            next_poll_at=next_poll_at,
            claim_owner=None,
            claim_until=None,
            updated_at=now,
        )
    )
    return conn.execute(statement).rowcount == 1


def claim_owners(conn: Connection) -> list[str]:
    """Every owner currently named on a batch claim (live or lapsed), sorted."""
    query = select(batches.c.claim_owner).where(batches.c.claim_owner.is_not(None)).distinct()
    return sorted(conn.execute(query).scalars())


def release_claims(conn: Connection, now: datetime, owner: str) -> int:
    """Drop every claim `owner` holds (its process is known dead); how many were dropped."""
    statement = (
        update(batches)
        .where(batches.c.claim_owner == owner)
        .values(claim_owner=None, claim_until=None, updated_at=now)
    )
    return int(conn.execute(statement).rowcount)
