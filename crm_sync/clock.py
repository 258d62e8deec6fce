"""The one place that reads the time: wall clock, monotonic clock and sleep behind one Protocol.

One `Clock` is built in the wiring and handed to the store, the pipeline, the enrichment client,
the connectors and the scheduler, so cooldowns, per-day budgets, leases and backoff all agree on
what "now" is, and tests drive them with one fake (`tests/support/clock.py`) instead of sleeping.
No other module calls `datetime.now`, `time.time`, `time.monotonic` or `time.sleep`.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    """What callers need from time; a fake implements the same three methods."""

    def now(self) -> datetime:
        """The current UTC time, timezone-aware (stored timestamps, cooldowns, budgets)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (durations, deadlines, rate windows)."""
        ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Wait `seconds`, or less when `stop` is set meanwhile; True when `stop` is set."""
        ...


class SystemClock:
    """The real time; `sleep` wakes as soon as `stop` is set (SIGTERM must not wait a backoff)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is None:
            if seconds > 0:
                time.sleep(seconds)
            return False
        return stop.wait(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


#: The process-wide real clock: the default wherever a clock may be omitted.
SYSTEM_CLOCK: Clock = SystemClock()
