"""Runs as an operator reads them: no run left `running` by a dead process, and what each cost.

A run holds a lease `run:<id>` renewed by a heartbeat while its process lives. A `running` run
whose owner is known dead on this host, or whose lease has expired (any host), is marked
`abandoned`: its process was killed (SIGKILL, OOM, node lost) before it could record its end.
Credits are split: `charged` is what the API reported spent for the run's batches, `reserved`
the worst case still held by its batches whose cost is not known yet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, update

from crm_sync.store.schema import batches, json_dumps, json_loads, leases, runs
from crm_sync.store.states import IN_FLIGHT_STATES

RUNNING = "running"
ABANDONED = "abandoned"
ABANDONED_REASON = "its process ended without recording the end of the run (killed or lost)"


def run_lease_name(run_id: str) -> str:
    """The lease a live run renews; its expiry tells other hosts the run is gone."""
    return f"run:{run_id}"


@dataclass(frozen=True)
class RunSummary:
    """One line of `status`'s history."""

    id: str
    owner: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    report: dict[str, Any] | None
    charged_credits: int
    reserved_credits: int

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 1)


def finish_running(
    conn: Connection, now: datetime, run_id: str, status: str, report: dict[str, Any]
) -> bool:
    """Record the end of a run that is still `running`; False when it was already settled."""
    statement = (
        update(runs)
        .where(runs.c.id == run_id, runs.c.status == RUNNING)
        .values(finished_at=now, status=status, report=json_dumps(report))
    )
    return conn.execute(statement).rowcount == 1


def abandon_dead_runs(
    conn: Connection, now: datetime, owner_is_dead: Callable[[str], bool], ttl: timedelta
) -> list[str]:
    """Mark `abandoned` every running run whose owner is dead or whose lease expired."""
    live = {
        name
        for (name,) in conn.execute(
            select(leases.c.name).where(leases.c.name.like("run:%"), leases.c.expires_at > now)
        )
    }
    abandoned = []
    rows = conn.execute(
        select(runs.c.id, runs.c.owner, runs.c.started_at, runs.c.report).where(
            runs.c.status == RUNNING
        )
    ).all()
    for run_id, owner, started_at, raw in rows:
        lease_gone = run_lease_name(run_id) not in live and started_at <= now - ttl
        if not (owner_is_dead(owner) or lease_gone):
            continue
        report = json_loads(raw, None) or {"run_id": run_id}
        report["reason"] = ABANDONED_REASON
        statement = (
            update(runs)
            .where(runs.c.id == run_id, runs.c.status == RUNNING)
            .values(status=ABANDONED, finished_at=now, report=json_dumps(report))
        )
        if conn.execute(statement).rowcount == 1:
            abandoned.append(run_id)
    return abandoned


def run_history(conn: Connection, limit: int = 10) -> list[RunSummary]:
    """The newest runs first, with the credits their batches were charged and still reserve."""
    rows = conn.execute(
        select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(limit)
    ).all()
    ids = [row._mapping["id"] for row in rows]
    charged: dict[str, int] = defaultdict(int)
    reserved: dict[str, int] = defaultdict(int)
    if ids:
        spent = select(batches.c.run_id, func.coalesce(func.sum(batches.c.credits_spent), 0))
        for run_id, total in conn.execute(
            spent.where(batches.c.run_id.in_(ids)).group_by(batches.c.run_id)
        ):
            charged[run_id] = int(total or 0)
        held = select(batches.c.run_id, func.coalesce(func.sum(batches.c.reserved_credits), 0))
        for run_id, total in conn.execute(
            held.where(batches.c.run_id.in_(ids), batches.c.state.in_(IN_FLIGHT_STATES)).group_by(
                batches.c.run_id
            )
        ):
            reserved[run_id] = int(total or 0)
    return [
        RunSummary(
            id=m["id"],
            owner=m["owner"],
            started_at=m["started_at"],
            finished_at=m["finished_at"],
            status=m["status"],
            report=json_loads(m["report"], None),
            charged_credits=charged[m["id"]],
            reserved_credits=reserved[m["id"]],
        )
        for m in (row._mapping for row in rows)
    ]


def spend_by_source_and_day(
    conn: Connection, now: datetime, days: int = 14
) -> list[tuple[str, date, int, int]]:
    """(source, UTC day, credits charged, credits still reserved), oldest day first."""
    first_day = now.date() - timedelta(days=max(days, 1) - 1)
    since = datetime.combine(first_day, time(), tzinfo=now.tzinfo)
    rows = conn.execute(
        select(
            batches.c.source,
            batches.c.created_at,
            batches.c.state,
            batches.c.credits_spent,
            batches.c.reserved_credits,
        ).where(batches.c.created_at >= since)
    )
    totals: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
    for source, created_at, state, spent, held in rows:
        entry = totals[(source, created_at.date())]
        entry[0] += int(spent or 0)
        if state in IN_FLIGHT_STATES:
            entry[1] += int(held or 0)
    return sorted(
        ((source, day, c, r) for (source, day), (c, r) in totals.items()),
        key=lambda item: (item[1], item[0]),
    )
