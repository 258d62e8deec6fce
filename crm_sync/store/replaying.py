"""Results kept for later: batches held after a field refusal, and claims for `crm-sync replay`.

A batch is *held* when the CRM refused a mapped field (it does not exist, it is read-only): it
stays `received` with its unwritten contacts still in flight (so neither re-asked nor cooled
down), its `error` says why, and its claim is left to lapse, so a later run retries it
without hammering the CRM within one run. `replay` claims held batches at once, and any other
received batch whose claim is free.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from crm_sync.store.records import RECEIVED, Batch
from crm_sync.store.reports import outcomes_by_source
from crm_sync.store.rows import load_batches
from crm_sync.store.schema import batches

HELD_PREFIX = "held: "


def hold_batch(conn: Connection, now: datetime, batch_id: str, owner: str, reason: str) -> bool:
    """Mark the claimed received batch as held for `reason`; True if this owner held the claim."""
    statement = (
        update(batches)
        .where(
            batches.c.id == batch_id,
            batches.c.state == RECEIVED,
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
    source: str | None,
    since: datetime | None,
) -> list[Batch]:
    """Received batches that are held or unclaimed, claimed for `owner`, oldest result first."""
    eligible = [
        batches.c.state == RECEIVED,
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
    conn: Connection, *, source: str | None, since: datetime | None
) -> list[Batch]:
    """What `replay --dry-run` would take, without claiming anything."""
    eligible = [batches.c.state == RECEIVED]
    if source is not None:
        eligible.append(batches.c.source == source)
    if since is not None:
        eligible.append(batches.c.received_at >= since)
    return load_batches(conn, and_(*eligible))


class WriteBackQueries:
    """Methods of `Store` for held results, `replay` and the outcome counts of `status`.

    A mixin, like `OperatorQueries`: it relies only on `Store._read` and `Store._write`.
    """

    def _write(self, work: Callable[[Connection, datetime], Any]) -> Any:
        raise NotImplementedError

    def _read(self, work: Callable[[Connection, datetime], Any]) -> Any:
        raise NotImplementedError

    def hold_batch(self, batch_id: str, *, owner: str, reason: str) -> bool:
        """Keep a claimed received batch unwritten: the CRM refused a mapped field."""
        return bool(self._write(lambda c, now: hold_batch(c, now, batch_id, owner, reason)))

    def claim_for_replay(
        self,
        *,
        owner: str,
        lease: timedelta,
        source: str | None = None,
        since: datetime | None = None,
    ) -> list[Batch]:
        """Received batches (held ones at once, others when unclaimed) claimed for replay."""
        result: list[Batch] = self._write(
            lambda c, now: claim_for_replay(
                c, now, owner=owner, lease=lease, source=source, since=since
            )
        )
        return result

    def replayable_batches(
        self, *, source: str | None = None, since: datetime | None = None
    ) -> list[Batch]:
        """Received batches `replay` would write, unclaimed (for `--dry-run`)."""
        result: list[Batch] = self._read(
            lambda c, _now: replayable_batches(c, source=source, since=since)
        )
        return result

    def outcomes_by_source(self) -> dict[str, dict[str, int]]:
        """Contacts per source by their last outcome name, for `crm-sync status`."""
        result: dict[str, dict[str, int]] = self._read(lambda c, _now: outcomes_by_source(c))
        return result
