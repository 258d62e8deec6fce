"""Fault switches: 5xx before any work, latency, and flipping them while the server runs."""

from __future__ import annotations

import httpx
import pytest

from tests.emulators.enrichment.conftest import bulk


def test_error_rate_one_fails_every_call_before_any_work(make_api) -> None:
    """At error_rate 1 every call is a 5xx and a failed POST creates no job and no charge."""
    emulator, client = make_api(error_rate=1.0, completion_delay=3600)
    statuses = {client.post("/contact/enrich/bulk", json=bulk()).status_code for _ in range(10)}
    assert statuses <= {500, 502, 503}
    assert len(statuses) > 1
    assert emulator.job_ids() == []
    assert emulator.submitted == []
    assert emulator.max_calls_in_any_window() == 0


def test_error_rate_is_seeded_and_partial(make_api) -> None:
    """A fraction fails, and the same seed fails the same calls."""
    runs = []
    for _ in range(2):
        _, client = make_api(error_rate=0.5, seed=3)
        runs.append([client.get("/account/credits").status_code for _ in range(12)])
    assert runs[0] == runs[1]
    assert 200 in runs[0]
    assert any(code >= 500 for code in runs[0])


def test_faults_flip_at_runtime(make_api) -> None:
    """Setting faults.error_rate on a running emulator takes effect on the next call."""
    emulator, client = make_api()
    assert client.get("/account/credits").status_code == 200
    emulator.faults.error_rate = 1.0
    assert client.get("/account/credits").status_code >= 500
    emulator.faults.error_rate = 0.0
    assert client.get("/account/credits").status_code == 200


def test_gateway_errors_are_not_json(make_api) -> None:
    """502/503 come back as an HTML page, as from a proxy; 500 carries a JSON error body."""
    _, client = make_api(error_rate=1.0, seed=1)
    for _ in range(8):
        response = client.get("/account/credits")
        if response.status_code == 500:
            assert response.json()["code"]
        else:
            assert response.headers["content-type"].startswith("text/plain")
            assert str(response.status_code) in response.text


def test_latency_makes_a_post_time_out_after_creating_the_job(make_api) -> None:
    """With latency the work is done before the wait: a client that times out still paid."""
    emulator, client = make_api(latency=0.5, completion_delay=3600)
    with pytest.raises(httpx.ReadTimeout):
        client.post("/contact/enrich/bulk", json=bulk(), timeout=0.05)
    assert len(emulator.job_ids()) == 1
    assert len(emulator.submitted) == 1
    emulator.faults.latency = 0.0
    assert client.get("/account/credits").status_code == 200
