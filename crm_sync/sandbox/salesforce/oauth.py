"""The OAuth 2.0 side of the Salesforce emulator: the token endpoint and the sessions it issues.

`POST /services/oauth2/token` (form-encoded) serves the two server-to-server flows as Salesforce
documents them:
- JWT bearer (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=...`): the
  assertion must be RS256-signed by the key of the app's certificate, `iss` the consumer key,
  `sub` a pre-authorized user, `aud` https://login.salesforce.com or https://test.salesforce.com
  (the org's own URL too only with `OAuthApp.my_domain_audience`: the documentation names the two
  generic ones), and a numeric `exp` in the future and at most 3 minutes ahead;
- client credentials (`client_id` and `client_secret` in the body, or in a Basic header): run as
  the app's "run as" user.
Answers carry `access_token`, `instance_url`, `id`, `token_type` and `issued_at`; refusals are
Salesforce's 400 bodies `{"error", "error_description"}` (`invalid_grant`, `invalid_client_id`,
`invalid_client`, `unsupported_grant_type`). `SessionBook.ttl` makes sessions expire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import jwt

from crm_sync.clock import Clock
from crm_sync.sandbox.salesforce.keys import public_key_pem, sandbox_key_pair

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 180  # seconds
CLOCK_SKEW = 5  # seconds of leeway on exp in the future
ORG_ID = "00D5g0000000001EAA"
FULL_ACCESS = frozenset({"full", "api", "openid", "id"})
GENERIC_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
Reply = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class OAuthApp:
    """A connected app / external client app as the org's admin configured it."""

    consumer_key: str = "3MVG9sandbox.crm_sync.consumer_key"
    consumer_secret: str = field(default="sandbox-consumer-secret", repr=False)
    certificate: str = field(default_factory=lambda: sandbox_key_pair().certificate)
    pre_authorized: frozenset[str] = frozenset({"sandbox@example.com"})
    run_as: str | None = "integration@example.com"  # the client credentials flow's user
    # The app's OAuth scopes; userinfo needs openid, which an integration app often lacks.
    scopes: frozenset[str] = frozenset({"api", "refresh_token", "offline_access"})
    my_domain_audience: bool = False  # also accept the org's own URL as a JWT audience


class SessionBook:
    """Session ids issued by logins, with their issue time; `ttl` seconds makes them expire."""

    def __init__(self, clock: Clock, ttl: float | None = None) -> None:
        self.clock = clock
        self.ttl = ttl
        self._issued: dict[str, tuple[float, str, frozenset[str]]] = {}
        self.history: list[str] = []  # every session ever issued (canary tests look for them)
        self._lock = threading.Lock()

    def seconds(self) -> float:
        """Now in seconds since the epoch (session ages, `issued_at`, a JWT's `exp`)."""
        return self.clock.now().timestamp()

    def issue(self, username: str, scopes: frozenset[str] = FULL_ACCESS) -> str:
        """A new session id for `username` with these OAuth scopes (SOAP logins: full)."""
        token = f"{ORG_ID[:15]}!AQ{secrets.token_urlsafe(40)}"
        with self._lock:
            self._issued[token] = (self.seconds(), username, scopes)
            self.history.append(token)
        return token

    def user_of(self, token: str) -> str | None:
        """The user of a live session, or None when unknown or expired."""
        with self._lock:
            entry = self._issued.get(token)
        if entry is None:
            return None
        issued, username, _ = entry
        if self.ttl is not None and self.seconds() - issued >= self.ttl:
            return None
        return username

    def scopes_of(self, token: str) -> frozenset[str]:
        """The scopes of an issued session (full access for any other, e.g. a configured one)."""
        with self._lock:
            entry = self._issued.get(token)
        return entry[2] if entry else FULL_ACCESS

    def expire_all(self) -> None:
        """Every session issued so far answers 401 from now on."""
        with self._lock:
            self._issued.clear()


def user_id(username: str, users: dict[str, str]) -> str:
    """A stable 18-character User id for a username."""
    return users.setdefault(username, f"0055g{len(users) + 1:010d}AAA")


