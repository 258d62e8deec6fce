"""The sliding-window rate limit: 429 at the boundary, refused calls take no slot."""

from __future__ import annotations

import httpx

from crm_sync.sandbox.enrichment.records import max_in_window
from tests.emulators.enrichment.conftest import bulk
from tests.support.clock import FakeClock


def test_429_exactly_past_the_limit(make_api) -> None:
    """The Nth call in the window passes, the N+1th gets the API's 429 body and no Retry-After."""
    clock = FakeClock()
    _, client = make_api(rate_limit_calls=3, rate_limit_window=60.0, clock=clock)
    assert [client.get("/account/credits").status_code for _ in range(3)] == [200, 200, 200]
    response = client.get("/account/credits")
    assert response.status_code == 429
    assert response.json() == {
        "code": "error.rate.limit",
        "message": "Too many requests. Try again in 1m",
    }
    assert "retry-after" not in response.headers


def test_limit_covers_every_endpoint(make_api) -> None:
    """Verify, credits, POST and GET share one window."""
    emulator, client = make_api(rate_limit_calls=3, clock=FakeClock(), completion_delay=3600)
    client.get("/account/keys/verify")
    enrichment_id = client.post("/contact/enrich/bulk", json=bulk()).json()["enrichment_id"]
    client.get(f"/contact/enrich/bulk/{enrichment_id}")
    assert client.post("/contact/enrich/bulk", json=bulk()).status_code == 429
    assert len(emulator.job_ids()) == 1  # the refused POST created nothing
    assert len(emulator.submitted) == 1


def test_window_slides(make_api) -> None:
    """A slot frees exactly when its call leaves the window, not before."""
    clock = FakeClock()
    _, client = make_api(rate_limit_calls=2, rate_limit_window=10.0, clock=clock)
    client.get("/account/credits")  # t = 1000
    clock.advance(seconds=5)
    client.get("/account/credits")  # t = 1005
    clock.advance(seconds=4.9)
    assert client.get("/account/credits").status_code == 429
    clock.advance(seconds=0.1)  # t = 1010: the first call leaves the window
    assert client.get("/account/credits").status_code == 200
    assert client.get("/account/credits").status_code == 429


def test_refused_calls_take_no_slot(make_api) -> None:
    """Hammering while limited does not push the recovery further away."""
    clock = FakeClock()
    emulator, client = make_api(rate_limit_calls=2, rate_limit_window=10.0, clock=clock)
    client.get("/account/credits")
    client.get("/account/credits")
    for _ in range(5):
        clock.advance(seconds=1)
        assert client.get("/account/credits").status_code == 429
    clock.advance(seconds=5)  # 10 s after the first two calls
    assert client.get("/account/credits").status_code == 200
    assert emulator.max_calls_in_any_window() == 2


def test_unauthenticated_calls_are_not_counted(make_api) -> None:
    """401s neither use a slot nor show in max_calls_in_any_window."""
    emulator, client = make_api(rate_limit_calls=1, clock=FakeClock())
    for _ in range(3):
        assert httpx.get(f"{client.base_url}account/credits").status_code == 401
    assert client.get("/account/credits").status_code == 200
    assert emulator.max_calls_in_any_window() == 1


def test_max_calls_in_any_window_reports_the_peak(make_api) -> None:
    """The counter finds the densest window, with a custom width on request."""
    clock = FakeClock()
    emulator, client = make_api(rate_limit_calls=100, rate_limit_window=60.0, clock=clock)
    for step in (0, 1, 1, 1, 30, 61, 62):
        clock.advance(seconds=step)
        client.get("/account/credits")
    assert emulator.max_calls_in_any_window() == 5  # t = 0..33 all inside 60 s
    assert emulator.max_calls_in_any_window(window=2.5) == 3


def test_max_in_window_is_half_open() -> None:
    """Two instants exactly `window` apart are not in the same window."""
    assert max_in_window([0.0, 10.0], 10.0) == 1
    assert max_in_window([0.0, 9.99], 10.0) == 2
    assert max_in_window([], 10.0) == 0
