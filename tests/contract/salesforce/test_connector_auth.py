"""Both ways in (session id, SOAP login), and the settings and filter checks made before calls."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from pydantic import ValidationError as PydanticValidationError

from connectors.base import SourceSpec
from connectors.salesforce import (
    PlainHttpAdapter,
    SalesforceConnector,
    SalesforceSettings,
    build_session,
    rewrite_url,
)
from crm_sync.config import SourceConfig
from crm_sync.errors import AuthError, ConfigError
from crm_sync.wiring import source_problems
from tests.support.salesforce import Org

LOGIN = {"username": "sandbox@example.com", "password": "sandbox-password"}


def test_username_password_token_login(org: Org) -> None:
    """The SOAP login through `login_url` yields a session on the emulator."""
    connector = org.connector(login_url=org.server.url, security_token="sandbox-token", **LOGIN)
    assert len(connector.read(sorted(org.emulator.of_type("Contact"))[:2])) == 2
    assert org.emulator.calls["login"] == 1
    assert connector.calls.counts["login"] == 1


def test_password_login_renews_an_expired_session(org: Org) -> None:
    """With a password, a session that expires mid-run is renewed by logging in again."""
    connector = org.connector(login_url=org.server.url, security_token="sandbox-token", **LOGIN)
    first = sorted(org.emulator.of_type("Contact"))[0]
    assert connector.read([first])
    org.emulator.rotate_session("a-fresh-session")
    assert connector.read([first])
    assert org.emulator.calls["login"] == 2


def test_wrong_password_is_an_auth_error_without_it(org: Org) -> None:
    """INVALID_LOGIN becomes AuthError and neither password nor token is quoted."""
    connector = org.connector(
        login_url=org.server.url,
        username="sandbox@example.com",
        password="Wrong-Pass-123",
        security_token="Tok-456789",
    )
    with pytest.raises(AuthError) as info:
        connector.read(["0035g0000000000AAA"])
    assert info.value.code == "INVALID_LOGIN"
    assert "Wrong-Pass-123" not in str(info.value)
    assert "Tok-456789" not in str(info.value)


def test_settings_need_a_session_or_a_full_login() -> None:
    """Half a login is refused; secrets stay masked in the settings' repr."""
    with pytest.raises(PydanticValidationError):
        SalesforceSettings(username="u", password="p")  # type: ignore[arg-type]
    with pytest.raises(PydanticValidationError):
        SalesforceSettings(instance_url="ftp://x", session_id="s")  # type: ignore[arg-type]
    settings = SalesforceSettings(instance_url="https://x.my.salesforce.com", session_id="s3cr3t")  # type: ignore[arg-type]
    assert "s3cr3t" not in repr(settings)


def source(**overrides: Any) -> SourceConfig:
    values: dict[str, Any] = {
        "name": "sf",
        "connector": "salesforce",
        "fields": {"email": "Email"},
        "settings": {"instance_url": "https://x.my.salesforce.com", "session_id": "s"},
    }
    values.update(overrides)
    return SourceConfig(**values)


def spec(**overrides: Any) -> SourceSpec:
    return source(**overrides).spec()


@pytest.mark.parametrize(
    ("fragment", "problem"),
    [
        ("LeadSource = 'Web'; DELETE", "';' is not allowed"),
        ("Name = 'open", "unbalanced quotes"),
        ("(Name = 'x'", "'(' without ')'"),
        ("Name = 'x') OR (Id != null", "')' without '('"),
        (42, "must be a SOQL WHERE condition"),
        ("  ", "must be a SOQL WHERE condition"),
    ],
)
def test_filters_with_obvious_breakage_are_refused(fragment: Any, problem: str) -> None:
    """Separators, open quotes and unbalanced parentheses are config problems."""
    problems = source_problems(source(filters=fragment))
    assert len(problems) == 1
    assert problems[0].startswith("filters: ")
    assert problem in problems[0]


def test_filters_inside_strings_are_not_counted() -> None:
    """Quotes, parentheses and semicolons inside a string literal are fine."""
    fragment = "Title = 'VP (Sales); it\\'s' AND (LeadSource IN ('Web', 'Ads'))"
    assert SalesforceConnector.validate_filters(fragment) == []
    assert SalesforceConnector.validate_filters(None) == []


def test_field_names_cannot_inject_soql() -> None:
    """A mapped field that is not a plain API name is a ConfigError naming the key."""
    with pytest.raises(ConfigError) as info:
        SalesforceConnector.from_spec(spec(fields={"email": "Email = null) OR (Id"}))
    assert info.value.problems[0].startswith("fields.email:")


def test_candidate_query_shape() -> None:
    """The query asks for names, company, mapped fields and LinkedIn, and orders by Id."""
    connector = SalesforceConnector.from_spec(
        spec(
            fields={"email": "Email", "phone": "MobilePhone"},
            filters="LeadSource = 'Web'",
            opt_out_field="HasOptedOutOfEmail",
            settings={
                "instance_url": "https://x.my.salesforce.com",
                "session_id": "s",
                "linkedin_field": "LinkedIn__c",
            },
        )
    )
    assert connector.candidate_query(connector.selection()) == (
        "SELECT Id, FirstName, LastName, Email, MobilePhone, Account.Name, Account.Website, "
        "LinkedIn__c FROM Contact WHERE (Email = null OR MobilePhone = null) "
        "AND (LeadSource = 'Web') AND HasOptedOutOfEmail != true ORDER BY Id"
    )


