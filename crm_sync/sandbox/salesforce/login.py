"""The ways into the Salesforce emulator: SOAP login, the OAuth token endpoint, userinfo, and
the settings a source needs for each flow. Mixed into `SalesforceEmulator`, which owns the state
(`username`, `session_id`, `sessions`, `oauth_app`, `token_endpoint`, `calls`).
"""

from __future__ import annotations

import collections
import html
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crm_sync.sandbox.salesforce.keys import sandbox_key_pair
from crm_sync.sandbox.salesforce.oauth import OAuthApp, SessionBook, TokenEndpoint
from crm_sync.sandbox.salesforce.soap import login_fault, login_response, parse_login

LAST_SOAP_LOGIN_VERSION = 64.0
SANDBOX_PASSWORD = "sandbox-password"  # noqa: S105 - the emulator's well-known login
SANDBOX_SECURITY_TOKEN = "sandbox-token"  # noqa: S105 - the emulator's well-known login


def errors(status: int, code: str, message: str) -> JSONResponse:
    """Salesforce's REST error body: a list of `{"message", "errorCode"}`."""
    return JSONResponse([{"message": message, "errorCode": code}], status_code=status)


class LoginEndpoints:
    """SOAP login, OAuth token and userinfo handlers, and per-flow source settings."""

    username: str
    session_id: str
    _secret: str
    sessions: SessionBook
    oauth_app: OAuthApp
    token_endpoint: TokenEndpoint
    calls: collections.Counter[str]
    token_failures: list[int]

    def auth_settings(self, url: str, auth: str = "session") -> dict[str, Any]:
        """A Salesforce source's settings keys for one auth flow on this org served at `url`."""
        app = self.oauth_app
        flows: dict[str, dict[str, Any]] = {
            "jwt": {
                "consumer_key": app.consumer_key,
                "username": self.username,
                "private_key": sandbox_key_pair().private_key,
            },
            "client_credentials": {
                "consumer_key": app.consumer_key,
                "consumer_secret": app.consumer_secret,
            },
            "password": {
                "username": self.username,
                "password": SANDBOX_PASSWORD,
                "security_token": SANDBOX_SECURITY_TOKEN,
            },
        }
        if auth == "session":
            return {"instance_url": url, "session_id": self.session_id}
        return {"auth": auth, **flows[auth], "login_url": url}

    def _user_of(self, request: Request) -> str | None:
        """The user of the request's bearer session, or None when it is not a live one."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        if token == self.session_id:
            return self.username
        return self.sessions.user_of(token)

    async def _login(self, request: Request) -> Response:
        self.calls["login"] += 1
        version = request.path_params["version"]
        if not re.fullmatch(r"\d+\.\d+", version) or float(version) > LAST_SOAP_LOGIN_VERSION:
            return errors(404, "NOT_FOUND", "The requested resource does not exist")
        username, secret = parse_login((await request.body()).decode("utf-8", "replace"))
        if username != self.username or secret != self._secret:
            return Response(login_fault(), status_code=500, media_type="text/xml")
        server_url = f"{request.base_url}services/Soap/u/{version}/00D5g0000000001"
        session = self.sessions.issue(self.username)
        body = login_response(html.escape(server_url), html.escape(session))
        return Response(body, media_type="text/xml")

    def fail_next_token(self, count: int, status: int = 503) -> None:
        """Answer the next `count` token requests with `status` (an outage of the login host)."""
        self.token_failures.extend([status] * count)

    async def _token(self, request: Request) -> Response:
        self.calls["token"] += 1
        if self.token_failures:
            status = self.token_failures.pop(0)
            body = {"error": "server_error", "error_description": "try again later"}
            return JSONResponse(body, status_code=status)
        base_url = str(request.base_url).rstrip("/")
        status, body = self.token_endpoint.answer(
            await request.body(), request.headers.get("authorization", ""), base_url
        )
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    async def _userinfo(self, request: Request) -> Response:
        self.calls["userinfo"] += 1
        username = self._user_of(request)
        if username is None:
            return Response("Bad_OAuth_Token", status_code=403, media_type="text/plain")
        token = request.headers.get("authorization", "").partition(" ")[2]
        needed = {"openid", "full"} if request.url.path.endswith("userinfo") else {"id", "full"}
        if not needed & self.sessions.scopes_of(token):
            return Response("Insufficient scope", status_code=403, media_type="text/plain")
        base_url = str(request.base_url).rstrip("/")
        return JSONResponse(self.token_endpoint.userinfo(username, base_url))