class Refusal(Exception):
    """A token request refused with Salesforce's `error` code and `error_description`."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.reply: Reply = (400, {"error": code, "error_description": description})


class TokenEndpoint:
    """Grants sessions for one app; `answer` is the whole endpoint without the HTTP plumbing."""

    def __init__(self, app: OAuthApp, sessions: SessionBook, users: dict[str, str]) -> None:
        self.app = app
        self.sessions = sessions
        self.users = users
        self._public_key = public_key_pem(app.certificate)

    def answer(self, body: bytes, authorization: str, base_url: str) -> Reply:
        """The token endpoint's answer to a form-encoded POST."""
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        grant = form.get("grant_type", "")
        try:
            if grant == JWT_GRANT:
                username = self._jwt_user(form.get("assertion", ""), base_url)
            elif grant == "client_credentials":
                username = self._client_user(form, authorization)
            else:
                raise Refusal("unsupported_grant_type", "grant type not supported")
        except Refusal as refusal:
            return refusal.reply
        return 200, self._grant(username, base_url)

    def _grant(self, username: str, base_url: str) -> dict[str, Any]:
        issued_at = str(int(self.sessions.seconds() * 1000))
        identity = f"{base_url}/id/{ORG_ID}/{user_id(username, self.users)}"
        mac = hmac.new(
            self.app.consumer_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
        )
        return {
            "access_token": self.sessions.issue(username, self.app.scopes),
            "scope": " ".join(sorted(self.app.scopes)),
            "instance_url": base_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": base64.b64encode(mac.digest()).decode("ascii"),
        }

    def _jwt_user(self, assertion: str, base_url: str) -> str:
        """The assertion's subject once signature, issuer, audience, expiry and approval hold."""
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Refusal("invalid_grant", "invalid assertion") from None
        if unverified.get("iss") != self.app.consumer_key:
            raise Refusal("invalid_client_id", "client identifier invalid")
        try:
            claims = jwt.decode(
                assertion,
                self._public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise Refusal("invalid_grant", "invalid assertion") from None
        audiences = set(GENERIC_AUDIENCES)
        if self.app.my_domain_audience:
            audiences |= {base_url, "https://" + base_url.split("://", 1)[-1]}
        if claims.get("aud") not in audiences:
            raise Refusal("invalid_grant", "audience is invalid")
        self._check_expiry(claims.get("exp"))
        subject = claims.get("sub")
        if not isinstance(subject, str) or subject not in self.app.pre_authorized:
            raise Refusal("invalid_grant", "user hasn't approved this consumer")
        return subject

    def _check_expiry(self, exp: Any) -> None:
        """A numeric `exp` (seconds since the epoch), in the future, at most 3 minutes ahead."""
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise Refusal("invalid_grant", "invalid assertion")
        now = self.sessions.seconds()
        if exp <= now:
            raise Refusal("invalid_grant", "expired authorization code")
        if exp > now + MAX_ASSERTION_LIFETIME + CLOCK_SKEW:
            raise Refusal("invalid_grant", "invalid assertion: exp more than 3 minutes ahead")

    def _client_user(self, form: dict[str, str], authorization: str) -> str:
        """The app's "run as" user once the client id and secret (body or Basic) match."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:]).decode("utf-8")
            except ValueError:
                raise Refusal("invalid_client", "invalid client credentials") from None
            client_id, _, secret = decoded.partition(":")
        if client_id != self.app.consumer_key:
            raise Refusal("invalid_client_id", "client identifier invalid")
        if not secret or not hmac.compare_digest(secret, self.app.consumer_secret):
            raise Refusal("invalid_client", "invalid client credentials")
        if self.app.run_as is None:
            raise Refusal("invalid_grant", "no client credentials user enabled")
        return self.app.run_as

    def userinfo(self, username: str, base_url: str) -> dict[str, Any]:
        """What `GET /services/oauth2/userinfo` (and the `id` URL) say about a session's user."""
        uid = user_id(username, self.users)
        return {
            "sub": f"{base_url}/id/{ORG_ID}/{uid}",
            "user_id": uid,
            "organization_id": ORG_ID,
            "preferred_username": username,
            "username": username,
            "name": username.split("@", 1)[0],
            "email": username,
            "active": True,
            "user_type": "STANDARD",
        }
