"""The client against the enrichment emulator over real loopback sockets (no mocks)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

from crm_sync.enrichment.client import EnrichmentClient
from crm_sync.enrichment.models import BulkRequest, ContactRequest, EnrichmentStatus
from crm_sync.enrichment.ratelimit import SlidingWindowLimiter
from crm_sync.errors import (
    EnrichmentAuthError,
    NotFoundError,
    OutcomeUnknown,
    ServerError,
)
from crm_sync.http_server import BackgroundServer
from crm_sync.sandbox.enrichment import EnrichmentEmulator
from tests.support.dialects import both_api_versions  # noqa: F401 - tests taking api_version run twice

KEY = "sandbox-enrichment-key"


@contextmanager
def running(api_version: str = "v1", **options: Any) -> Iterator[tuple[EnrichmentEmulator, str]]:
    """An emulator on a real socket; yields it and the client's base URL for `api_version`."""
    emulator = EnrichmentEmulator(**options)
    with BackgroundServer(emulator.app) as server:
        yield emulator, f"{server.url}/api/{api_version}"


def client_for(base_url: str, limiter: SlidingWindowLimiter, **kwargs: Any) -> EnrichmentClient:
    """A client speaking the dialect its base URL names."""
    options: dict[str, Any] = {"limiter": limiter, "timeout": 5.0, "rng": random.Random(3)}
    options["api_version"] = "v2" if base_url.endswith("/api/v2") else "v1"
    options.update(kwargs)
    return EnrichmentClient(base_url, KEY, **options)


def bulk(name: str, start: int, n: int = 3) -> BulkRequest:
    contacts = [
        ContactRequest(
            firstname="Ada", lastname=f"Person{i}", domain="example.com", custom={"crm_id": str(i)}
        )
        for i in range(start, start + n)
    ]
    return BulkRequest(name=name, datas=contacts)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_full_round_trip(api_version: str) -> None:
    """verify, credits, submit, then poll through both in-progress variants to FINISHED."""
    with (
        running(api_version, completion_delay=0.1, in_progress_style="alternate") as (emu, url),
        client_for(url, SlidingWindowLimiter(100, 1.0)) as client,
    ):
        assert client.verify_key() == "ws-sandbox"
        assert client.credits() == 1_000_000
        enrichment_id = client.submit(bulk("round-trip", 0))
        first = client.get_result(enrichment_id)
        second = client.get_result(enrichment_id)  # "alternate": the 400 in_progress variant
        assert {first.status, second.status} <= {
            EnrichmentStatus.CREATED,
            EnrichmentStatus.IN_PROGRESS,
        }
        emu.finish_all()
        result = client.get_result(enrichment_id)
    assert result.status is EnrichmentStatus.FINISHED
    assert sorted(item.custom["crm_id"] for item in result.datas) == ["0", "1", "2"]
    assert result.id == enrichment_id
    assert {c.status for c in emu.calls if c.method == "GET"} >= {200, 400}


def test_unknown_and_expired_ids_are_not_found(api_version: str) -> None:
    """An unknown id and an expired result both raise NotFoundError with the API code."""
    with (
        running(api_version, completion_delay=0.01) as (emu, url),
        client_for(url, SlidingWindowLimiter(100, 1.0)) as client,
    ):
        with pytest.raises(NotFoundError) as info:
            client.get_result("no-such-id")
        assert info.value.code == "error.enrichment.not_found"
        enrichment_id = client.submit(bulk("expire", 0))
        emu.expire(enrichment_id)
        with pytest.raises(NotFoundError):
            client.get_result(enrichment_id)


def test_out_of_credits_result_is_returned(api_version: str) -> None:
    """A job that ran out of credits comes back as a CREDITS_INSUFFICIENT result (402 body)."""
    with (
        running(api_version, completion_delay=0.01, balance=0) as (emu, url),
        client_for(url, SlidingWindowLimiter(100, 1.0)) as client,
    ):
        enrichment_id = client.submit(bulk("poor", 0, n=10))
        emu.finish_all()
        result = client.get_result(enrichment_id)
    assert result.status is EnrichmentStatus.CREDITS_INSUFFICIENT
    assert any(c.status == 402 for c in emu.calls)


def test_wrong_key_is_auth_error() -> None:
    """A key the emulator does not know raises EnrichmentAuthError (error.api.key)."""
    with running() as (_, url):
        client = EnrichmentClient(url, "wrong-key-xyz", limiter=SlidingWindowLimiter(10, 1.0))
        with client, pytest.raises(EnrichmentAuthError) as info:
            client.verify_key()
    assert str(info.value) == "the enrichment API refused the API key (error.api.key)"