def rewrites_for(session: requests.Session, url: str) -> dict[str, str]:
    adapter = session.get_adapter(url)
    assert isinstance(adapter, PlainHttpAdapter)
    return adapter.rewrites


def test_plain_http_routing_is_limited_to_the_emulator_origins() -> None:
    """Only the configured plain-http origins (and the login host) are sent to http://."""
    settings = SalesforceSettings(
        login_url="http://127.0.0.1:80",
        username="u",
        password="p",  # type: ignore[arg-type]
        security_token="t",  # type: ignore[arg-type]
        timeout_seconds=7,
    )
    session = build_session(settings)
    assert rewrites_for(session, "https://127.0.0.1:80/services/data")
    assert rewrites_for(session, "https://login.salesforce.com/services/Soap/u/59.0")
    assert rewrites_for(session, "https://127.0.0.1:8080/x") == {}
    adapter = session.get_adapter("https://login.salesforce.com/")
    assert isinstance(adapter, PlainHttpAdapter)
    assert adapter.default_timeout == 7
    rewrites = {"https://127.0.0.1:80": "http://127.0.0.1:80"}
    assert rewrite_url("https://127.0.0.1:80/a?b=1", rewrites) == "http://127.0.0.1:80/a?b=1"
    assert rewrite_url("https://127.0.0.1:8080/a", rewrites) == "https://127.0.0.1:8080/a"
    https_only = build_session(
        SalesforceSettings(instance_url="https://x.my.salesforce.com", session_id="s")  # type: ignore[arg-type]
    )
    assert rewrites_for(https_only, "https://x.my.salesforce.com/a") == {}


@pytest.mark.parametrize(
    ("settings", "flow"),
    [
        ({"consumer_key": "k", "username": "u", "private_key": "pem"}, "jwt"),
        ({"consumer_key": "k", "username": "u", "private_key_file": "/k.pem"}, "jwt"),
        (
            {
                "consumer_key": "k",
                "consumer_secret": "s",
                "login_url": "https://a.my.salesforce.com",
            },
            "client_credentials",
        ),
        ({"username": "u", "password": "p", "security_token": "t"}, "password"),
        ({"instance_url": "https://x.my.salesforce.com", "session_id": "s"}, "session"),
    ],
)
def test_auth_is_inferred_from_the_keys_set(settings: dict[str, Any], flow: str) -> None:
    """Without `auth:`, the one flow whose keys are present is used."""
    assert SalesforceSettings.model_validate(settings).auth == flow


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (
            {"username": "u", "password": "p", "security_token": "t", "private_key": "pem"},
            ["private_key (jwt)", "password, security_token (password)", "ambiguous"],
        ),
        (
            {"instance_url": "https://x", "session_id": "s", "consumer_secret": "c"},
            ["consumer_secret (client_credentials)", "session_id, instance_url (session)"],
        ),
        (
            {
                "auth": "jwt",
                "consumer_key": "k",
                "username": "u",
                "private_key": "p",
                "password": "x",
            },
            ["auth is jwt, but password belong to another flow"],
        ),
        ({"consumer_key": "k", "username": "u"}, ["no credentials"]),
        ({"auth": "jwt", "consumer_key": "k", "username": "u"}, ["private_key"]),
        (
            {"consumer_key": "k", "username": "u", "private_key": "p", "private_key_file": "f"},
            ["one of private_key (PEM text) or private_key_file"],
        ),
        (
            {
                "consumer_key": "k",
                "consumer_secret": "s",
                "login_url": "https://login.salesforce.com",
            },
            ["My Domain login_url"],
        ),
        ({"consumer_key": "k", "consumer_secret": "s"}, ["needs login_url"]),
    ],
)
def test_ambiguous_or_incomplete_auth_is_a_config_error(
    settings: dict[str, Any], named: list[str]
) -> None:
    """Keys of two flows, or a flow missing a key, is one config problem naming the keys."""
    problems = source_problems(source(settings=settings))
    assert len(problems) == 1, problems
    assert problems[0].startswith("settings: ")
    for words in named:
        assert words in problems[0]
    for secret in ("pem", "s3cr"):
        assert secret not in problems[0].split(":", 1)[1].replace("private_key", "")


def test_new_secrets_are_masked_in_reprs() -> None:
    """consumer_secret and private_key never show in the settings' or connector's repr."""
    settings = {
        "consumer_key": "k",
        "consumer_secret": "C0nsumer-S3cret",
        "login_url": "https://acme.my.salesforce.com",
    }
    parsed = SalesforceSettings.model_validate(settings)
    connector = SalesforceConnector.from_spec(spec(settings=settings))
    for text in (repr(parsed), repr(connector), repr(connector.api), repr(connector.api.auth)):
        assert "C0nsumer-S3cret" not in text
    jwt_settings = SalesforceSettings.model_validate(
        {"consumer_key": "k", "username": "u", "private_key": "-----BEGIN PRIVATE KEY-----xyz"}
    )
    assert "xyz" not in repr(jwt_settings)
