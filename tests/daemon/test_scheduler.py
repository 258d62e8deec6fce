"""The scheduler: triggers from config, firing on a short interval, one run at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crm_sync.daemon.scheduler import Scheduler, cycle_trigger
from crm_sync.outputs.metrics import Metrics
from tests.daemon.conftest import make_config

NEVER = IntervalTrigger(hours=24)


class Recorder:
    """A job that records its start times and the most runs it ever saw at once."""

    def __init__(self, hold: float = 0.0) -> None:
        self.hold = hold
        self.starts: list[float] = []
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()
        self.enough = threading.Event()

    def __call__(self) -> None:
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.starts.append(time.monotonic())
            if len(self.starts) >= 3:
                self.enough.set()
        time.sleep(self.hold)
        with self._lock:
            self.running -= 1


def _scheduler(tmp_path: Path, job: Recorder, metrics: Metrics) -> Scheduler:
    config = make_config(tmp_path)
    return Scheduler(
        config.schedule,
        cycle=job,
        collect=lambda: None,
        metrics=metrics,
        cycle_trigger_override=IntervalTrigger(seconds=0.1),
        poll_trigger_override=NEVER,
    )


def test_trigger_from_config(tmp_path: Path) -> None:
    """cron gives a CronTrigger, interval_minutes its interval, neither the 15-minute default."""
    cron = cycle_trigger(make_config(tmp_path, schedule={"cron": "*/5 * * * *"}).schedule)
    assert isinstance(cron, CronTrigger)
    interval = cycle_trigger(make_config(tmp_path, schedule={"interval_minutes": 2}).schedule)
    assert isinstance(interval, IntervalTrigger)
    assert interval.interval.total_seconds() == 120
    default = cycle_trigger(make_config(tmp_path).schedule)
    assert isinstance(default, IntervalTrigger)
    assert default.interval.total_seconds() == 900


def test_first_cycle_runs_at_start(tmp_path: Path, metrics: Metrics) -> None:
    """The first cycle does not wait for its 24-hour interval: it runs when the daemon starts."""
    job = Recorder()
    config = make_config(tmp_path)
    scheduler = Scheduler(
        config.schedule,
        cycle=job,
        collect=lambda: None,
        metrics=metrics,
        cycle_trigger_override=NEVER,
        poll_trigger_override=NEVER,
    )
    scheduler.start()
    try:
        assert _wait_for(lambda: len(job.starts) == 1)
        assert scheduler.running
    finally:
        scheduler.shutdown()
    assert not scheduler.running


def test_fires_on_the_interval_never_early(tmp_path: Path, metrics: Metrics) -> None:
    """With a 0.1 s interval the job fires again and again, and never before its slot."""
    job = Recorder()
    config = make_config(tmp_path)
    started = time.monotonic()  # the trigger's grid starts when it is made
    scheduler = Scheduler(
        config.schedule,
        cycle=job,
        collect=lambda: None,
        metrics=metrics,
        cycle_trigger_override=IntervalTrigger(seconds=0.1),
        poll_trigger_override=NEVER,
        run_first_cycle_now=False,
    )
    scheduler.start()
    try:
        assert job.enough.wait(5)
    finally:
        scheduler.shutdown()
    runs = len(job.starts)
    assert job.starts[-1] - started >= runs * 0.1 - 0.01  # run k is due at start + k * 0.1
    assert job.max_running == 1


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_never_two_cycles_at_once_and_skips_are_counted(tmp_path: Path, metrics: Metrics) -> None:
    """A cycle longer than the interval is never overlapped; the skipped runs are counted."""
    job = Recorder(hold=0.35)
    scheduler = _scheduler(tmp_path, job, metrics)
    scheduler.start()
    try:
        assert job.enough.wait(10)
    finally:
        scheduler.shutdown()
    assert job.max_running == 1
    skipped = metrics.registry.get_sample_value(
        "crm_sync_scheduler_events_total", {"job": "cycle", "event": "skipped"}
    )
    assert skipped is not None
    assert skipped >= 1


def test_misfire_is_counted(tmp_path: Path, metrics: Metrics) -> None:
    """A run found later than the misfire grace is reported as missed, not run silently late."""
    job = Recorder()
    config = make_config(tmp_path)
    scheduler = Scheduler(
        config.schedule,
        cycle=job,
        collect=lambda: None,
        metrics=metrics,
        cycle_trigger_override=DateTrigger(datetime.now(UTC) + timedelta(seconds=0.05)),
        poll_trigger_override=NEVER,
        misfire_grace_seconds=1,
        run_first_cycle_now=False,
    )
    scheduler._scheduler.start(paused=True)  # a paused process (GC, suspended pod) wakes late
    time.sleep(1.2)
    scheduler._scheduler.resume()
    deadline = time.monotonic() + 5
    missed = None
    while missed is None and time.monotonic() < deadline:
        missed = metrics.registry.get_sample_value(
            "crm_sync_scheduler_events_total", {"job": "cycle", "event": "missed"}
        )
        time.sleep(0.02)
    scheduler.shutdown()
    assert missed == 1
    assert job.starts == []
