"""Assertions on the waits of `crm_sync.retry.RetryPolicy` (full jitter: bounds, not values)."""

from __future__ import annotations

from collections.abc import Sequence


def assert_backoff(
    sleeps: Sequence[float], retries: int, *, base: float = 0.5, cap: float = 30.0
) -> None:
    """One wait per retry, the n-th within `[0, min(cap, base * 2**(n-1))]`."""
    assert len(sleeps) == retries, f"{len(sleeps)} waits for {retries} retries: {list(sleeps)}"
    for attempt, wait in enumerate(sleeps, start=1):
        ceiling = min(cap, base * 2 ** (attempt - 1))
        assert 0 <= wait <= ceiling, f"wait {attempt} is {wait}, above its ceiling {ceiling}"
