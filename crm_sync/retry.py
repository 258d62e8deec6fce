"""The one retry policy: capped exponential backoff with full jitter, `Retry-After` honoured.

Every caller that retries (the enrichment client, the HubSpot and Salesforce connectors) runs its
attempts through `RetryPolicy.run` and supplies only its classification of what came back:

    Retry(after=..., give_up=...)   try again (after at least `after` seconds, when the server
                                    said so); when the retries are spent, raise `give_up` or,
                                    without one, return the last result / re-raise the error
    Raise(error)                    stop now and raise `error` (a refusal, bad credentials)
    NeverResend(error)              the request may have been applied: never resend, raise
    None                            accept the result (for an exception: re-raise it)

The wait before attempt n+1 is `uniform(0, min(cap, base * 2**(n-1)))`, raised to the server's
`after` (itself capped at `cap`), and, with `spread_until`, long enough for the remaining
retries to reach that instant. Each wait logs one `retry` event naming the caller.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.logs import get_logger

__all__ = [
    "Decision",
    "NeverResend",
    "Raise",
    "Retry",
    "RetryPolicy",
    "RetryStopped",
    "capped_exponential",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Retry:
    """Try again; `after`: the server's minimum wait; `spread_until`: a monotonic instant the
    remaining retries must reach (a full rate window); `give_up`: raised when retries are spent."""

    after: float | None = None
    spread_until: float | None = None
    give_up: BaseException | None = None


@dataclass(frozen=True)
class Raise:
    """Stop retrying and raise `error` (it says what the caller should do)."""

    error: BaseException


@dataclass(frozen=True)
class NeverResend:
    """The request may have had its effect: raise `error`, and never send it again."""

    error: BaseException


Decision = Retry | Raise | NeverResend | None


class RetryStopped(Exception):
    """The stop event was set while waiting between attempts; nothing more was sent."""


@dataclass
class RetryPolicy:
    """How one caller retries: `name` goes into the `retry` log event as `caller`.

    `hide_cause`: errors raised on giving up (`Raise`, `NeverResend`, `give_up`) do not chain
    the attempt's own exception, for callers whose errors must carry nothing but what they say
    (a transport error may hold a request and its credentials).
    """

    name: str
    max_retries: int = 5
    base: float = 0.5
    cap: float = 30.0
    clock: Clock = SYSTEM_CLOCK
    rng: random.Random | None = None
    hide_cause: bool = False

    def backoff(self, attempt: int, decision: Retry | None = None) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based) before the next one."""
        ceiling = capped_exponential(self.base, attempt - 1, self.cap)
        delay = (self.rng or _RNG).uniform(0, ceiling)
        if decision is None:
            return delay
        if decision.after is not None:
            return min(self.cap, max(delay, decision.after))
        if decision.spread_until is not None:
            retries_left = max(1, self.max_retries - attempt + 1)
            delay = max(delay, (decision.spread_until - self.clock.monotonic()) / retries_left)
        return delay

    def wait(
        self,
        attempt: int,
        decision: Retry | None = None,
        *,
        stop: threading.Event | None = None,
        **fields: Any,
    ) -> float:
        """Log and sleep the backoff after attempt `attempt`; RetryStopped when `stop` is set."""
        delay = self.backoff(attempt, decision)
        get_logger().info(
            "retry", caller=self.name, attempt=attempt, delay_s=round(delay, 3), **fields
        )
        if self.clock.sleep(delay, stop):
            raise RetryStopped(f"{self.name}: stop requested between attempts")
        return delay

    def run(
        self,
        attempt_once: Callable[[int], T],
        classify: Callable[[T | BaseException, int], Decision],
        *,
        stop: threading.Event | None = None,
        on_retry: Callable[[int], None] | None = None,
        **fields: Any,
    ) -> T:
        """Call `attempt_once(attempt)` (1-based) until `classify` accepts or gives up."""
        attempt = 0
        while True:
            attempt += 1
            outcome: T | BaseException
            try:
                outcome = attempt_once(attempt)
            except Exception as exc:
                outcome = exc
            decision = classify(outcome, attempt)
            if decision is None:
                return _accept(outcome)
            cause = None if self.hide_cause else _cause(outcome)
            if isinstance(decision, Raise | NeverResend):
                raise decision.error from cause
            if attempt > self.max_retries:
                if decision.give_up is not None:
                    raise decision.give_up from cause
                return _accept(outcome)
            if on_retry is not None:
                on_retry(attempt)
            self.wait(attempt, decision, stop=stop, **fields)


_RNG = random.Random()


def capped_exponential(base: float, step: int, cap: float) -> float:
    """`min(cap, base * 2**step)` for step >= 0: the ceiling of a retry's jitter, and the
    schedule of result polls (which wait exactly this: they are not a burst to spread)."""
    return float(min(cap, base * 2 ** min(max(0, step), 62)))


def _accept(outcome: T | BaseException) -> T:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _cause(outcome: object) -> BaseException | None:
    return outcome if isinstance(outcome, BaseException) else None
