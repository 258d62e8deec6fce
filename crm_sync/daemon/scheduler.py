"""When the daemon works: APScheduler 3.x jobs for the cycle and for the polling fallback.

The scheduler only decides *when*; the jobs are plain callables given by the service. Coalescing
is on, one instance of a job at a time, and a missed or skipped run is logged and counted.
Triggers are injectable so tests fire every fraction of a second instead of every 15 minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.config_service import ScheduleConfig
from crm_sync.logs import get_logger
from crm_sync.outputs.metrics import Metrics

DEFAULT_INTERVAL_MINUTES = 15.0
CYCLE_JOB = "cycle"
POLL_JOB = "collect"


def _log() -> Any:
    """Bound at call time: a module-level logger would miss `configure_logging`."""
    return get_logger(component="daemon.scheduler")


def cycle_trigger(schedule: ScheduleConfig) -> BaseTrigger:
    """The cron trigger when `cron` is set, else the interval (15 minutes when neither is)."""
    if schedule.cron:
        return CronTrigger.from_crontab(schedule.cron, timezone=UTC)
    minutes = schedule.interval_minutes or DEFAULT_INTERVAL_MINUTES
    return IntervalTrigger(minutes=minutes, timezone=UTC)


def poll_trigger(schedule: ScheduleConfig) -> BaseTrigger:
    return IntervalTrigger(seconds=schedule.poll_interval_seconds, timezone=UTC)


class Scheduler:
    """Two jobs on a BackgroundScheduler: the cycle (first run at start) and the poll."""

    def __init__(
        self,
        schedule: ScheduleConfig,
        *,
        cycle: Callable[[], None],
        collect: Callable[[], None],
        metrics: Metrics,
        cycle_trigger_override: BaseTrigger | None = None,
        poll_trigger_override: BaseTrigger | None = None,
        misfire_grace_seconds: int | None = None,
        run_first_cycle_now: bool = True,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._metrics = metrics
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=4)}, timezone=UTC
        )
        grace = misfire_grace_seconds or schedule.misfire_grace_seconds
        common: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": grace}
        first: dict[str, Any] = {"next_run_time": clock.now()} if run_first_cycle_now else {}
        self._scheduler.add_job(
            cycle,
            cycle_trigger_override or cycle_trigger(schedule),
            id=CYCLE_JOB,
            name=CYCLE_JOB,
            **common,
            **first,
        )
        self._scheduler.add_job(
            collect,
            poll_trigger_override or poll_trigger(schedule),
            id=POLL_JOB,
            name=POLL_JOB,
            **common,
        )
        self._scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def cycle_trigger(self) -> BaseTrigger | None:
        """The cycle job's trigger, for judging whether cycles keep coming (`/healthz`)."""
        job = self._scheduler.get_job(CYCLE_JOB)
        return job.trigger if job else None

    def start(self) -> None:
        self._scheduler.start()
        job = self._scheduler.get_job(CYCLE_JOB)
        _log().info("scheduler_started", next_cycle=str(job.next_run_time) if job else None)

    def shutdown(self) -> None:
        """Stop firing; jobs already running are left to the service to wait for."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def _on_event(self, event: JobEvent) -> None:
        kind = "missed" if event.code == EVENT_JOB_MISSED else "skipped"
        self._metrics.observe_scheduler_event(event.job_id, kind)
        when = getattr(event, "scheduled_run_time", None) or getattr(
            event, "scheduled_run_times", None
        )
        _log().warning(
            f"scheduled_run_{kind}",
            job=event.job_id,
            scheduled_at=str(when),
            reason="misfire grace exceeded" if kind == "missed" else "previous run still going",
        )
