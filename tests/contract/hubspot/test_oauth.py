"""HubSpot OAuth apps: access tokens refreshed before they expire and after a 401, a refused
refresh token stops with a message to reinstall the app, and no write is lost or doubled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError

from connectors.base import FieldUpdate, WriteStatus
from connectors.hubspot import HubSpotConnector
from connectors.hubspot.auth import REFRESH_MARGIN
from connectors.hubspot.settings import HubSpotSettings
from crm_sync.errors import AuthError, ServerError
from crm_sync.http_server import BackgroundServer
from crm_sync.sandbox.hubspot import HubSpotEmulator
from tests.support.clock import FakeClock
from tests.support.hubspot import make_source, person

Serve = Callable[[HubSpotEmulator], BackgroundServer]


def oauth_settings(emulator: HubSpotEmulator, **overrides: Any) -> dict[str, Any]:
    settings = {
        "client_id": emulator.oauth.client_id,
        "client_secret": emulator.oauth.client_secret,
        "refresh_token": emulator.oauth.refresh_token,
    }
    settings.update(overrides)
    return settings


@pytest.fixture
def oauth_connect(serve_emulator: Serve, clock: FakeClock) -> Callable[..., HubSpotConnector]:
    """A connector in oauth mode on a served emulator sharing the fake clock."""

    def build(emulator: HubSpotEmulator, **overrides: Any) -> HubSpotConnector:
        server = serve_emulator(emulator)
        settings = {"base_url": server.url, "requests_per_second": 1e3}
        settings.update(oauth_settings(emulator, **overrides))
        source = make_source().model_copy(update={"settings": settings})
        parsed = HubSpotSettings.model_validate(source.settings)
        return HubSpotConnector(source.spec(), parsed, clock=clock)

    return build


def emulator_for(clock: FakeClock, n: int = 3) -> HubSpotEmulator:
    return HubSpotEmulator(people=[person(i) for i in range(n)], clock=clock)


def test_token_is_refreshed_before_it_expires(
    oauth_connect: Callable[..., HubSpotConnector], clock: FakeClock
) -> None:
    """First call: a refresh; near the 30-minute end: another, before any 401."""
    emulator = emulator_for(clock)
    connector = oauth_connect(emulator)
    assert len(connector.read(["101", "102"])) == 2
    assert emulator.calls["oauth_token"] == 1
    clock.advance(seconds=1800 - REFRESH_MARGIN - 1)
    assert connector.read(["101"])
    assert emulator.calls["oauth_token"] == 1
    clock.advance(seconds=2)
    assert connector.read(["101"])
    assert emulator.calls["oauth_token"] == 2
    assert all(e.status != 401 for e in emulator.exchanges)


def test_a_401_refreshes_once_and_the_write_is_applied_once(
    oauth_connect: Callable[..., HubSpotConnector], clock: FakeClock
) -> None:
    """A token the portal expired early: 401 EXPIRED_AUTHENTICATION, refresh, one write."""
    emulator = emulator_for(clock)
    connector = oauth_connect(emulator)
    assert connector.read(["101"])
    emulator.oauth.expire_all()
    updates = [FieldUpdate(i, {"phone": f"+1415555010{n}"}) for n, i in enumerate(["101", "102"])]
    outcomes = connector.write(updates)
    assert [o.status for o in outcomes] == [WriteStatus.WRITTEN] * 2
    assert sorted(w.record_id for w in emulator.writes) == ["101", "102"]
    assert emulator.calls["oauth_token"] == 2
    assert connector.calls.counts["token_refresh_after_401"] == 1
    refused = [e for e in emulator.exchanges if e.status == 401]
    assert len(refused) == 1
    assert b"EXPIRED_AUTHENTICATION" in refused[0].response_body


def test_a_write_refused_by_another_401_is_not_sent_again(
    oauth_connect: Callable[..., HubSpotConnector], clock: FakeClock
) -> None:
    """A 401 that does not say the token expired proves nothing about the write: not resent."""
    emulator = emulator_for(clock)
    connector = oauth_connect(emulator)
    assert connector.read(["101"])
    emulator.fail_next(1, status=401)
    with pytest.raises(AuthError):
        connector.write([FieldUpdate("101", {"phone": "+14155550101"})])
    assert emulator.writes == []
    assert emulator.calls["oauth_token"] == 1
    assert emulator.calls["batch_update"] == 1


@pytest.mark.parametrize("revoke_mid_run", [False, True])
def test_refused_refresh_token_says_to_reinstall(
    oauth_connect: Callable[..., HubSpotConnector], clock: FakeClock, revoke_mid_run: bool
) -> None:
    """BAD_REFRESH_TOKEN (at start, or after the app was uninstalled): AuthError, no secret."""
    emulator = emulator_for(clock)
    given = "na1-not-the-refresh-token"
    connector = oauth_connect(emulator, **({} if revoke_mid_run else {"refresh_token": given}))
    if revoke_mid_run:
        assert connector.read(["101"])
        emulator.oauth.revoked = True
        clock.advance(seconds=1800)
    with pytest.raises(AuthError) as info:
        connector.read(["101"])
    assert info.value.code == "BAD_REFRESH_TOKEN"
    assert "reinstall the app" in str(info.value)
    for secret in (given, emulator.oauth.refresh_token, emulator.oauth.client_secret):
        assert secret not in str(info.value)
    assert not emulator.writes


def test_wrong_client_secret_is_refused_by_code(
    oauth_connect: Callable[..., HubSpotConnector], clock: FakeClock
) -> None:
    """A wrong secret: AuthError with HubSpot's code, check marks the credentials refused."""
    emulator = emulator_for(clock)
    connector = oauth_connect(emulator, client_secret="Wr0ng-client-s3cret")
    with pytest.raises(AuthError) as info:
        connector.read(["101"])
    assert info.value.code == "BAD_CLIENT_SECRET"
    assert "Wr0ng-client-s3cret" not in str(info.value)
    first = connector.check()[0]
    assert first.credentials_refused
    assert "BAD_CLIENT_SECRET" in first.detail


