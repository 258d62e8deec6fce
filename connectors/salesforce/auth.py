"""How the Salesforce connector logs in: OAuth 2.0 JWT bearer or client credentials, SOAP
username-password, or a session id given as is.

Each flow yields a `SalesforceSession` (access token and instance URL) that `http.py`
hands to simple-salesforce as a plain session. Every flow but `session` can run again when the
session expires; `SalesforceApi` decides when.

The two OAuth flows post to `{login_url}/services/oauth2/token` themselves rather than through
simple-salesforce 1.12's `SalesforceLogin(consumer_key=..., privatekey=...)`: that helper keeps
only the access token and instance (not the answer's `id`), sends `exp` as a string, aims the
assertion's audience at `https://{domain}.salesforce.com` (a My Domain URL for a My Domain), needs
the consumer secret in a
Basic header, and turns "user hasn't approved this consumer" into a Python warning. The
assertion is built with PyJWT (RS256 through cryptography) with the claims Salesforce documents:
iss = consumer key, sub = username, exp = now + 3 minutes, and aud = https://login.salesforce.com
(https://test.salesforce.com for a sandbox org), the audiences Salesforce's JWT documentation
names, wherever the token is asked for (My Domain included), as the Salesforce CLI does.

The SOAP login (`password`) stays on simple-salesforce. SOAP `login()` is absent from API 65.0
and later, so it is always asked for at `SOAP_LOGIN_VERSION` whatever `api_version` the REST
calls use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from simple_salesforce.login import SalesforceLogin

from connectors.salesforce.settings import SalesforceSettings
from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.errors import AuthError, ConfigError, FatalError, ServerError
from crm_sync.logs import register_secret, scrub

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 180  # seconds; Salesforce accepts at most 3 minutes
SOAP_LOGIN_VERSION = "64.0"  # the last API version that still has SOAP login()
SOAP_LOGIN_RETIREMENT = (
    "username-password login uses SOAP login(), which is disabled in orgs created since 2025 "
    "and retired for every API version with Summer '27: move to auth: jwt (README: "
    "'Moving from password to JWT')"
)
HINTS = {
    ("jwt", "invalid_grant"): (
        "check that the certificate uploaded to the app matches private_key, that username is "
        "pre-authorized for the app, and that this host's clock is right"
    ),
    ("jwt", "invalid_client_id"): "consumer_key is not the consumer key of the app",
    ("client_credentials", "invalid_client_id"): "consumer_key is not the app's consumer key",
    ("client_credentials", "invalid_client"): "consumer_key or consumer_secret is wrong",
    ("client_credentials", "invalid_grant"): (
        "check that the app enables the client credentials flow with a 'run as' user, and that "
        "login_url is your My Domain"
    ),
}


@dataclass(frozen=True, slots=True)
class SalesforceSession:
    """A session to call the REST API with, and the flow that obtained it."""

    access_token: str = field(repr=False)
    instance_url: str
    flow: str
    identity_url: str | None = None


def soap_version(api_version: str) -> str:
    """The API version to ask SOAP login() at: the configured one, at most 64.0."""
    return min(api_version, SOAP_LOGIN_VERSION, key=float)


def read_private_key(settings: SalesforceSettings) -> str:
    """The PEM text of the signing key, from `private_key` or `private_key_file`.

    A PEM squeezed onto one line with literal `\\n` (as .env files and some secret stores hold
    it) is unfolded.
    """
    if settings.private_key is not None:
        text = settings.private_key.get_secret_value()
        if "\n" not in text and "\\n" in text:
            text = text.replace("\\n", "\n")
            register_secret(text.strip())
        return text
    path = Path(settings.private_key_file or "")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"private_key_file: cannot read {path}: {type(exc).__name__}") from None
    register_secret(text.strip())
    return text


def audience(settings: SalesforceSettings) -> str:
    """https://test.salesforce.com for a sandbox org, https://login.salesforce.com otherwise."""
    host = urlsplit(settings.login_base).hostname or ""
    sandbox = host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com")
    return "https://test.salesforce.com" if sandbox else "https://login.salesforce.com"


