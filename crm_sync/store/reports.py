"""Budgets, runs, leases and lookups: the bookkeeping around batches."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, or_, select, update

from crm_sync.store.records import Batch, RunRow
from crm_sync.store.rows import load_batches, run_from_row
from crm_sync.store.run_history import RUNNING
from crm_sync.store.schema import batches, json_dumps, leases, ledger, runs, scan_cursors, upsert
from crm_sync.store.states import IN_FLIGHT_STATES, UNCOUNTED_STATES, BatchState

_COST = func.coalesce(batches.c.credits_spent, batches.c.reserved_credits)


def credits_committed(conn: Connection, source: str, since: datetime) -> int:
    """Credits spent (or, until known, reserved) by batches of `source` created since `since`."""
    total = conn.execute(
        select(func.coalesce(func.sum(_COST), 0)).where(
            batches.c.source == source,
            batches.c.created_at >= since,
            batches.c.state.not_in(UNCOUNTED_STATES),
        )
    ).scalar()
    return int(total or 0)


def batches_by_state(conn: Connection) -> dict[str, int]:
    """How many batches are in each state (states with none are left out)."""
    rows = conn.execute(select(batches.c.state, func.count()).group_by(batches.c.state))
    return {state: int(count) for state, count in rows}


def credits_by_source_and_day(
    conn: Connection, now: datetime, days: int = 14
) -> list[tuple[str, date, int]]:
    """(source, UTC day, credits) for the last `days` days including today, oldest first."""
    first_day = now.date() - timedelta(days=max(days, 1) - 1)
    since = datetime.combine(first_day, time(), tzinfo=now.tzinfo)
    rows = conn.execute(
        select(batches.c.source, batches.c.created_at, _COST).where(
            batches.c.created_at >= since, batches.c.state.not_in(UNCOUNTED_STATES)
        )
    )
    totals: dict[tuple[str, date], int] = defaultdict(int)
    for source, created_at, cost in rows:
        totals[(source, created_at.date())] += int(cost or 0)
    return sorted(
        ((source, day, credits) for (source, day), credits in totals.items()),
        key=lambda item: (item[1], item[0]),
    )


def start_run(conn: Connection, now: datetime, run_id: str, owner: str) -> None:
    """Record that a run began."""
    conn.execute(runs.insert().values(id=run_id, owner=owner, started_at=now, status=RUNNING))


def finish_run(
    conn: Connection, now: datetime, run_id: str, status: str, report: dict[str, Any]
) -> None:
    """Record how a run ended and its report."""
    conn.execute(
        update(runs)
        .where(runs.c.id == run_id)
        .values(finished_at=now, status=status, report=json_dumps(report))
    )


def recent_runs(conn: Connection, limit: int = 10) -> list[RunRow]:
    """The newest runs first."""
    query = select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(limit)
    return [run_from_row(row) for row in conn.execute(query)]


def acquire_lease(conn: Connection, now: datetime, name: str, owner: str, ttl: timedelta) -> bool:
    """Take the lease if free, expired or already ours (then renew it); True if we hold it."""
    insert = upsert(conn, leases).values(name=name, owner=owner, expires_at=now + ttl)
    statement = insert.on_conflict_do_update(
        index_elements=[leases.c.name],
        set_={"owner": insert.excluded.owner, "expires_at": insert.excluded.expires_at},
        where=or_(leases.c.owner == insert.excluded.owner, leases.c.expires_at <= now),
    ).returning(leases.c.name)
    return conn.execute(statement).first() is not None


def release_lease(conn: Connection, _now: datetime, name: str, owner: str) -> None:
    """Give the lease up if we hold it."""
    conn.execute(delete(leases).where(leases.c.name == name, leases.c.owner == owner))


def lease_holder(conn: Connection, now: datetime, name: str) -> str | None:
    """The owner of the live lease `name`, or None when it is free or expired."""
    query = select(leases.c.owner).where(leases.c.name == name, leases.c.expires_at > now)
    holder: str | None = conn.execute(query).scalar()
    return holder


def steal_lease(
    conn: Connection, now: datetime, name: str, *, holder: str, owner: str, ttl: timedelta
) -> bool:
    """Take the lease from `holder` (known dead); False if someone else got it first."""
    statement = (
        update(leases)
        .where(leases.c.name == name, leases.c.owner == holder)
        .values(owner=owner, expires_at=now + ttl)
    )
    return conn.execute(statement).rowcount == 1


def credits_in_flight(conn: Connection) -> int:
    """Credits reserved by batches whose spend is not known yet (all sources)."""
    total = conn.execute(
        select(func.coalesce(func.sum(batches.c.reserved_credits), 0)).where(
            batches.c.state.in_(IN_FLIGHT_STATES)
        )
    ).scalar()
    return int(total or 0)


def scan_cursor(conn: Connection, source: str) -> str | None:
    """The record id after which the source's next bounded scan starts (None: the beginning)."""
    query = select(scan_cursors.c.after_id).where(scan_cursors.c.source == source)
    after: str | None = conn.execute(query).scalar()
    return after


def set_scan_cursor(conn: Connection, now: datetime, source: str, after_id: str | None) -> None:
    """Remember where the scan stopped; None starts the next one from the beginning."""
    insert = upsert(conn, scan_cursors).values(source=source, after_id=after_id, updated_at=now)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[scan_cursors.c.source],
            set_={"after_id": insert.excluded.after_id, "updated_at": insert.excluded.updated_at},
        )
    )


def outcomes_by_source(conn: Connection) -> dict[str, dict[str, int]]:
    """Ledger contacts per source and last outcome name (`rejected: why` counts as `rejected`)."""
    in_flight = ledger.c.in_flight_batch_id.is_not(None).label("in_flight")
    query = select(ledger.c.source, ledger.c.outcome, in_flight, func.count()).group_by(
        ledger.c.source, ledger.c.outcome, in_flight
    )
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for source, outcome, flying, count in conn.execute(query):
        name = "in_flight" if flying else (outcome or "none").split(":", 1)[0].strip()
        totals[source][name] += int(count)
    return {source: dict(sorted(names.items())) for source, names in sorted(totals.items())}


def _in_state(
    conn: Connection, state: BatchState, source: str | None, *, with_contacts: bool = True
) -> list[Batch]:
    where = batches.c.state == state
    if source is not None:
        where = where & (batches.c.source == source)
    return load_batches(conn, where, with_contacts=with_contacts)


def planned_batches(conn: Connection, source: str | None = None) -> list[Batch]:
    """Batches planned but not yet sending (left by a stopped run), with contacts."""
    return _in_state(conn, BatchState.PLANNED, source)


def submitted_batches(conn: Connection, source: str | None = None) -> list[Batch]:
    """Batches waiting for their result (without contacts), oldest first."""
    return _in_state(conn, BatchState.SUBMITTED, source, with_contacts=False)


def in_doubt_batches(conn: Connection) -> list[Batch]:
    """Batches that may have been paid for without an id, with contacts, oldest first."""
    return _in_state(conn, BatchState.IN_DOUBT, None)


def get_batch(conn: Connection, batch_id: str) -> Batch | None:
    """One batch with its contacts."""
    found = load_batches(conn, batches.c.id == batch_id)
    return found[0] if found else None


def batch_by_enrichment_id(conn: Connection, enrichment_id: str) -> Batch | None:
    """The batch the API knows as `enrichment_id`, with its contacts."""
    found = load_batches(conn, batches.c.enrichment_id == enrichment_id)
    return found[0] if found else None
