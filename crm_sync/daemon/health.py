"""Is the daemon alive and ready? Answers that stay fast when the database or a cycle hangs.

`CycleHealth` backs `/healthz`: the daemon is unhealthy when `schedule.health_missed_cycles`
scheduled cycles have come and gone with no cycle starting, finishing or making progress (a
hung cycle, a dead scheduler), so the orchestrator restarts it; every step is checkpointed in
the store. A long cycle that keeps scanning, submitting or writing (`ActivityProgress`) stays
healthy: restarting it would only start it over.
`StorePing` backs `/readyz`: the store's ping runs in a thread of its own (`SingleFlight`), and
an answer later than the deadline counts as "not ready" instead of hanging the probe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from crm_sync.bounded import SingleFlight, Unanswered
from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.outputs.metrics import PREFIX
from crm_sync.pipeline.context import Progress

_TICK = timedelta(microseconds=1)


class CycleHealth:
    """When cycles started and finished, judged against the schedule's own fire times."""

    def __init__(
        self,
        trigger: Callable[[], BaseTrigger | None],
        missed_cycles: int,
        *,
        slack_seconds: float = 5.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._trigger = trigger
        self._missed = missed_cycles
        self._slack = timedelta(seconds=slack_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        # The daemon's start counts as activity: its first cycle is due now.
        self.since = clock.now()
        self.last_started: datetime | None = None
        self.last_finished: datetime | None = None
        self.last_progress: datetime | None = None

    def cycle_started(self) -> None:
        with self._lock:
            self.last_started = self._clock.now()

    def cycle_finished(self) -> None:
        with self._lock:
            self.last_finished = self._clock.now()

    def progressed(self) -> None:
        """A running cycle scanned, submitted or wrote something."""
        with self._lock:
            self.last_progress = self._clock.now()

    def seconds_since_last_cycle(self) -> float:
        """Since the last cycle finished (since the start when none has yet)."""
        with self._lock:
            last = self.last_finished or self.since
        return max((self._clock.now() - last).total_seconds(), 0.0)

    def deadline(self) -> datetime | None:
        """The time by which a cycle must start or finish; None when the schedule has no end."""
        with self._lock:
            moments = (self.since, self.last_started, self.last_finished, self.last_progress)
            last = max(t for t in moments if t)
        trigger = self._trigger()
        if trigger is None:
            return None
        fire: datetime | None = trigger.get_next_fire_time(None, last)
        for _ in range(self._missed - 1):
            if fire is None:
                return None
            fire = trigger.get_next_fire_time(fire, fire + _TICK)
        return None if fire is None else fire + self._slack

    def check(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details) for `/healthz`."""
        deadline = self.deadline()
        healthy = deadline is None or self._clock.now() <= deadline
        details: dict[str, Any] = {
            "healthy": healthy,
            "last_cycle_started": _iso(self.last_started),
            "last_cycle_finished": _iso(self.last_finished),
            "last_progress": _iso(self.last_progress),
            "deadline": _iso(deadline),
        }
        return healthy, details


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class ActivityProgress:
    """A `Progress` that tells CycleHealth about every step, then passes it on."""

    def __init__(self, inner: Progress, health: CycleHealth) -> None:
        self._inner = inner
        self._health = health

    def advance(self, source: str, stage: str, n: int) -> None:
        self._health.progressed()
        self._inner.advance(source, stage, n)


class CycleCollector(Collector):
    """`crm_sync_seconds_since_last_cycle`, computed at scrape time."""

    def __init__(self, health: CycleHealth) -> None:
        self._health = health

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            f"{PREFIX}_seconds_since_last_cycle",
            "Seconds since the daemon's last cycle finished (since its start when none has)",
        )
        family.add_metric([], self._health.seconds_since_last_cycle())
        yield family


class StorePing:
    """The store's ping with a deadline; at most one ping thread is ever stuck at a time."""

    def __init__(self, ping: Callable[[], bool], timeout_seconds: float) -> None:
        self._flight = SingleFlight(ping, timeout_seconds, "store-ping")

    async def check(self) -> bool:
        """True when the store answered within the deadline."""
        try:
            return bool(await self._flight.aresult())
        except Unanswered:
            return False
