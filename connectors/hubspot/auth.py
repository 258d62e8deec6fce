"""How the HubSpot connector authenticates: a private app's token, or an OAuth app's tokens.

`private_app` sends the configured `access_token` as is. `oauth` (apps installed in several
portals) holds a refresh token and trades it for access tokens that last 30 minutes, through
hubspot-api-client's `client.oauth.tokens_api.create(grant_type="refresh_token", ...)`: before
the first call, whenever less than `REFRESH_MARGIN` of the token's life is left, and once after
a 401. A refused refresh token is an `AuthError` (exit 3) saying to reinstall the app, since
only a new install yields a new refresh token.

The token is set on the `Configuration` of every generated API object the connector holds
(found by looking for an `api_client` attribute), so an API object added later is covered too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import urllib3
from hubspot import HubSpot
from hubspot.oauth.exceptions import ApiException as OAuthApiException

from connectors.hubspot.policy import classify_error, error_fields
from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.errors import AuthError, ServerError
from crm_sync.logs import register_secret, scrub
from crm_sync.retry import Decision, NeverResend, Raise, Retry, RetryPolicy

T = TypeVar("T")
REFRESH_MARGIN = 300.0  # seconds of validity left under which a token is refreshed
REINSTALL = (
    "reinstall the app in the HubSpot portal (or run its install link again) to get a new "
    "refresh token; see README, section 'HubSpot OAuth'"
)
# 401 categories HubSpot answers before doing anything: a write refused with one was not applied.
UNAUTHENTICATED = frozenset({"EXPIRED_AUTHENTICATION", "INVALID_AUTHENTICATION"})


def auth_problems(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with `auth` filled in; ValueError naming keys for an ambiguous or partial setup."""
    present = {key for key, value in data.items() if value not in (None, "")}
    oauth_keys = sorted(present & {"client_id", "client_secret", "refresh_token"})
    mode = data.get("auth")
    if mode is None:
        if "access_token" in present and oauth_keys:
            raise ValueError(
                f"ambiguous credentials: access_token (private_app) and {', '.join(oauth_keys)} "
                "(oauth); set `auth:` to one and remove the keys of the other"
            )
        mode = "oauth" if oauth_keys else "private_app"
    if mode == "private_app":
        if oauth_keys:
            raise ValueError(f"auth is private_app, but {', '.join(oauth_keys)} belong to oauth")
        if "access_token" not in present:
            raise ValueError("auth private_app needs access_token")
    elif mode == "oauth":
        if "access_token" in present:
            raise ValueError("auth is oauth, but access_token belongs to private_app")
        missing = [k for k in ("client_id", "client_secret", "refresh_token") if k not in present]
        if missing:
            raise ValueError(f"auth oauth needs {', '.join(missing)}")
    return {**data, "auth": mode}


