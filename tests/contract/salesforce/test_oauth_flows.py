"""OAuth 2.0 JWT bearer and client credentials against the emulator's token endpoint, and
session renewal: an expired session is renewed once and no write is lost or sent twice."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from structlog.testing import capture_logs

from connectors.base import FieldUpdate, WriteStatus
from connectors.salesforce.auth import ASSERTION_LIFETIME, jwt_assertion, soap_version
from connectors.salesforce.settings import (
    DEFAULT_API_VERSION,
    TESTED_API_VERSIONS,
    SalesforceSettings,
)
from crm_sync.errors import AuthError, ConfigError, NotFoundError
from crm_sync.sandbox.salesforce.keys import generate_key_pair, public_key_pem, sandbox_key_pair
from crm_sync.sandbox.salesforce.oauth import OAuthApp
from tests.support.backoff import assert_backoff
from tests.support.clock import FakeClock
from tests.support.salesforce import Org

PASSWORD = {
    "username": "sandbox@example.com",
    "password": "sandbox-password",
    "security_token": "sandbox-token",
}


def _flow_settings(org: Org, flow: str) -> dict[str, Any]:
    if flow == "jwt":
        return org.jwt_settings()
    if flow == "client_credentials":
        return org.client_credentials_settings()
    return {"login_url": org.server.url, **PASSWORD}


def _ids(org: Org, n: int = 3) -> list[str]:
    return sorted(org.emulator.of_type("Contact"))[:n]


def test_jwt_bearer_flow_logs_in_and_check_names_the_user(org: Org) -> None:
    """The assertion is accepted; check says the flow and the pre-authorized user."""
    connector = org.connector(**org.jwt_settings())
    assert len(connector.read(_ids(org))) == 3
    assert org.emulator.calls["token"] == 1
    lines = {r.name: r for r in connector.check()}
    assert lines["salesforce session"].ok
    assert "auth jwt as sandbox@example.com" in lines["salesforce session"].detail
    assert "salesforce auth" not in lines  # no retirement warning outside password mode


def test_client_credentials_flow_runs_as_the_apps_user(make_org: Any) -> None:
    """Consumer key and secret give a session of the app's "run as" user, named by userinfo
    when the app has the openid scope, else by its ids from the token answer."""
    app = OAuthApp(scopes=frozenset({"api", "openid"}))
    org = make_org(contacts=3, oauth_app=app)
    connector = org.connector(**org.client_credentials_settings())
    assert len(connector.read(_ids(org))) == 3
    detail = {r.name: r for r in connector.check()}["salesforce session"].detail
    assert "auth client_credentials as integration@example.com (user 0055g" in detail
    plain = make_org(contacts=1)
    detail = {r.name: r for r in plain.connector(**plain.client_credentials_settings()).check()}[
        "salesforce session"
    ].detail
    assert "auth client_credentials as user 0055g" in detail
    assert "org 00D5g" in detail


def test_password_check_warns_that_soap_login_is_retired(org: Org) -> None:
    """Password mode still works (SOAP at 64.0 whatever api_version) and check warns."""
    connector = org.connector(login_url=org.server.url, **PASSWORD)
    lines = {r.name: r for r in connector.check()}
    assert "auth password as sandbox@example.com" in lines["salesforce session"].detail
    warning = lines["salesforce auth"].detail
    assert "Summer '27" in warning
    assert "Moving from password to JWT" in warning
    assert soap_version("66.0") == "64.0"
    assert soap_version("59.0") == "59.0"


def test_every_password_login_logs_the_retirement_warning(org: Org) -> None:
    """Each SOAP login logs `salesforce.password_login_retiring`; a JWT login does not."""
    with capture_logs() as events:
        org.connector(login_url=org.server.url, **PASSWORD).read(_ids(org, 1))
        org.connector(**org.jwt_settings()).read(_ids(org, 1))
    warned = [e for e in events if e["event"] == "salesforce.password_login_retiring"]
    assert len(warned) == 1
    assert warned[0]["log_level"] == "warning"
    assert "Summer '27" in warned[0]["advice"]


def test_private_key_file_is_read(org: Org, tmp_path: Path) -> None:
    """`private_key_file` works like `private_key`."""
    key = tmp_path / "jwt.key"
    key.write_text(sandbox_key_pair().private_key)
    settings = org.jwt_settings(private_key=None, private_key_file=str(key))
    connector = org.connector(**settings)
    assert len(connector.read(_ids(org, 1))) == 1


@pytest.mark.parametrize(
    ("where", "aud"),
    [
        ({"domain": "login"}, "https://login.salesforce.com"),
        ({"domain": "test"}, "https://test.salesforce.com"),
        ({"domain": "acme.my"}, "https://login.salesforce.com"),
        ({"domain": "acme--dev.sandbox.my"}, "https://test.salesforce.com"),
        ({"login_url": "https://acme.my.salesforce.com"}, "https://login.salesforce.com"),
        (
            {"login_url": "https://acme--dev.sandbox.my.salesforce.com"},
            "https://test.salesforce.com",
        ),
    ],
)
def test_assertion_audience_is_the_generic_login_host(where: dict[str, str], aud: str) -> None:
    """Production and My Domain: login.salesforce.com; sandbox orgs: test.salesforce.com."""
    settings = SalesforceSettings.model_validate(
        {
            "consumer_key": "k",
            "username": "u",
            "private_key": sandbox_key_pair().private_key,
            **where,
        }
    )
    claims = jwt.decode(jwt_assertion(settings, time.time()), options={"verify_signature": False})
    assert claims["aud"] == aud


def test_private_key_on_one_line_with_escaped_newlines(org: Org) -> None:
    """A PEM stored as one line with literal \\n (an .env file) is unfolded and works."""
    folded = sandbox_key_pair().private_key.strip().replace("\n", "\\n")
    connector = org.connector(**org.jwt_settings(private_key=folded))
    assert len(connector.read(_ids(org, 1))) == 1


def test_assertion_has_the_documented_claims() -> None:
    """RS256; iss consumer key, sub username, aud login.salesforce.com, numeric exp <= 3 min."""
    settings = SalesforceSettings.model_validate(
        {
            "consumer_key": "3MVGkey",
            "username": "int@acme.com",
            "private_key": sandbox_key_pair().private_key,
            "domain": "acme.my",
        }
    )
    now = time.time()
    assertion = jwt_assertion(settings, now)
    assert jwt.get_unverified_header(assertion)["alg"] == "RS256"
    claims = jwt.decode(
        assertion,
        public_key_pem(sandbox_key_pair().certificate),
        algorithms=["RS256"],
        audience="https://login.salesforce.com",
    )
    assert claims["iss"] == "3MVGkey"
    assert claims["sub"] == "int@acme.com"
    assert isinstance(claims["exp"], int)
    assert 0 < claims["exp"] - now <= ASSERTION_LIFETIME


@pytest.mark.parametrize(
    ("settings", "code", "words"),
    [
        ({"private_key": generate_key_pair().private_key}, "invalid_grant", "invalid assertion"),
        ({"consumer_key": "3MVGnot-the-app"}, "invalid_client_id", "client identifier invalid"),
        ({"username": "someone@example.com"}, "invalid_grant", "hasn't approved"),
    ],
)
def test_jwt_refusals_carry_salesforces_code(
    org: Org, settings: dict[str, Any], code: str, words: str
) -> None:
    """A wrongly signed assertion, an unknown app, a user not pre-authorized: AuthError + code."""
    connector = org.connector(**org.jwt_settings(**settings))
    with pytest.raises(AuthError) as info:
        connector.read(_ids(org, 1))
    assert info.value.code == code
    assert words in str(info.value)
    assert "PRIVATE KEY" not in str(info.value)
    assert org.emulator.calls["query"] == 0


def test_wrong_consumer_secret_is_invalid_client_without_the_secret(org: Org) -> None:
    """A wrong secret: invalid_client, and the secret is not quoted."""
    connector = org.connector(**org.client_credentials_settings(consumer_secret="Wr0ng-S3cret"))
    with pytest.raises(AuthError) as info:
        connector.read(_ids(org, 1))
    assert info.value.code == "invalid_client"
    assert "Wr0ng-S3cret" not in str(info.value)
    lines = connector.check()
    assert lines[0].credentials_refused
    assert "invalid_client" in lines[0].detail


@pytest.mark.parametrize("flow", ["jwt", "client_credentials", "password"])
def test_expired_session_is_renewed_once_mid_read(org: Org, flow: str) -> None:
    """After the org expires every session, the next call logs in again and goes on."""
    connector = org.connector(**_flow_settings(org, flow))
    assert connector.read(_ids(org, 1))
    org.emulator.expire_sessions()
    assert connector.read(_ids(org, 2))
    logins = org.emulator.calls["login"] + org.emulator.calls["token"]
    assert logins == 2
    assert connector.calls.counts["session_renewed"] == 1


def test_write_refused_for_an_expired_session_is_applied_exactly_once(org: Org) -> None:
    """INVALID_SESSION_ID proves the write was not applied: renewed, sent again, applied once."""
    connector = org.connector(**org.jwt_settings())
    ids = _ids(org, 3)
    assert connector.read(ids)
    org.emulator.expire_sessions()
    updates = [FieldUpdate(i, {"phone": f"+3314455667{n}"}) for n, i in enumerate(ids)]
    outcomes = connector.write(updates)
    assert [o.status for o in outcomes] == [WriteStatus.WRITTEN] * 3
    assert sorted(w.record_id for w in org.emulator.writes) == ids
    assert org.emulator.calls["composite"] == 1  # the refused call never reached the handler
    assert connector.calls.counts["write"] == 2


def test_write_refused_with_another_401_is_not_sent_again(org: Org) -> None:
    """A 401 that does not say INVALID_SESSION_ID proves nothing: the write is not resent."""
    connector = org.connector(**org.jwt_settings())
    ids = _ids(org, 2)
    assert connector.read(ids)
    org.emulator.fail_next(1, status=401)
    with pytest.raises(AuthError) as info:
        connector.write([FieldUpdate(i, {"phone": "+33144556677"}) for i in ids])
    assert "not sent again" in str(info.value)
    assert org.emulator.writes == []
    assert connector.calls.counts["write"] == 1


def test_session_mode_stops_with_a_clear_message(org: Org) -> None:
    """A given session cannot be renewed: AuthError saying so, and what to use instead."""
    connector = org.connector()
    assert connector.read(_ids(org, 1))
    org.emulator.rotate_session("another-session")
    with pytest.raises(AuthError) as info:
        connector.read(_ids(org, 1))
    assert "cannot renew" in str(info.value)
    assert "jwt" in str(info.value)


def test_sessions_expire_after_the_configured_ttl(make_org: Any) -> None:
    """With `session_ttl`, a session older than N seconds is refused and renewed."""
    clock = FakeClock(datetime.fromtimestamp(1_800_000_000, UTC))
    org = make_org(contacts=5, session_ttl=600, clock=clock)
    connector = org.connector(**org.jwt_settings())
    connector.api.auth._clock = clock  # the assertion's exp follows the org's clock
    assert connector.read(_ids(org, 1))
    clock.advance(seconds=599)
    assert connector.read(_ids(org, 1))
    assert org.emulator.calls["token"] == 1
    clock.advance(seconds=1)
    assert connector.read(_ids(org, 1))
    assert org.emulator.calls["token"] == 2


@pytest.mark.parametrize("version", TESTED_API_VERSIONS)
@pytest.mark.parametrize("flow", ["jwt", "password"])
def test_every_tested_api_version_reads_writes_and_checks(
    org: Org, version: str, flow: str
) -> None:
    """Each version the README lists works end to end; password logs in at <= 64.0 anyway."""
    connector = org.connector(api_version=version, **_flow_settings(org, flow))
    ids = _ids(org, 2)
    assert len(connector.read(ids)) == 2
    outcomes = connector.write([FieldUpdate(ids[0], {"phone": "+33144556677"})])
    assert outcomes[0].status is WriteStatus.WRITTEN
    assert all(r.ok for r in connector.check() if r.name.startswith("salesforce"))


def test_default_api_version_is_the_newest_tested() -> None:
    """The default follows the tested list; an unknown newer version is refused by the org."""
    assert max(TESTED_API_VERSIONS, key=float) == DEFAULT_API_VERSION
    assert SalesforceSettings.model_fields["api_version"].default == DEFAULT_API_VERSION


def test_a_version_the_org_does_not_know_is_not_found(org: Org) -> None:
    """A version past the org's newest answers 404, named in the error."""
    connector = org.connector(api_version="99.0", **org.jwt_settings())
    with pytest.raises(NotFoundError):
        connector.read(_ids(org, 1))


