"""What happens once a run has its report: health metrics, the Pushgateway, notifications.

Shared by `--once` (which pushes, since nothing scrapes a CronJob's pod) and the daemon (which
is scraped). None of it may fail the run: the store's history, the push and the notifications
each log their own failure and carry on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from crm_sync.logs import get_logger
from crm_sync.outputs.history import HISTORY_RUNS, RunHealth, summarise
from crm_sync.outputs.notify import Notice, Notifier, failure_notice, notices_for
from crm_sync.outputs.notify_repeats import is_due
from crm_sync.outputs.pushgateway import push_run

if TYPE_CHECKING:
    from crm_sync.config import Config
    from crm_sync.outputs.metrics import Metrics
    from crm_sync.pipeline.context import Context
    from crm_sync.pipeline.report import RunReport
    from crm_sync.store.records import RunRow

T = TypeVar("T")


def _tolerant(what: str, read: Callable[[], T]) -> T | None:
    """`read()`, or None with a warning: nothing after a run's report may fail the run."""
    try:
        return read()
    except Exception as exc:  # the store may be what failed the run
        get_logger(component="after_run").warning(f"{what}_unavailable", error=type(exc).__name__)
        return None


def after_run(
    ctx: Context,
    report: RunReport,
    seconds: float,
    *,
    notifier: Notifier,
    metrics: Metrics | None = None,
    push: bool = False,
    config_path: str | None = None,
    failure: str | None = None,
) -> None:
    """Feed the run's outcome to the daemon's metrics or the Pushgateway, then notify."""
    if report.dry_run:  # nothing was sent or written: nothing to tell
        return
    runs = _tolerant("run_history", lambda: ctx.store.recent_runs(HISTORY_RUNS))
    health: RunHealth | None = summarise(runs) if runs is not None else None
    if metrics is not None and health is not None:
        _tolerant("health_metrics", lambda: metrics.observe_health(health))
    if push:
        batches: Any = _tolerant("batch_states", ctx.store.batches_by_state)
        push_run(ctx.config, report, seconds, health=health, batches=batches)
    _tolerant("notifications", lambda: notifier.send(_due(ctx, report, runs, config_path, failure)))


def _due(
    ctx: Context,
    report: RunReport,
    runs: list[RunRow] | None,
    config_path: str | None,
    failure: str | None,
) -> list[Notice]:
    """This run's notices, less the per-source ones already told for a lasting condition."""
    notices = notices_for(report, config_path, failure=failure)
    if runs is None:
        return notices
    now = report.finished_at or ctx.clock.now()
    repeat = ctx.config.notify.repeat_hours
    return [
        n
        for n in notices
        if n.source is None
        or is_due(n.event, n.source, runs, this_run=report.run_id, now=now, repeat_hours=repeat)
    ]


def after_failure(config: Config, reason: str, *, config_path: str | None = None) -> None:
    """A run that ended without a report: tell whoever listens for `failed`."""
    Notifier(config.notify).send([failure_notice(reason, config_path)])