class HubSpotAuth:
    """The bearer token the SDK sends, refreshed in time for `oauth`."""

    def __init__(
        self,
        settings: Any,
        client: HubSpot,
        log: Any,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.flow: str = settings.auth
        self.refreshable = self.flow == "oauth"
        self._settings = settings
        self._tokens_api = client.oauth.tokens_api if self.refreshable else None
        self._clock = clock
        self._log = log
        self._expires_at = float("-inf")
        self._token = ""
        self._holder: Any = None
        self._retry = RetryPolicy("hubspot.token", max_retries=settings.max_retries, clock=clock)
        refresh = settings.refresh_token
        self._refresh_token = refresh.get_secret_value() if refresh else ""
        for secret in (settings.access_token, settings.client_secret, settings.refresh_token):
            register_secret(secret.get_secret_value() if secret else None)
        if settings.access_token is not None:
            self._token = settings.access_token.get_secret_value()
            self._expires_at = float("inf")

    def __repr__(self) -> str:
        return f"HubSpotAuth(flow={self.flow!r})"

    @property
    def token(self) -> str:
        """The access token in use (private: not for logs)."""
        return self._token

    def attach(self, holder: Any) -> None:
        """Keep every API object of `holder` on the current token."""
        self._holder = holder
        self._apply()

    def ensure_fresh(self) -> None:
        """Refresh an OAuth access token that is missing or close to its expiry."""
        if self.refreshable and self._clock.monotonic() >= self._expires_at - REFRESH_MARGIN:
            self.refresh()

    def refresh(self) -> None:
        """Trade the refresh token for a new access token; AuthError when HubSpot refuses it.

        An outage of the token endpoint (5xx, 429, no connection) is retried `max_retries`
        times with backoff, then is a ServerError (transient).
        """
        answer = self._retry.run(lambda _attempt: self._create(), _classify_refresh)
        self._token = str(answer.access_token)
        register_secret(self._token)
        lifetime = float(answer.expires_in or 0)
        self._expires_at = self._clock.monotonic() + lifetime
        if answer.refresh_token and answer.refresh_token != self._refresh_token:
            register_secret(answer.refresh_token)  # HubSpot keeps it today; use it if it rotates
            self._refresh_token = str(answer.refresh_token)
        self._log.info("hubspot.token_refreshed", expires_in=lifetime)
        self._apply()

    def _create(self) -> Any:
        assert self._tokens_api is not None
        s = self._settings
        try:
            return self._tokens_api.create(
                grant_type="refresh_token",
                client_id=s.client_id,
                client_secret=s.client_secret.get_secret_value(),
                refresh_token=self._refresh_token,
                _request_timeout=s.timeout_seconds,
            )
        except OAuthApiException as exc:
            raise _refusal(exc) from None
        except urllib3.exceptions.HTTPError as exc:
            raise ServerError(f"HubSpot token endpoint: {type(exc).__name__}") from None

    def call(
        self,
        kind: str,
        attempts: Callable[[frozenset[int]], T],
        passthrough: frozenset[int],
        errors: tuple[type[Exception], ...],
        calls: Any,
    ) -> T:
        """`attempts(passthrough)` on a fresh token; after a 401, one refresh and one more try.

        A write is sent again only when the 401 says the token was expired or invalid, which
        HubSpot answers before applying anything.
        """
        if not self.refreshable:
            return attempts(passthrough)
        self.ensure_fresh()
        try:
            return attempts(passthrough | {401})
        except errors as exc:
            if getattr(exc, "status", None) != 401 or 401 in passthrough:
                raise
            category = error_fields(exc)[0]
            if kind == "write" and category not in UNAUTHENTICATED:
                # the write may have been applied: it is never sent again
                raise _never_resend(exc).error from None
            self._log.warning("hubspot.token_refresh_after_401", kind=kind, category=category)
            calls.add("token_refresh_after_401")
            self.refresh()
        try:
            return attempts(passthrough)
        except AuthError as exc:
            raise AuthError(
                f"HubSpot refused a freshly refreshed OAuth token ({exc.code or 401}): check "
                "the app's scopes (crm.objects.contacts.read and .write)",
                service="hubspot",
                code=exc.code,
            ) from None

    def _apply(self) -> None:
        if self._holder is None:
            return
        for value in vars(self._holder).values():
            configuration = getattr(getattr(value, "api_client", None), "configuration", None)
            if configuration is not None and hasattr(configuration, "access_token"):
                configuration.access_token = self._token

    def identity(self, client: HubSpot) -> str:
        """Who the token acts as: the flow, and for OAuth the user, hub and app."""
        if not self.refreshable:
            return "private_app"
        try:
            info = client.oauth.access_tokens_api.get(token=self._token)
        except (OAuthApiException, urllib3.exceptions.HTTPError) as exc:
            return f"oauth (identity unavailable: {type(exc).__name__})"
        return f"oauth as {info.user} (hub {info.hub_id}, app {info.app_id})"


def _classify_refresh(outcome: object, _attempt: int) -> Decision:
    """An outage of the token endpoint is retried; a refusal (or success) is final."""
    return Retry() if isinstance(outcome, ServerError) else None


def _never_resend(exc: Exception) -> NeverResend:
    """A write refused with a 401 that does not say the token was bad may have been applied."""
    decision = classify_error(exc)
    assert isinstance(decision, Raise), "a 401 is never retried"
    return NeverResend(decision.error)


def _refusal(exc: OAuthApiException) -> AuthError | ServerError:
    status = int(exc.status or 0)
    if status == 0 or status >= 500 or status == 429:
        return ServerError(f"HubSpot token endpoint: HTTP {status}", status=status)
    try:
        body = json.loads(exc.body or "{}")
    except (ValueError, TypeError):
        body = {}
    body = body if isinstance(body, dict) else {}
    code = str(body.get("status") or body.get("category") or f"HTTP {status}")
    message = scrub(str(body.get("message") or ""))
    detail = f"{code}: {message}" if message else code
    if code == "BAD_REFRESH_TOKEN":
        return AuthError(
            f"HubSpot refused the refresh token ({detail}): {REINSTALL}",
            service="hubspot",
            code=code,
        )
    return AuthError(
        f"HubSpot refused the OAuth app's credentials ({detail}): check client_id and "
        "client_secret",
        service="hubspot",
        code=code,
    )