def test_a_private_key_that_is_not_a_pem_is_a_config_error(org: Org) -> None:
    """Garbage in private_key: ConfigError (exit 2) naming the key, not quoting it."""
    connector = org.connector(**org.jwt_settings(private_key="Not-A-PEM-but-secret"))
    with pytest.raises(ConfigError) as info:
        connector.read(_ids(org, 1))
    assert str(info.value).startswith("private_key: not an unencrypted PEM private key")
    assert "Not-A-PEM-but-secret" not in str(info.value)
    assert org.emulator.calls["token"] == 0


def test_the_signing_key_is_parsed_once_per_connector(org: Org) -> None:
    """Renewals sign new assertions with the key parsed at the first login."""
    connector = org.connector(**org.jwt_settings())
    assert connector.read(_ids(org, 1))
    key = connector.api.auth._key
    org.emulator.expire_sessions()
    assert connector.read(_ids(org, 1))
    assert connector.api.auth._key is key
    assert org.emulator.calls["token"] == 2


def test_token_endpoint_outage_is_retried_not_a_refusal(org: Org) -> None:
    """A 503 from the token endpoint is retried (a new assertion each time), never exit 3."""
    connector = org.connector(max_retries=2, **org.jwt_settings())
    org.emulator.fail_next_token(2)
    assert connector.read(_ids(org, 1))
    assert org.emulator.calls["token"] == 3
    assert_backoff(org.clock.sleeps, 2)
