"""Unit tests of the sliding-window limiter and its process-wide registry (fake clock)."""

from __future__ import annotations

import threading
import time

import pytest

from crm_sync.enrichment.ratelimit import (
    SlidingWindowLimiter,
    key_fingerprint,
    limiter_for,
    reset_registry,
)
from crm_sync.errors import NotSent
from tests.support.clock import FakeClock


def test_calls_within_limit_do_not_wait() -> None:
    """Up to `calls` slots are handed out at once without any sleep."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(3, 10.0, clock=clock)
    for _ in range(3):
        with limiter.slot() as waited:
            assert waited == 0.0
    assert clock.sleeps == []


def test_call_over_limit_waits_for_window_from_oldest_end() -> None:
    """The fourth call of a 3-per-10s limiter waits until the first call's end is 10s old."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(3, 10.0, clock=clock)
    start = clock.monotonic()
    for step in range(3):
        clock.mono = start + step
        with limiter.slot():
            clock.advance(seconds=0.5)  # the call takes half a second; its end starts the window
    with limiter.slot() as waited:
        pass
    assert clock.monotonic() - start == pytest.approx(10.5)
    assert waited == pytest.approx(10.5 - 2.5)


def test_started_times_never_exceed_limit_in_any_window() -> None:
    """Across many calls, no window of `window` seconds sees more than `calls` starts."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(5, 1.0, clock=clock)
    starts: list[float] = []
    for _ in range(40):
        with limiter.slot():
            starts.append(clock.monotonic())
            clock.advance(seconds=0.01)
    for t in starts:
        assert sum(1 for s in starts if t <= s < t + 1.0) <= 5


def test_threads_share_the_limit() -> None:
    """Eight threads using one limiter start at most `calls` calls per window (real clock)."""
    limiter = SlidingWindowLimiter(10, 0.2)
    starts: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            with limiter.slot(), lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(starts) == 40
    for t0 in starts:
        assert sum(1 for s in starts if t0 <= s < t0 + 0.2) <= 10


def test_in_flight_calls_hold_their_slot() -> None:
    """While `calls` requests are in flight, another caller blocks until one is released."""
    limiter = SlidingWindowLimiter(1, 0.01)
    limiter.acquire()
    got = threading.Event()

    def second() -> None:
        with limiter.slot():
            got.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not got.wait(0.1)  # 10 windows later still blocked: the first call has not ended
    limiter.release()
    assert got.wait(2.0)
    thread.join()


def test_rejects_nonsense_limits() -> None:
    """A limit below one call or a non-positive window is a programming error."""
    with pytest.raises(ValueError, match="calls"):
        SlidingWindowLimiter(0)
    with pytest.raises(ValueError, match="window"):
        SlidingWindowLimiter(1, 0.0)


def test_registry_shares_one_limiter_per_url_and_key() -> None:
    """Clients of one account share a limiter; another key or URL gets its own."""
    reset_registry()
    first = limiter_for("https://a.test/api/v1/", "key-one", 60)
    assert limiter_for("https://a.test/api/v1", "key-one", 60) is first
    assert limiter_for("https://a.test/api/v1", "key-two", 60) is not first
    assert limiter_for("https://b.test/api/v1", "key-one", 60) is not first
    assert limiter_for("https://a.test/api/v1", "key-one", 30) is first  # first limit wins
    reset_registry()
    assert limiter_for("https://a.test/api/v1", "key-one", 60) is not first
    reset_registry()


def test_fingerprint_does_not_contain_the_key() -> None:
    """The registry's key name is a short hash, never the key itself."""
    fingerprint = key_fingerprint("canary-key-123456")
    assert "canary" not in fingerprint
    assert len(fingerprint) == 16


def test_a_wait_for_a_slot_ends_on_a_stop_request() -> None:
    """A caller waiting for a slot gives up (NotSent, nothing held) soon after a stop."""
    limiter = SlidingWindowLimiter(1, 30.0)
    with limiter.slot():
        pass
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(NotSent), limiter.slot(stop=stop):
        pytest.fail("no slot may be granted within the window")
    assert time.monotonic() - started < 2.0
    assert limiter._in_flight == 0


def test_a_stop_already_requested_takes_no_slot() -> None:
    """Even with slots free, a stopped caller is refused before it takes one."""
    limiter = SlidingWindowLimiter(5, 1.0)
    stop = threading.Event()
    stop.set()
    with pytest.raises(NotSent), limiter.slot(stop=stop):
        pytest.fail("unreachable")
    assert limiter._in_flight == 0
