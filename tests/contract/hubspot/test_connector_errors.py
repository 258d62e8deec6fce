"""Rate limits, server faults, refused tokens and `check()` against the emulator."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from connectors.base import FieldUpdate, Selection, WriteStatus
from connectors.hubspot import HubSpotConnector, Throttle
from crm_sync.errors import AuthError, QuotaExhausted, RateLimited, ServerError
from crm_sync.sandbox.hubspot import HubSpotEmulator
from tests.support.backoff import assert_backoff
from tests.support.clock import FakeClock
from tests.support.hubspot import TOKEN, person

Connect = Callable[..., HubSpotConnector]


def test_ten_secondly_limit_waits_ten_seconds(connect: Connect, clock: FakeClock) -> None:
    """A 429 TEN_SECONDLY_ROLLING is retried after the injected sleep of 10 s."""
    emulator = HubSpotEmulator(
        people=[person(i) for i in range(3)],
        token=TOKEN,
        ten_secondly_limit=2,
        clock=clock,
    )
    connector = connect(emulator)
    found = connector.read(["101"])
    connector.read(["102"])
    found.update(connector.read(["103"]))
    assert set(found) == {"101", "103"}
    assert 10.0 in clock.sleeps
    assert emulator.calls["batch_read"] == 4  # one refused, then retried


def test_search_secondly_limit_waits_one_second(connect: Connect, clock: FakeClock) -> None:
    """A 429 SECONDLY on search waits 1 s, then the page comes."""
    emulator = HubSpotEmulator(
        people=[person(i) for i in range(30)],
        token=TOKEN,
        search_per_second=1,
        clock=clock,
    )
    connector = connect(emulator)
    pages = list(connector.iter_candidates(Selection(frozenset({"email"}), page_size=10)))
    assert sum(len(p) for p in pages) == 30
    assert clock.sleeps.count(1.0) >= 1


def test_daily_limit_raises_quota_exhausted(connect: Connect, clock: FakeClock) -> None:
    """A 429 DAILY stops the source with QuotaExhausted instead of waiting."""
    emulator = HubSpotEmulator(people=[person(0)], token=TOKEN, daily_limit=1, clock=clock)
    connector = connect(emulator)
    connector.read(["101"])
    with pytest.raises(QuotaExhausted, match="daily"):
        connector.read(["101"])
    assert 10.0 not in clock.sleeps


def test_rate_limit_retries_are_bounded(connect: Connect, clock: FakeClock) -> None:
    """When 429s never end, RateLimited is raised after max_retries waits."""
    emulator = HubSpotEmulator(people=[person(0)], token=TOKEN, ten_secondly_limit=0, clock=clock)
    connector = connect(emulator, settings={"max_retries": 2})
    with pytest.raises(RateLimited):
        connector.read(["101"])
    assert clock.sleeps.count(10.0) == 2


def test_server_errors_are_retried_then_raised(connect: Connect, clock: FakeClock) -> None:
    """Two 503s are absorbed by backoff; endless ones become ServerError."""
    emulator = HubSpotEmulator(people=[person(0)], token=TOKEN)
    connector = connect(emulator, settings={"max_retries": 3})
    emulator.fail_next(2, status=503)
    with capture_logs() as written:
        outcomes = connector.write([FieldUpdate("101", {"phone": "+14155550101"})])
    assert outcomes[0].status is WriteStatus.WRITTEN
    emulator.fail_next(10, status=502)
    with capture_logs() as read, pytest.raises(ServerError):
        connector.read(["101"])
    for logs, retries, kind in ((written, 2, "write"), (read, 3, "read")):
        events = [e for e in logs if e["event"] == "retry"]
        assert {(e["caller"], e["kind"]) for e in events} == {("hubspot", kind)}
        assert_backoff([e["delay_s"] for e in events], retries)


def test_unreachable_host_becomes_server_error(clock: FakeClock) -> None:
    """A connection refused is retried, then reported as ServerError."""
    from connectors.hubspot import HubSpotSettings
    from tests.support.hubspot import make_source

    source = make_source(settings={"base_url": "http://127.0.0.1:9", "max_retries": 1})
    settings = HubSpotSettings.model_validate(source.settings)
    connector = HubSpotConnector(source.spec(), settings, clock=clock)
    with pytest.raises(ServerError, match="unreachable"):
        connector.read(["101"])


def test_refused_token_raises_auth_error_without_the_token(connect: Connect) -> None:
    """A 401 becomes AuthError(service="hubspot"); the token is in no message or repr."""
    emulator = HubSpotEmulator(people=[person(0)], token=TOKEN)
    wrong = "pat-na1-wrong-token-0000-0000-000000000000"
    connector = connect(emulator, settings={"access_token": wrong})
    with pytest.raises(AuthError) as info:
        next(iter(connector.iter_candidates(connector.selection())))
    assert info.value.service == "hubspot"
    assert "renew" in str(info.value)
    assert info.value.__cause__ is None
    for text in (str(info.value), repr(info.value), repr(connector), repr(connector.settings)):
        assert wrong not in text
    checks = connector.check()
    assert not checks[0].ok
    assert wrong not in checks[0].detail


def test_check_reports_token_properties_and_daily_usage(connect: Connect) -> None:
    """check(): token accepted, each property known, an unknown one failing, calls left."""
    emulator = HubSpotEmulator(people=[person(0)], token=TOKEN)
    connector = connect(emulator, fields={"email": "email", "phone": "work_phone_x"})
    results = {r.name: r for r in connector.check()}
    assert results["hubspot.token"].ok
    assert results["hubspot.property.email"].ok
    assert results["hubspot.property.crm_sync_opt_out"].ok
    assert not results["hubspot.property.work_phone_x"].ok
    assert "does not exist" in results["hubspot.property.work_phone_x"].detail
    assert results["hubspot.daily_usage"].ok
    assert "of 250000 calls left today" in results["hubspot.daily_usage"].detail


def test_throttle_spaces_calls() -> None:
    """At 4 requests a second, the third of three quick calls has waited 0.5 s in all."""
    clock = FakeClock()
    throttle = Throttle(4.0, clock)
    for _ in range(3):
        throttle.wait()
    assert clock.sleeps == [0.25, 0.25]
