"""The limiter keeps a share of each window for result polls (issue 14)."""

from __future__ import annotations

import pytest

from crm_sync.enrichment.ratelimit import (
    POLL,
    SlidingWindowLimiter,
    limiter_for,
    reserved_slots,
    reset_registry,
)
from tests.support.clock import FakeClock


def test_while_polls_go_on_submissions_leave_the_reserved_slots_to_them() -> None:
    """2 of 5 reserved and a poll made: a 4th submission waits a window; polls still go."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(5, 10.0, clock=clock, reserved=2)
    with limiter.slot(POLL) as waited:
        assert waited == 0
    for _ in range(2):
        with limiter.slot() as waited:
            assert waited == 0
    with limiter.slot(POLL) as waited:
        assert waited == 0
    with limiter.slot() as waited:
        assert waited == pytest.approx(10.0)


def test_with_nobody_polling_submissions_use_every_slot() -> None:
    """Results by webhook: no poll in the window, so the share is not kept idle."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(5, 10.0, clock=clock, reserved=2)
    for _ in range(5):
        with limiter.slot() as waited:
            assert waited == 0
    with limiter.slot() as waited:
        assert waited == pytest.approx(10.0)


def test_polls_may_use_every_slot() -> None:
    """Polls are never held back by the reservation: five polls in one window of five."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(5, 10.0, clock=clock, reserved=2)
    for _ in range(5):
        with limiter.slot(POLL) as waited:
            assert waited == 0
    with limiter.slot(POLL) as waited:
        assert waited == pytest.approx(10.0)


def test_reserved_slots_from_the_share() -> None:
    """10% of 60 is 6; a share never takes the last slot; 0 reserves nothing."""
    assert reserved_slots(60, 0.1) == 6
    assert reserved_slots(2, 0.9) == 1
    assert reserved_slots(1, 0.5) == 0
    assert reserved_slots(60, 0.0) == 0
    reset_registry()
    try:
        assert limiter_for("http://x", "k", 60, poll_share=0.1).reserved == 6
    finally:
        reset_registry()
