"""What the run history says about health: last success, per source, and failures in a row.

Read from the store's `runs` table (every process's runs, so a restarted daemon or the next
CronJob pod knows when the last success was), and fed to the metrics that alerts read.
A run or a source succeeded when its exit code was 0; runs still `running` are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm_sync.store.records import RunRow

HISTORY_RUNS = 50
# Older reports carried no per-source exit code; their status tells success from failure.
_OK_STATUSES = frozenset({"ok", "skipped"})


@dataclass
class SourceHealth:
    """One source: when it last succeeded, and how many finished runs failed it since."""

    last_success: datetime | None = None
    consecutive_failures: int = 0


@dataclass
class RunHealth:
    """The whole history: the last successful run and each source's health."""

    last_success: datetime | None = None
    sources: dict[str, SourceHealth] = field(default_factory=dict)


def source_succeeded(source: Mapping[str, Any]) -> bool:
    """A source's entry in a stored report ended with exit code 0."""
    code = source.get("exit_code")
    if isinstance(code, int):
        return code == 0
    return source.get("status") in _OK_STATUSES


def summarise(runs: Iterable[RunRow]) -> RunHealth:
    """Fold finished runs (newest first, as `Store.recent_runs` gives them) into RunHealth."""
    health = RunHealth()
    settled: set[str] = set()  # sources whose newest success has been found
    for run in runs:
        report = run.report or {}
        if run.finished_at is None or report.get("dry_run"):
            continue
        if health.last_success is None and report.get("exit_code", 1) == 0:
            health.last_success = run.finished_at
        for source in report.get("sources", []):
            name = source.get("name")
            if not isinstance(name, str) or name in settled:
                continue
            entry = health.sources.setdefault(name, SourceHealth())
            if source_succeeded(source):
                entry.last_success = run.finished_at
                settled.add(name)
            else:
                entry.consecutive_failures += 1
    return health


def read_health(store: Any, limit: int = HISTORY_RUNS) -> RunHealth:
    """The health of the last `limit` runs in `store`."""
    rows: list[RunRow] = store.recent_runs(limit)
    return summarise(rows)