def test_check_names_the_flow_and_the_installing_user(
    oauth_connect: Callable[..., HubSpotConnector], clock: FakeClock
) -> None:
    """check(): the OAuth identity (user, hub, app) from the token info endpoint."""
    emulator = emulator_for(clock)
    lines = {r.name: r for r in oauth_connect(emulator).check()}
    assert lines["hubspot.token"].ok
    assert (
        lines["hubspot.auth"].detail == "oauth as installer@example.com (hub 242424, app 3141592)"
    )


def test_token_endpoint_outage_is_retried(
    oauth_connect: Callable[..., HubSpotConnector], clock: FakeClock
) -> None:
    """Two 503s from the token endpoint are waited out; endless ones are a ServerError."""
    emulator = emulator_for(clock)
    emulator.oauth.failures.extend([503, 503])
    connector = oauth_connect(emulator, max_retries=2)
    assert connector.read(["101"])
    assert emulator.calls["oauth_token"] == 3
    emulator.oauth.failures.extend([502] * 5)
    clock.advance(seconds=1800)
    with pytest.raises(ServerError):
        connector.read(["101"])


def test_auth_is_inferred_and_ambiguity_is_refused() -> None:
    """oauth keys alone mean oauth; with an access_token too, a config error naming both."""
    oauth = {"client_id": "c", "client_secret": "s", "refresh_token": "r"}
    assert HubSpotSettings.model_validate(oauth).auth == "oauth"
    assert HubSpotSettings.model_validate({"access_token": "t"}).auth == "private_app"
    with pytest.raises(PydanticValidationError, match="ambiguous credentials: access_token"):
        HubSpotSettings.model_validate({**oauth, "access_token": "t"})
    with pytest.raises(PydanticValidationError, match="auth oauth needs refresh_token"):
        HubSpotSettings.model_validate({"auth": "oauth", "client_id": "c", "client_secret": "s"})
    with pytest.raises(PydanticValidationError, match="needs access_token"):
        HubSpotSettings.model_validate({})
    parsed = HubSpotSettings.model_validate(
        {"client_id": "c", "client_secret": "S3cret-x", "refresh_token": "R3fresh-y"}
    )
    assert "S3cret-x" not in repr(parsed)
    assert "R3fresh-y" not in repr(parsed)
