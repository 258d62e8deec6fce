"""A process-wide, thread-safe sliding-window limiter for the enrichment API.

The API allows a number of calls per minute (60 by default) and answers 429 beyond it. Every
worker thread of the process shares one limiter per (base URL, key fingerprint), so N threads
together never send more than `calls` requests in any `window` seconds.

Why a slot is held until the answer comes back: the server counts a call when it *arrives*,
which is somewhere between our send and our receive. A limiter that timestamps calls when they
are sent can be fooled by a slow request that arrives late and a fast one that arrives early,
putting `calls + 1` arrivals into one server-side window. Here a slot is reusable only `window`
seconds after the previous call in it *finished*; two calls in one slot therefore reach the
server more than `window` apart, and no window can hold more than `calls` arrivals.

Polls keep a share: while results are being polled (a poll waits now, or one was made within
the last window), `reserved` slots of the window are for calls of kind `poll` only, so a large
backlog of submissions cannot starve the collection of results already paid for: other calls
may then use `calls - reserved`, polls all of them. When nobody polls (results come by webhook),
the share is not kept idle: submissions may use every slot.

A caller may pass a stop flag (`ctx.stopping`): a wait for a slot then ends within
`STOP_CHECK_SECONDS` of the flag being set, with `errors.NotSent` (nothing was sent). The
failpoint `waiting_for_limiter_slot` (crash tests) fires when a caller has to wait.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.errors import NotSent
from crm_sync.failpoints import failpoint
from crm_sync.logs import get_logger

STOP_CHECK_SECONDS = 0.1


def _log() -> Any:
    """Bound per call, not at import: a logger bound at import keeps the processors and level
    in force at that moment and would ignore `configure_logging` run later by the CLI."""
    return get_logger(component="enrichment.ratelimit")


POLL = "poll"
CALL = "call"


class RateLimiter(Protocol):
    """What the client needs from a limiter: a slot held for the duration of one call."""

    window: float

    def slot(
        self, kind: str = CALL, stop: threading.Event | None = None
    ) -> AbstractContextManager[float]:
        """Block until a call of `kind` may start (NotSent if `stop` is set first); hold it."""


def reserved_slots(calls: int, poll_share: float) -> int:
    """Slots a window keeps for polls: the share, rounded, always leaving one for the rest."""
    if poll_share <= 0 or calls < 2:
        return 0
    return min(calls - 1, max(1, round(calls * poll_share)))


class SlidingWindowLimiter:
    """At most `calls` requests in any `window` seconds, counted from each call's end."""

    def __init__(
        self,
        calls: int,
        window: float = 60.0,
        *,
        clock: Clock = SYSTEM_CLOCK,
        reserved: int = 0,
    ) -> None:
        if calls < 1:
            raise ValueError("calls must be at least 1")
        if not 0 <= reserved < calls:
            raise ValueError("reserved must be at least 0 and below calls")
        if window <= 0:
            raise ValueError("window must be positive")
        self.calls = calls
        self.window = window
        self.reserved = reserved  # slots of each window only polls may take
        self._clock = clock
        self._lock = threading.Lock()
        self._wakers: set[threading.Event] = set()  # one per waiting caller, set by a release
        self._finished: deque[float] = deque()  # end times of calls still inside the window
        self._in_flight = 0
        self._polls_waiting = 0
        self._last_poll: float | None = None  # when a poll last asked for a slot
        self.waited = 0.0  # total seconds callers spent blocked, for stats and benchmarks

    def __repr__(self) -> str:
        return f"SlidingWindowLimiter(calls={self.calls}, window={self.window})"

    def _prune(self, now: float) -> None:
        while self._finished and self._finished[0] + self.window <= now:
            self._finished.popleft()

    def _wait_needed(self, now: float, kind: str = CALL) -> float | None:
        """Seconds until a slot frees up (None: only a release can free one); 0: free now."""
        self._prune(now)
        limit = self.calls
        if kind != POLL and self._polling(now):
            limit -= self.reserved
        used = self._in_flight + len(self._finished)
        if used < limit:
            return 0.0
        must_expire = used - limit  # index of the finished call whose expiry makes room
        if must_expire < len(self._finished):
            return self._finished[must_expire] + self.window - now
        return None

    def _polling(self, now: float) -> bool:
        """Polls are going on: one waits for a slot, or one asked within the last window."""
        recent = self._last_poll is not None and now - self._last_poll < self.window
        return self._polls_waiting > 0 or recent

    def acquire(self, kind: str = CALL, stop: threading.Event | None = None) -> float:
        """Block until a call of `kind` may start; return the seconds spent waiting.

        Raises NotSent when `stop` is set before a slot is free (checked at least every
        STOP_CHECK_SECONDS while waiting).
        """
        start = self._clock.monotonic()
        if kind == POLL:
            with self._lock:
                self._polls_waiting += 1
                self._last_poll = start
        try:
            return self._acquire(kind, start, stop)
        finally:
            if kind == POLL:
                with self._lock:
                    self._polls_waiting -= 1

    def _acquire(self, kind: str, start: float, stop: threading.Event | None) -> float:
        waiting = False
        while True:
            if stop is not None and stop.is_set():
                raise NotSent("stop requested while waiting for a rate-limiter slot")
            with self._lock:
                wait = self._wait_needed(self._clock.monotonic(), kind)
                if wait == 0.0:
                    self._in_flight += 1
                    waited = self._clock.monotonic() - start
                    self.waited += waited
                    return waited
                if not waiting:
                    waiting = True
                    failpoint("waiting_for_limiter_slot")
                if wait is None:  # only a release frees a slot; look again after a while
                    wait = self.window / self.calls
                if stop is not None:
                    wait = min(wait, STOP_CHECK_SECONDS)
                woken = threading.Event()
                self._wakers.add(woken)
            # Sleep outside the lock, so other threads can release meanwhile; a release
            # ends the sleep early (the real clock's sleep wakes when its event is set).
            try:
                self._clock.sleep(wait, woken)
            finally:
                with self._lock:
                    self._wakers.discard(woken)

    def release(self) -> None:
        """The call that held a slot has finished (answer, error or timeout)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._finished.append(self._clock.monotonic())
            for woken in self._wakers:
                woken.set()

    @contextmanager
    def slot(self, kind: str = CALL, stop: threading.Event | None = None) -> Iterator[float]:
        """`with limiter.slot(): send()`: yields the seconds waited."""
        waited = self.acquire(kind, stop)
        try:
            yield waited
        finally:
            self.release()


_registry: dict[tuple[str, str], SlidingWindowLimiter] = {}
_registry_lock = threading.Lock()


def key_fingerprint(api_key: str) -> str:
    """A short, non-reversible name for a key, safe to use as a dict key or in a log line."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def limiter_for(
    base_url: str,
    api_key: str,
    calls_per_minute: int,
    *,
    window: float = 60.0,
    poll_share: float = 0.0,
    clock: Clock = SYSTEM_CLOCK,
) -> SlidingWindowLimiter:
    """The limiter shared by every client of this process that talks to (base_url, api_key).

    The first caller fixes the limit; a later caller asking for another one gets the existing
    limiter (and a warning), because two limits for one account would defeat the purpose.
    """
    key = (base_url.rstrip("/"), key_fingerprint(api_key))
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            limiter = _registry[key] = SlidingWindowLimiter(
                calls_per_minute,
                window,
                clock=clock,
                reserved=reserved_slots(calls_per_minute, poll_share),
            )
        elif (limiter.calls, limiter.window) != (calls_per_minute, window):
            _log().warning(
                "enrichment.ratelimit.mismatch",
                base_url=key[0],
                kept=limiter.calls,
                asked=calls_per_minute,
            )
        return limiter


def reset_registry() -> None:
    """Forget every shared limiter (tests, or a process that reloads its config)."""
    with _registry_lock:
        _registry.clear()
