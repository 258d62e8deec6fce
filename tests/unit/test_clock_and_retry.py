"""The one clock and the one retry policy: backoff bounds, Retry-After, give-up, stop, logging."""

from __future__ import annotations

import random
import threading

import pytest
from structlog.testing import capture_logs

from crm_sync.clock import SYSTEM_CLOCK
from crm_sync.retry import (
    NeverResend,
    Raise,
    Retry,
    RetryPolicy,
    RetryStopped,
    capped_exponential,
)
from tests.support.clock import FakeClock


def policy(clock: FakeClock, **kw: float) -> RetryPolicy:
    return RetryPolicy("test", clock=clock, rng=random.Random(7), **kw)  # type: ignore[arg-type]


def test_system_clock_is_aware_utc_and_sleep_wakes_on_stop() -> None:
    """now() carries UTC; a set stop event ends a sleep at once and is reported."""
    assert SYSTEM_CLOCK.now().utcoffset() is not None
    stop = threading.Event()
    stop.set()
    before = SYSTEM_CLOCK.monotonic()
    assert SYSTEM_CLOCK.sleep(30, stop) is True
    assert SYSTEM_CLOCK.monotonic() - before < 5


def test_backoff_is_full_jitter_under_a_capped_exponential_ceiling() -> None:
    """Each wait lies in [0, min(cap, base * 2**(n-1))]."""
    retry = policy(FakeClock(), base=1.0, cap=8.0)
    for attempt in range(1, 8):
        ceiling = min(8.0, 2 ** (attempt - 1))
        waits = [retry.backoff(attempt) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling / 2  # jitter spreads over the range


def test_server_wait_is_honoured_but_capped() -> None:
    """Retry-After raises the wait; it never exceeds the cap."""
    retry = policy(FakeClock(), base=0.1, cap=30.0)
    assert retry.backoff(1, Retry(after=12.0)) == 12.0
    assert retry.backoff(1, Retry(after=600.0)) == 30.0


def test_spread_until_makes_the_retries_reach_the_instant() -> None:
    """With a full rate window ahead, the remaining retries together span it."""
    clock = FakeClock()
    retry = policy(clock, max_retries=3, base=0.01, cap=60.0)
    until = clock.monotonic() + 60
    assert retry.backoff(1, Retry(spread_until=until)) >= 20.0


def test_run_retries_then_returns_and_logs_one_event_per_wait() -> None:
    """Two failures then success: two `retry` events naming the caller, two sleeps."""
    clock = FakeClock()
    calls: list[int] = []

    def attempt(n: int) -> str:
        calls.append(n)
        if n < 3:
            raise ConnectionError("down")
        return "ok"

    with capture_logs() as logs:
        result = policy(clock).run(
            attempt, lambda o, n: Retry() if isinstance(o, Exception) else None
        )
    assert result == "ok"
    assert calls == [1, 2, 3]
    assert len(clock.sleeps) == 2
    events = [e for e in logs if e["event"] == "retry"]
    assert [e["attempt"] for e in events] == [1, 2]
    assert {e["caller"] for e in events} == {"test"}


def test_give_up_is_raised_when_retries_are_spent() -> None:
    """max_retries=2 means 3 attempts, then the classification's give_up error."""
    clock = FakeClock()
    calls: list[int] = []

    def attempt(n: int) -> str:
        calls.append(n)
        raise ConnectionError("down")

    with pytest.raises(TimeoutError, match="kept failing") as info:
        policy(clock, max_retries=2).run(
            attempt, lambda o, n: Retry(give_up=TimeoutError("kept failing"))
        )
    assert calls == [1, 2, 3]
    assert isinstance(info.value.__cause__, ConnectionError)


def test_spent_retries_without_give_up_return_the_last_result() -> None:
    """A retried answer (say a 429 response) is handed back when the retries are spent."""
    result = policy(FakeClock(), max_retries=1).run(lambda n: n, lambda o, n: Retry())
    assert result == 2


@pytest.mark.parametrize("verdict", [Raise, NeverResend])
def test_raise_and_never_resend_stop_at_once(verdict: type[Raise] | type[NeverResend]) -> None:
    """A refusal or a request that may have been applied is never sent a second time."""
    clock = FakeClock()
    calls: list[int] = []

    def attempt(n: int) -> str:
        calls.append(n)
        raise ConnectionResetError("read failed")

    with pytest.raises(LookupError):
        policy(clock).run(attempt, lambda o, n: verdict(LookupError("no")))
    assert calls == [1]
    assert clock.sleeps == []


def test_stop_between_attempts_raises_retry_stopped() -> None:
    """A set stop event ends the wait and no further attempt is made."""
    stop = threading.Event()
    stop.set()
    calls: list[int] = []

    def attempt(n: int) -> str:
        calls.append(n)
        raise ConnectionError("down")

    with pytest.raises(RetryStopped):
        policy(FakeClock()).run(attempt, lambda o, n: Retry(), stop=stop)
    assert calls == [1]


def test_hide_cause_raises_without_chaining_the_attempt_error() -> None:
    """With hide_cause, a give-up error does not carry the attempt's exception along."""

    def attempt(n: int) -> str:
        raise ConnectionError("secret-bearing failure")

    retry = RetryPolicy("test", max_retries=1, clock=FakeClock(), hide_cause=True)
    with pytest.raises(TimeoutError) as info:
        retry.run(attempt, lambda o, n: Retry(give_up=TimeoutError("kept failing")))
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    with pytest.raises(LookupError) as refused:
        retry.run(attempt, lambda o, n: Raise(LookupError("no")))
    assert refused.value.__cause__ is None


def test_capped_exponential_doubles_then_holds_at_the_cap() -> None:
    """The one exponential: base, 2*base, 4*base ... then the cap, however large the step."""
    assert [capped_exponential(5.0, n, 60.0) for n in range(6)] == [5, 10, 20, 40, 60, 60]
    assert capped_exponential(1.0, 10_000, 30.0) == 30.0
