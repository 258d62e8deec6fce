"""The Store's methods for results at the edges: kept early results and unreadable results.

A mixin so `store.py` stays one idea per screen; every method is still one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from crm_sync.store import collecting, transitions
from crm_sync.store.records import EarlyResult


class ResultMethods:
    """Early results (a webhook that beat the POST's answer) and bounded unreadable results."""

    def _write(self, work: Callable[[Connection, datetime], Any]) -> Any:
        raise NotImplementedError

    def _read(self, work: Callable[[Connection, datetime], Any]) -> Any:
        raise NotImplementedError

    def kept_result_count(self) -> int:
        """How many kept results no batch has claimed yet (cheap: no bodies read)."""
        return int(self._read(collecting.count_early))

    def attach_known_early_results(self) -> list[tuple[str, str]]:
        """Hand kept results to the batches that now carry their ids: [(id, outcome)].

        One read when there is nothing to do; the write transaction only when there is.
        """
        known: list[str] = self._read(collecting.known_early_ids)
        if not known:
            return []

        def attach(conn: Connection, now: datetime) -> list[tuple[str, str]]:
            done = [(i, collecting.attach_early(conn, now, i)) for i in known]
            return [(i, outcome) for i, outcome in done if outcome is not None]

        result: list[tuple[str, str]] = self._write(attach)
        return result

    def attach_early_result(self, enrichment_id: str) -> str | None:
        """Hand the result kept for `enrichment_id` to its batch (see collecting.attach_early)."""
        result: str | None = self._write(
            lambda c, now: collecting.attach_early(c, now, enrichment_id)
        )
        return result

    def early_results(self, *, attached: bool | None = False) -> list[EarlyResult]:
        """Kept results, oldest first: not yet attached to a batch by default."""
        result: list[EarlyResult] = self._read(
            lambda c, _now: collecting.load_early(c, attached=attached)
        )
        return result

    def prune_early_results(self, older_than: timedelta) -> list[str]:
        """Forget kept results older than `older_than`; the enrichment ids forgotten."""
        result: list[str] = self._write(lambda c, now: collecting.prune_early(c, now, older_than))
        return result

    def record_read_failure(
        self, batch_id: str, *, owner: str, error: str, next_poll_at: datetime
    ) -> int | None:
        """Count an unreadable result and schedule the next poll; the count (None: not ours)."""
        result: int | None = self._write(
            lambda c, now: collecting.record_read_failure(
                c, now, batch_id, owner=owner, error=error, next_poll_at=next_poll_at
            )
        )
        return result

    def mark_unreadable(self, batch_id: str, error: str) -> bool:
        """submitted -> failed after too many unreadable results; contacts `malformed`."""
        return bool(
            self._write(lambda c, now: transitions.mark_unreadable(c, now, batch_id, error))
        )
