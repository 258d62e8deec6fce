"""The OAuth side of the HubSpot emulator: refresh tokens, expiring access tokens, token info.

`POST /oauth/v1/token` (form-encoded `grant_type=refresh_token&client_id&client_secret&
refresh_token`) answers `{"token_type": "bearer", "refresh_token", "access_token",
"expires_in"}`; access tokens expire after `access_token_ttl` seconds (HubSpot: 1800) and are
then refused with 401 EXPIRED_AUTHENTICATION. A refresh token that is unknown or revoked (the
app was uninstalled) is 400 BAD_REFRESH_TOKEN. `GET /oauth/v1/access-tokens/{token}` tells
who a token acts for.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from crm_sync.clock import Clock

Reply = tuple[int, dict[str, Any]]
SCOPES = ["crm.objects.contacts.read", "crm.objects.contacts.write", "oauth"]


def oauth_error(status: str, message: str) -> dict[str, Any]:
    """HubSpot's OAuth error body: the code is in `status`."""
    return {"status": status, "message": message, "correlationId": str(uuid.uuid4())}


@dataclass
class HubSpotOAuth:
    """One OAuth app installed in one portal, with the refresh token the install gave."""

    clock: Clock
    access_token_ttl: float = 1800.0
    client_id: str = "9f1c2b7e-sandbox-client-id"
    client_secret: str = field(default="sandbox-client-secret", repr=False)
    refresh_token: str = field(default="na1-sandbox-refresh-token", repr=False)
    hub_id: int = 242_424
    app_id: int = 3_141_592
    user: str = "installer@example.com"
    revoked: bool = False
    failures: list[int] = field(default_factory=list)  # statuses to answer next (outages)
    _issued: dict[str, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def token(self, body: bytes) -> Reply:
        """The token endpoint's answer to a form-encoded POST."""
        if self.failures:
            return self.failures.pop(0), oauth_error("INTERNAL_ERROR", "internal error")
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if form.get("grant_type") != "refresh_token":
            return 400, oauth_error("BAD_GRANT_TYPE", "grant_type must be refresh_token here")
        if form.get("client_id") != self.client_id:
            return 400, oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
        if not secrets.compare_digest(form.get("client_secret", ""), self.client_secret):
            # the exact code HubSpot answers for a wrong secret is not documented (likely)
            return 400, oauth_error("BAD_CLIENT_SECRET", "client secret does not match")
        given = form.get("refresh_token", "")
        if self.revoked or not secrets.compare_digest(given, self.refresh_token):
            return 400, oauth_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        access = f"CJ{secrets.token_urlsafe(48)}"
        with self._lock:
            self._issued[access] = self.clock.monotonic()
        return 200, {
            "token_type": "bearer",
            "refresh_token": self.refresh_token,
            "access_token": access,
            "expires_in": int(self.access_token_ttl),
        }

    def expired_for(self, access_token: str) -> float | None:
        """Seconds since the token expired (<= 0 while it is valid); None if never issued."""
        with self._lock:
            issued = self._issued.get(access_token)
        if issued is None:
            return None
        return self.clock.monotonic() - (issued + self.access_token_ttl)

    def issued_tokens(self) -> list[str]:
        """Every access token issued so far (canary tests look for them)."""
        with self._lock:
            return list(self._issued)

    def expire_all(self) -> None:
        """Every access token issued so far is expired from now on."""
        with self._lock:
            for token in self._issued:
                self._issued[token] = self.clock.monotonic() - self.access_token_ttl - 1

    def info(self, access_token: str) -> Reply:
        """`GET /oauth/v1/access-tokens/{token}`: who the token acts for, and for how long."""
        left = self.expired_for(access_token)
        if left is None or left > 0:
            return 404, oauth_error("NOT_FOUND", "access token not found or expired")
        return 200, {
            "token": access_token,
            "user": self.user,
            "hub_domain": "sandbox.example.com",
            "scopes": SCOPES,
            "hub_id": self.hub_id,
            "app_id": self.app_id,
            "expires_in": int(-left),
            "user_id": 7_654_321,
            "token_type": "access",
        }
