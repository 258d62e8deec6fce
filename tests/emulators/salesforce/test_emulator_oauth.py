"""The emulator's token endpoint on the wire: documented answers and Salesforce's error bodies."""

from __future__ import annotations

import base64
import time
from typing import Any

import jwt
import pytest
import requests

from crm_sync.sandbox.salesforce.keys import generate_key_pair, sandbox_key_pair
from crm_sync.sandbox.salesforce.oauth import JWT_GRANT, OAuthApp
from tests.support.salesforce import Org


def token(org: Org, data: dict[str, str], **kwargs: Any) -> requests.Response:
    return requests.post(f"{org.server.url}/services/oauth2/token", data=data, timeout=5, **kwargs)


def assertion(org: Org, key: str | None = None, **claims: Any) -> str:
    body: dict[str, Any] = {
        "iss": org.emulator.oauth_app.consumer_key,
        "sub": org.emulator.username,
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 120,
    }
    body.update(claims)
    return jwt.encode(body, key or sandbox_key_pair().private_key, algorithm="RS256")


def test_jwt_grant_answers_a_usable_session(make_org: Any) -> None:
    """access_token, instance_url, id, token_type and issued_at; the token works on REST, and
    on the identity URL when the app has the `id` scope."""
    app = OAuthApp(scopes=frozenset({"api", "id"}))
    org = make_org(contacts=2, oauth_app=app)
    answer = token(org, {"grant_type": JWT_GRANT, "assertion": assertion(org)})
    assert answer.status_code == 200
    body = answer.json()
    assert {"access_token", "instance_url", "id", "token_type", "issued_at"} <= set(body)
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == org.server.url
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    info = requests.get(body["id"], headers=headers, timeout=5).json()
    assert info["username"] == org.emulator.username
    limits = requests.get(
        f"{org.server.url}/services/data/v66.0/limits", headers=headers, timeout=5
    )
    assert limits.status_code == 200
    userinfo = requests.get(
        f"{org.server.url}/services/oauth2/userinfo", headers=headers, timeout=5
    )
    assert userinfo.status_code == 403  # needs openid


def test_identity_url_needs_the_id_scope(org: Org) -> None:
    """The default app (api, refresh_token) may not read the identity URL or userinfo."""
    body = token(org, {"grant_type": JWT_GRANT, "assertion": assertion(org)}).json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert requests.get(body["id"], headers=headers, timeout=5).status_code == 403


@pytest.mark.parametrize(
    ("claims", "error", "description"),
    [
        ({"exp": int(time.time()) - 5}, "invalid_grant", "expired authorization code"),
        ({"exp": int(time.time()) + 3600}, "invalid_grant", "invalid assertion"),
        ({"exp": str(int(time.time()) + 60)}, "invalid_grant", "invalid assertion"),
        ({"aud": "https://elsewhere.example.com"}, "invalid_grant", "audience is invalid"),
        ({"aud": "https://acme.my.salesforce.com"}, "invalid_grant", "audience is invalid"),
        ({"iss": "3MVGunknown"}, "invalid_client_id", "client identifier invalid"),
        ({"sub": "stranger@example.com"}, "invalid_grant", "user hasn't approved this consumer"),
    ],
)
def test_jwt_claims_are_checked(
    org: Org, claims: dict[str, Any], error: str, description: str
) -> None:
    """Expiry (numeric, future, <= 3 min), audience, issuer and pre-authorization."""
    answer = token(org, {"grant_type": JWT_GRANT, "assertion": assertion(org, **claims)})
    assert answer.status_code == 400
    assert answer.json()["error"] == error
    assert answer.json()["error_description"].startswith(description)


def test_signature_is_verified_against_the_certificate(org: Org) -> None:
    """An assertion signed by another key, or not signed, is an invalid assertion."""
    other = assertion(org, key=generate_key_pair().private_key)
    assert token(org, {"grant_type": JWT_GRANT, "assertion": other}).json() == {
        "error": "invalid_grant",
        "error_description": "invalid assertion",
    }
    header, payload, _ = assertion(org).split(".")
    unsigned = f"{header}.{payload}."
    assert token(org, {"grant_type": JWT_GRANT, "assertion": unsigned}).status_code == 400


def test_client_credentials_in_body_or_basic_header(org: Org) -> None:
    """Both places Salesforce reads the client's credentials; a wrong secret is invalid_client."""
    app = org.emulator.oauth_app
    body = {"grant_type": "client_credentials"}
    ok = token(org, {**body, "client_id": app.consumer_key, "client_secret": app.consumer_secret})
    assert ok.status_code == 200
    basic = base64.b64encode(f"{app.consumer_key}:{app.consumer_secret}".encode()).decode()
    assert token(org, body, headers={"Authorization": f"Basic {basic}"}).status_code == 200
    wrong = token(org, {**body, "client_id": app.consumer_key, "client_secret": "nope"})
    assert wrong.json()["error"] == "invalid_client"
    unknown = token(org, {**body, "client_id": "3MVGx", "client_secret": app.consumer_secret})
    assert unknown.json()["error"] == "invalid_client_id"
    other = token(org, {"grant_type": "password"})
    assert other.json()["error"] == "unsupported_grant_type"
