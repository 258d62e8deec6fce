"""A 429 without Retry-After: the POST's retries outlast one whole rate window (real sockets)."""

from __future__ import annotations

import time

import httpx

from crm_sync.enrichment.ratelimit import SlidingWindowLimiter
from tests.contract.enrichment.test_client_integration import KEY, bulk, client_for, running

WINDOW = 3.0


def test_post_retries_after_429_span_a_whole_rate_window() -> None:
    """Another client of the same key filled the API's window: the POST still gets through.

    The API says "Try again in 1m" and sends no Retry-After; retries with plain exponential
    backoff (1 s, 2 s) gave up inside the window and the batch was failed.
    """
    with running(rate_limit_calls=3, rate_limit_window=WINDOW) as (emulator, url):
        with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}) as other:
            for _ in range(3):  # the other process of the same account uses the whole window
                assert other.get(f"{url}/account/credits").status_code == 200
        client = client_for(url, SlidingWindowLimiter(100, WINDOW), max_retries=2)
        started = time.monotonic()
        with client:
            enrichment_id = client.submit(bulk("after-the-window", 0))
        elapsed = time.monotonic() - started
        statuses = [c.status for c in emulator.calls if c.method == "POST"]
    assert enrichment_id
    assert statuses[0] == 429
    assert statuses[-1] == 200
    assert statuses.count(200) == 1
    assert elapsed >= WINDOW * 0.8
    assert client.stats.rate_limited["submit"] >= 1