def load_signing_key(settings: SalesforceSettings) -> RSAPrivateKey:
    """The RSA key to sign with, parsed once (parsing checks the key: tens of milliseconds)."""
    try:
        key = load_pem_private_key(read_private_key(settings).encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(
            f"private_key: not an unencrypted PEM private key ({type(exc).__name__})"
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError("private_key: the JWT bearer flow needs an RSA key (RS256)")
    return key


def jwt_assertion(
    settings: SalesforceSettings, now: float, key: RSAPrivateKey | None = None
) -> str:
    """The RS256-signed assertion of the JWT bearer flow, valid for 3 minutes from `now`."""
    claims = {
        "iss": settings.consumer_key,
        "sub": settings.username,
        "aud": audience(settings),
        "exp": int(now) + ASSERTION_LIFETIME,
    }
    assertion = jwt.encode(claims, key or load_signing_key(settings), algorithm="RS256")
    register_secret(assertion)
    return assertion


class SalesforceAuth:
    """Logs in with the configured flow; `renewable` says whether it can do so again."""

    def __init__(
        self,
        settings: SalesforceSettings,
        http: Callable[[], requests.Session],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self._http = http
        self._clock = clock
        self.flow = settings.mode
        self.renewable = self.flow != "session"
        self._key: RSAPrivateKey | None = None
        for secret in (settings.session_id, settings.password, settings.security_token):
            register_secret(secret.get_secret_value() if secret else None)
        for secret in (settings.consumer_secret, settings.private_key):
            register_secret(secret.get_secret_value().strip() if secret else None)

    def __repr__(self) -> str:
        return f"SalesforceAuth(flow={self.flow!r}, login={self.settings.login_base!r})"

    def warnings(self) -> list[str]:
        """What `check` should say about the flow itself."""
        return [SOAP_LOGIN_RETIREMENT] if self.flow == "password" else []

    def login(self) -> SalesforceSession:
        """A fresh session (or the configured one, for `session`)."""
        s = self.settings
        if self.flow == "session":
            assert s.instance_url is not None
            assert s.session_id is not None
            return SalesforceSession(s.session_id.get_secret_value(), s.instance_url, "session")
        if self.flow == "password":
            return self._soap_login()
        if self.flow == "jwt":
            if self._key is None:
                self._key = load_signing_key(s)
            data = {
                "grant_type": JWT_GRANT,
                "assertion": jwt_assertion(s, self._clock.now().timestamp(), self._key),
            }
        else:
            assert s.consumer_secret is not None
            data = {
                "grant_type": "client_credentials",
                "client_id": s.consumer_key or "",
                "client_secret": s.consumer_secret.get_secret_value(),
            }
        return self._token(data)

    def _soap_login(self) -> SalesforceSession:
        s = self.settings
        assert s.password is not None
        assert s.security_token is not None
        session_id, instance = SalesforceLogin(
            username=s.username,
            password=s.password.get_secret_value(),
            security_token=s.security_token.get_secret_value(),
            domain=s.domain,
            sf_version=soap_version(s.api_version),
            session=self._http(),
        )
        register_secret(session_id)
        return SalesforceSession(session_id, f"https://{instance}", "password")

    def _token(self, data: dict[str, str]) -> SalesforceSession:
        url = f"{self.settings.login_base}/services/oauth2/token"
        try:
            response = self._http().post(
                url,
                data=data,
                headers={"Accept": "application/json"},
                timeout=self.settings.timeout_seconds,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ServerError(f"Salesforce token endpoint: {type(exc).__name__}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise ServerError(
                f"Salesforce token endpoint: HTTP {response.status_code}",
                status=response.status_code,
            )
        body = _json(response)
        if response.status_code != 200:
            raise self._refusal(response.status_code, body)
        token, instance = body.get("access_token"), body.get("instance_url")
        if not isinstance(token, str) or not isinstance(instance, str):
            raise FatalError("Salesforce token endpoint: the answer has no access_token")
        register_secret(token)
        identity = body.get("id")
        return SalesforceSession(
            token, instance.rstrip("/"), self.flow, identity if isinstance(identity, str) else None
        )

    def _refusal(self, status: int, body: dict[str, Any]) -> AuthError:
        code = str(body.get("error") or f"HTTP {status}")
        description = scrub(str(body.get("error_description") or ""))
        hint = HINTS.get((self.flow, code), "check the app's consumer key and credentials")
        detail = f"{code}: {description}" if description else code
        return AuthError(
            f"Salesforce refused the {self.flow} login ({detail}): {hint}",
            service="salesforce",
            code=code,
        )


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