def test_limiter_keeps_threads_under_emulator_limit() -> None:
    """Six threads and six clients sharing one limiter never exceed 20 calls per 0.5 s."""
    with running(rate_limit_calls=20, rate_limit_window=0.5) as (emu, url):
        limiter = SlidingWindowLimiter(20, 0.5)
        clients = [client_for(url, limiter, max_retries=0) for _ in range(6)]

        def work(client: EnrichmentClient) -> int:
            return sum(client.credits() for _ in range(10))

        with ThreadPoolExecutor(6) as pool:
            totals = list(pool.map(work, clients))
        for client in clients:
            client.close()
    assert totals == [10_000_000] * 6
    assert len(emu.calls) == 60
    assert emu.max_calls_in_any_window(0.5) <= 20
    assert all(c.status == 200 for c in emu.calls)


def test_burst_of_429_is_ridden_out() -> None:
    """A client allowed more than the emulator gets 429s, backs off, and still succeeds."""
    with running(rate_limit_calls=5, rate_limit_window=0.25) as (emu, url):
        limiter = SlidingWindowLimiter(100, 0.25)
        client = client_for(url, limiter, max_retries=30, backoff_base=0.02, backoff_cap=0.2)

        def work(_: int) -> str:
            return client.verify_key()

        with client, ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(work, range(24)))
    assert answers == ["ws-sandbox"] * 24
    assert client.stats.rate_limited["verify"] > 0
    assert sum(1 for c in emu.calls if c.status == 200) == 24


def test_post_timeout_is_outcome_unknown_and_not_resent(api_version: str) -> None:
    """A POST whose answer comes after the client's timeout is OutcomeUnknown, sent once."""
    with (
        running(api_version, latency=0.6, completion_delay=0.01) as (emu, url),
        client_for(url, SlidingWindowLimiter(100, 1.0), timeout=0.15) as client,
    ):
        with pytest.raises(OutcomeUnknown):
            client.submit(bulk("slow", 0))
        assert client.stats.calls["submit"] == 1
        assert wait_until(lambda: len(emu.calls) >= 1)
    posts = [c for c in emu.calls if c.method == "POST"]
    assert len(posts) == 1
    assert len(emu.job_ids()) == 1  # the job exists: a resend would have paid twice
    assert set(emu.submissions_per_contact().values()) == {1}


def test_faults_never_cause_a_second_submission(api_version: str) -> None:
    """Under random 500/502/503 faults, GETs recover and no contact is ever submitted twice."""
    with running(api_version, error_rate=0.4, completion_delay=0.01, seed=5) as (emu, url):
        client = client_for(
            url, SlidingWindowLimiter(1000, 1.0), max_retries=10, backoff_base=0.001
        )
        ids: list[str] = []
        unknown = 0
        with client:
            for n in range(20):
                try:
                    ids.append(client.submit(bulk(f"b{n}", n * 3)))
                except OutcomeUnknown:
                    unknown += 1
            emu.finish_all()
            balances = [client.credits() for _ in range(10)]
    assert unknown > 0
    assert ids  # the seed gives both outcomes, and a retried 503
    assert client.stats.retries["submit"] > 0
    assert client.stats.retries["credits"] > 0
    assert balances == [1_000_000 - emu.credits_charged] * 10
    assert max(emu.submissions_per_contact().values()) == 1
    assert len(emu.job_ids()) == len(ids)  # faults strike before work: unknowns made no job


def test_unreachable_server_is_server_error() -> None:
    """A port with nothing listening gives ServerError after the allowed retries."""
    with running() as (_, url):
        pass  # the server is stopped: its port now refuses connections
    client = client_for(url, SlidingWindowLimiter(100, 1.0), max_retries=2, backoff_base=0.001)
    with client, pytest.raises(ServerError, match="cannot reach"):
        client.verify_key()
    assert client.stats.calls["verify"] == 3


def test_threads_share_one_client_safely() -> None:
    """One client used by eight threads submits each contact exactly once."""
    with running(completion_delay=0.01) as (emu, url):
        client = client_for(url, SlidingWindowLimiter(1000, 1.0))
        lock = threading.Lock()
        ids: list[str] = []

        def work(n: int) -> None:
            enrichment_id = client.submit(bulk(f"t{n}", n * 5, n=5))
            with lock:
                ids.append(enrichment_id)

        with client, ThreadPoolExecutor(8) as pool:
            list(pool.map(work, range(16)))
    assert len(set(ids)) == 16
    counts = emu.submissions_per_contact()
    assert len(counts) == 80
    assert set(counts.values()) == {1}
