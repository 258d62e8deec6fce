"""Collecting and handing out work: results from webhooks or polls, and claims on batches.

A claim (`claim_owner`, `claim_until`) lets one replica poll or write back a batch while the
others skip it; it lapses by itself if that replica dies. Candidates are selected with
`FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite serialises writers with `BEGIN IMMEDIATE`) and
each claim is still a conditional UPDATE.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, or_, select, update

from crm_sync.store.records import RECEIVED, SUBMITTED, Batch
from crm_sync.store.rows import load_batches
from crm_sync.store.schema import batches, webhook_events

STORED = "stored"
DUPLICATE = "duplicate"
UNKNOWN = "unknown"


def store_result(
    conn: Connection,
    now: datetime,
    enrichment_id: str,
    raw_body: str,
    status: str,
    *,
    source_kind: str,
    credits_spent: int | None,
) -> str:
    """submitted -> received with the raw result: "stored", "duplicate" or "unknown"."""
    values: dict[str, Any] = {
        "state": RECEIVED,
        "raw_result": raw_body,
        "result_status": status,
        "result_source": source_kind,
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
        .where(batches.c.enrichment_id == enrichment_id, batches.c.state == SUBMITTED)
        .values(**values)
    )
    if conn.execute(statement).rowcount == 1:
        outcome = STORED
    else:
        known = conn.execute(select(batches.c.id).where(batches.c.enrichment_id == enrichment_id))
        outcome = DUPLICATE if known.first() is not None else UNKNOWN
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
    eligible = [batches.c.state == SUBMITTED, batches.c.next_poll_at <= now]
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
    source: str | None,
) -> list[Batch]:
    """Received batches claimed for write-back by `owner`."""
    eligible = [batches.c.state == RECEIVED]
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
            batches.c.state == SUBMITTED,
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
