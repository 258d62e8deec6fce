"""The one fake clock of the suite: implements `crm_sync.clock.Clock`, moves only when told."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """Wall and monotonic time that move together, only by `advance` or `sleep`; sleeps recorded."""

    def __init__(self, start: datetime = START, monotonic: float = 1000.0) -> None:
        self.wall = start
        self.mono = monotonic
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Record the wait and jump over it; True when `stop` is already set."""
        self.sleeps.append(seconds)
        self.advance(seconds=max(0.0, seconds))
        return stop is not None and stop.is_set()

    def advance(self, **delta: float) -> datetime:
        """Move both clocks forward by `timedelta(**delta)`; returns the new wall time."""
        step = timedelta(**delta)
        self.wall += step
        self.mono += step.total_seconds()
        return self.wall
