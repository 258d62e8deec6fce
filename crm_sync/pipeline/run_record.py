"""A run's row in the store, from `running` to how it ended, with a heartbeat in between.

Entering records the run `running` (after marking `abandoned` the runs that dead processes left
behind) and starts a heartbeat that renews the lease `run:<id>`; `finish()` records the end
once, only if the run is still `running`. A run whose process dies without finishing is found
by the next run or `status`: same-host owners by their pid, others by the lease's expiry.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from types import TracebackType
from typing import Any

from crm_sync.exit_codes import EXIT_INTERRUPTED, most_severe
from crm_sync.logs import get_logger
from crm_sync.pipeline.context import Context, owner_is_dead
from crm_sync.pipeline.lease import LeaseHeartbeat
from crm_sync.pipeline.report import RunReport
from crm_sync.store.run_history import run_lease_name

RUN_LEASE_TTL = timedelta(seconds=60)
_active: dict[str, RunRecord] = {}
_active_lock = threading.Lock()


def active_run(owner: str) -> RunRecord | None:
    """The run this process (`owner`) is in, for a watchdog that must record its end."""
    with _active_lock:
        return _active.get(owner)


def abandon_dead_runs(store: Any) -> list[str]:
    """Mark `abandoned` the runs left `running` by processes that are gone; log each one."""
    abandoned: list[str] = store.abandon_dead_runs(owner_is_dead, RUN_LEASE_TTL)
    for run_id in abandoned:
        get_logger().warning("run_abandoned", abandoned_run=run_id)
    return abandoned


class RunRecord:
    """`with RunRecord(ctx, run_id) as record: ... record.finish(status, report)`."""

    def __init__(self, ctx: Context, run_id: str) -> None:
        self._ctx = ctx
        self.run_id = run_id
        self._lease = run_lease_name(run_id)
        self._heartbeat: LeaseHeartbeat | None = None
        self._finish_lock = threading.Lock()
        self.finished = False
        self.report: RunReport | None = None  # set by the cycle, for a report after a crash

    def __enter__(self) -> RunRecord:
        store = self._ctx.store
        abandon_dead_runs(store)
        store.start_run(self.run_id, self._ctx.owner)
        store.acquire_lease(self._lease, self._ctx.owner, RUN_LEASE_TTL)
        self._heartbeat = LeaseHeartbeat(store, self._lease, self._ctx.owner, RUN_LEASE_TTL)
        self._heartbeat.__enter__()
        with _active_lock:
            _active[self._ctx.owner] = self
        return self

    def finish(self, status: str, report: dict[str, Any]) -> bool:
        """Record how the run ended (once); False when it was already settled by someone else."""
        with self._finish_lock:
            if self.finished:
                return False
            self.finished = True
        done: bool = self._ctx.store.finish_running_run(self.run_id, status, report)
        return done

    def interrupt(self, reason: str) -> bool:
        """Record the run `interrupted` from outside the cycle (the grace ran out)."""
        report = self.report
        if report is not None:
            report.interrupted = True
            report.reason = reason
            report.exit_code = most_severe((report.exit_code, EXIT_INTERRUPTED))
            report.finished_at = self._ctx.clock.now()
        data = report.as_dict() if report is not None else {"run_id": self.run_id}
        data.setdefault("reason", reason)
        return self.finish("interrupted", data)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with _active_lock:
            _active.pop(self._ctx.owner, None)
        if self._heartbeat is not None:
            self._heartbeat.__exit__(exc_type, exc, tb)
        try:
            self._ctx.store.release_lease(self._lease, self._ctx.owner)
        except Exception as error:  # the store went away; the lease simply expires
            get_logger().warning("run_lease_not_released", error=type(error).__name__)
