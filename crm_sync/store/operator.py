"""The store's queries for operators: run history, abandoned runs, settling in_doubt by hand.

A mixin of `Store`, kept apart so the pipeline's transactions and the operator's views each stay
small; it relies only on `Store._read` and `Store._write` (one transaction per call).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from crm_sync.store import resolving, run_history
from crm_sync.store.run_history import RunSummary


class OperatorQueries:
    """Methods of `Store` used by `status`, `resolve` and the run record."""

    def _write(self, work: Callable[[Connection, datetime], Any]) -> Any:
        raise NotImplementedError

    def _read(self, work: Callable[[Connection, datetime], Any]) -> Any:
        raise NotImplementedError

    def finish_running_run(self, run_id: str, status: str, report: dict[str, Any]) -> bool:
        """Record the end of a run still `running` (False when already settled, abandoned)."""
        return bool(
            self._write(lambda c, now: run_history.finish_running(c, now, run_id, status, report))
        )

    def abandon_dead_runs(self, owner_is_dead: Callable[[str], bool], ttl: timedelta) -> list[str]:
        """Runs left `running` by a dead owner or with an expired run lease -> `abandoned`."""
        result: list[str] = self._write(
            lambda c, now: run_history.abandon_dead_runs(
                c, now, owner_is_dead=owner_is_dead, ttl=ttl
            )
        )
        return result

    def run_history(self, limit: int = 10) -> list[RunSummary]:
        """The newest runs with their charged and still-reserved credits."""
        result: list[RunSummary] = self._read(lambda c, _now: run_history.run_history(c, limit))
        return result

    def spend_by_source_and_day(self, days: int = 14) -> list[tuple[str, date, int, int]]:
        """(source, UTC day, credits charged, credits still reserved), oldest first."""
        result: list[tuple[str, date, int, int]] = self._read(
            lambda c, now: run_history.spend_by_source_and_day(c, now, days)
        )
        return result

    def find_batch_ids(self, prefix: str) -> list[str]:
        """Batch ids starting with `prefix` (at most 5)."""
        result: list[str] = self._read(lambda c, _now: resolving.find_batch_ids(c, prefix))
        return result

    def resolve_sent(self, batch_id: str) -> bool:
        """in_doubt -> released as sent: contacts freed, their cooldown applies."""
        return bool(self._write(lambda c, now: resolving.resolve_sent(c, now, batch_id)))

    def resolve_not_sent(self, batch_id: str) -> bool:
        """in_doubt -> failed as never sent: contacts freed with no cooldown."""
        return bool(self._write(lambda c, now: resolving.resolve_not_sent(c, now, batch_id)))
