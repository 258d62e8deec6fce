"""A condition that lasts is told when it starts, then again every `notify.repeat_hours`.

A source over its budget, or failing the same way, would otherwise be told every run (96 times
a day on a 15-minute schedule) and the channel muted. The runs table is the memory, so a
CronJob's new pod knows what earlier pods told: a notice is sent when the previous finished run
did not have the same event for the same source, or when the condition's age crosses another
multiple of `repeat_hours`. Run-level notices and `finished` are always sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_sync.exit_codes import EXIT_CREDITS, EXIT_IN_DOUBT, EXIT_INTERRUPTED, EXIT_OK
from crm_sync.store.records import RunRow

BUDGET_REACHED = "budget reached"  # how submit_source words a source stopped by its budget
NOT_FAILURES = frozenset({EXIT_OK, EXIT_CREDITS, EXIT_IN_DOUBT, EXIT_INTERRUPTED})


def events_of(*, in_doubt: int, exit_code: int | None, status: str, message: str) -> list[str]:
    """The per-source events one source's outcome stands for, in the order they are told."""
    events: list[str] = []
    if in_doubt:
        events.append("in_doubt")
    if exit_code == EXIT_CREDITS:
        events.append("low_balance")
    elif message.startswith(BUDGET_REACHED):
        events.append("budget_reached")
    if status == "failed" or (exit_code is not None and exit_code not in NOT_FAILURES):
        events.append("failed")
    return events


def standing_doubts(report: Mapping[str, Any], source: str) -> int:
    """In-doubt batches of `source` that a stored report saw at its end (the standing alarm)."""
    return sum(1 for b in report.get("in_doubt") or [] if b.get("source") == source)


def stored_events(report: Mapping[str, Any], source: str) -> list[str]:
    """`events_of` for one source of a stored run report (none when the source did not run)."""
    entry = next((s for s in report.get("sources", []) if s.get("name") == source), None)
    standing = standing_doubts(report, source)
    if entry is None:
        return ["in_doubt"] if standing else []
    counts = entry.get("counts") or {}
    code = entry.get("exit_code")
    return events_of(
        in_doubt=int(counts.get("in_doubt") or 0) + standing,
        exit_code=code if isinstance(code, int) else None,
        status=str(entry.get("status") or ""),
        message=str(entry.get("message") or ""),
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_due(
    event: str,
    source: str,
    runs: Iterable[RunRow],
    *,
    this_run: str,
    now: datetime,
    repeat_hours: float,
) -> bool:
    """Whether this run's `event` for `source` is news, or due again (runs newest first)."""
    if repeat_hours <= 0:
        return True
    streak: list[datetime] = []
    for run in runs:
        report = run.report or {}
        if run.id == this_run or run.finished_at is None or report.get("dry_run"):
            continue
        if event not in stored_events(report, source):
            break
        streak.append(_aware(run.finished_at))
    if not streak:
        return True
    start, last = streak[-1], streak[0]
    period = timedelta(hours=repeat_hours)
    return (_aware(now) - start) // period > (last - start) // period
