"""How the Salesforce connector talks to an org: the HTTP session, retries, and error translation.

Library errors are translated here and nowhere else:

    SalesforceExpiredSession (401)               -> renewed once by logging in again, else
                                                    AuthError(service="salesforce")
    failed login (SOAP fault, OAuth error body)  -> AuthError carrying the provider's code
    SalesforceRefusedRequest REQUEST_LIMIT_...   -> QuotaExhausted (stop the source for the day)
    SalesforceMalformedRequest (MALFORMED_QUERY) -> ValidationError (a FatalError) naming the error
    connection errors and 5xx                    -> retried `max_retries` times (the one
                                                    `crm_sync.retry.RetryPolicy`), then ServerError

simple-salesforce always builds https:// URLs; for a plain-http `instance_url` or `login_url`
(the local emulator) a requests adapter sends those calls to http:// instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from connectors import call_log
from connectors.base import CallCounter
from connectors.salesforce.auth import SalesforceAuth, SalesforceSession
from connectors.salesforce.settings import SalesforceSettings
from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.errors import (
    AuthError,
    CrmSyncError,
    FatalError,
    NotFoundError,
    QuotaExhausted,
    ServerError,
    ValidationError,
)
from crm_sync.logs import register_secret
from crm_sync.retry import Decision, Retry, RetryPolicy

T = TypeVar("T")
QUOTA_MESSAGE = "Salesforce daily API request limit reached; source stopped until it refills"


class PlainHttpAdapter(HTTPAdapter):
    """Sends requests for some https:// origins to other origins (plain-http emulators).

    It also applies a default timeout: simple-salesforce sends its SOAP login without one.
    """

    def __init__(self, rewrites: dict[str, str], timeout: float | None = None) -> None:
        super().__init__()
        self.rewrites = rewrites
        self.default_timeout = timeout

    def send(  # noqa: PLR0917 - the signature of requests' HTTPAdapter.send
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        request.url = rewrite_url(request.url or "", self.rewrites)
        timeout = self.default_timeout if timeout is None else timeout
        return super().send(request, stream, timeout, verify, cert, proxies)


def rewrite_url(url: str, rewrites: Mapping[str, str]) -> str:
    """`url` with its origin replaced when that origin is one of `rewrites`' keys."""
    for source, target in rewrites.items():
        if url.lower().startswith(source.lower() + "/"):
            return target + url[len(source) :]
    return url


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def build_session(settings: SalesforceSettings) -> requests.Session:
    """A requests session for simple-salesforce, routed to plain-http hosts where configured."""
    session = requests.Session()
    session.verify = settings.verify_tls
    call_log.attach(session, "salesforce")  # DEBUG: method, path, status, duration per call
    fallback = PlainHttpAdapter({}, settings.timeout_seconds)
    session.mount("https://", fallback)
    session.mount("http://", fallback)
    for url in (settings.instance_url, settings.login_url):
        route_plain_http(session, url, settings.timeout_seconds)
    if settings.login_url:
        source = f"https://{settings.domain}.salesforce.com"
        adapter = PlainHttpAdapter({source: _origin(settings.login_url)}, settings.timeout_seconds)
        session.mount(source + "/", adapter)
    return session


def route_plain_http(session: requests.Session, url: str | None, timeout: float) -> None:
    """Send simple-salesforce's https:// calls for a plain-http `url`'s origin to http://."""
    if not url or not url.startswith("http://"):
        return
    origin = _origin(url)
    source = "https://" + origin.removeprefix("http://")
    # the "/" keeps :80 from matching :8080
    session.mount(source + "/", PlainHttpAdapter({source: origin}, timeout))


def _errors_of(exc: SalesforceError) -> tuple[str, str]:
    """(errorCode, message) of a REST error body `[{"message", "errorCode"}]`."""
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    return "", ""


def translate(kind: str, exc: SalesforceError) -> CrmSyncError:
    """Our error for a simple-salesforce error; never quotes a header, key or session id."""
    code, message = _errors_of(exc)
    if isinstance(exc, SalesforceAuthenticationFailed):
        code = str(exc.code or "LOGIN_FAILED")
        return AuthError(
            f"Salesforce login failed ({code}): check username, password and security token",
            service="salesforce",
            code=code,
        )
    if isinstance(exc, SalesforceExpiredSession):
        return AuthError(
            f"Salesforce refused the session ({code or 'HTTP 401'}): check the source's "
            "credentials (settings.auth)",
            service="salesforce",
            code=code,
        )
    if isinstance(exc, SalesforceRefusedRequest) and code == "REQUEST_LIMIT_EXCEEDED":
        return QuotaExhausted(QUOTA_MESSAGE, status=403, code=code)
    if isinstance(exc, SalesforceMalformedRequest):
        return ValidationError(
            f"Salesforce rejected the {kind}: {code}: {message}", status=400, code=code
        )
    if isinstance(exc, SalesforceResourceNotFound):
        return NotFoundError(f"Salesforce {kind}: not found ({code})", status=404, code=code)
    return FatalError(f"Salesforce {kind}: HTTP {exc.status} {code}: {message}", status=exc.status)


def _ids_of(identity_url: str | None) -> tuple[str | None, str | None]:
    """(org id, user id) from a token answer's `id` URL (`.../id/00D.../005...`)."""
    parts = (identity_url or "").rstrip("/").split("/")
    if len(parts) >= 3 and parts[-3] == "id":
        return parts[-2], parts[-1]
    return None, None


def classify(outcome: object, _attempt: int) -> Decision:
    """5xx and connection errors may pass; anything else is final (re-raised as is)."""
    return Retry() if isinstance(outcome, ServerError) else None


class _SessionRefused(Exception):
    """A 401 from the REST API; `code` is its errorCode (INVALID_SESSION_ID when expired)."""

    def __init__(self, code: str, error: CrmSyncError) -> None:
        super().__init__(code)
        self.code = code
        self.error = error


class SalesforceApi:
    """One org's simple-salesforce client: connected on first use, every call counted and retried.

    `calls` is the connector's counter and `log` its bound logger, so the figures and log lines
    stay the connector's own. A session refused mid-run with INVALID_SESSION_ID is renewed once
    per call by logging in again (every flow but `session`) and the call is sent again; a write
    is sent again only when the 401 says INVALID_SESSION_ID, which Salesforce answers before
    applying anything.
    """

    def __init__(
        self,
        settings: SalesforceSettings,
        calls: CallCounter,
        log: Any,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.calls = calls
        self.log = log
        self._retry = RetryPolicy("salesforce", max_retries=settings.max_retries, clock=clock)
        self._sf: Salesforce | None = None
        self._session: requests.Session | None = None
        self.auth = SalesforceAuth(settings, self.http, clock)
        self.current: SalesforceSession | None = None
        self.api_usage: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"SalesforceApi(flow={self.auth.flow!r})"

    def http(self) -> requests.Session:
        """The one requests session every call of this org goes through."""
        if self._session is None:
            self._session = build_session(self.settings)
        return self._session

    def client(self) -> Salesforce:
        """The simple-salesforce client, logging in on first use (and after an expiry)."""
        if self._sf is None:
            if self.auth.renewable:
                session = self.call("login", self.auth.login)
                self.log.info("salesforce.login", flow=session.flow)
                for warning in self.auth.warnings():
                    self.log.warning("salesforce.password_login_retiring", advice=warning)
            else:
                session = self.auth.login()  # no network call: the session is given
            register_secret(session.access_token)
            route_plain_http(self.http(), session.instance_url, self.settings.timeout_seconds)
            self.current = session
            self._sf = Salesforce(
                instance_url=session.instance_url,
                session_id=session.access_token,
                version=self.settings.api_version,
                session=self.http(),
            )
        return self._sf

    def request(self, kind: str, fn: Callable[[Salesforce], T], *, write: bool = False) -> T:
        """`fn(client)` through `call`, renewing an expired session once."""
        renewed = False
        while True:
            sf = self.client()
            try:
                return self.call(kind, functools.partial(fn, sf))
            except _SessionRefused as refused:
                expired = refused.code == "INVALID_SESSION_ID"
                if renewed or not self.auth.renewable or (write and not expired):
                    raise self._refusal(kind, refused, renewed, write) from None
                self.log.warning("salesforce.session_renewing", kind=kind, flow=self.auth.flow)
                self.calls.add("session_renewed")
                self._sf = None
                renewed = True

    def _refusal(
        self, kind: str, refused: _SessionRefused, renewed: bool, write: bool
    ) -> AuthError:
        code = refused.code or "HTTP 401"
        if renewed:
            message = f"Salesforce refused a fresh {self.auth.flow} session ({code})"
        elif not self.auth.renewable:
            message = (
                f"Salesforce session expired ({code}) and auth: session cannot renew it: give "
                "a fresh session_id, or use auth: jwt or client_credentials"
            )
        elif write:
            message = (
                f"Salesforce answered 401 ({code}) to a {kind} without saying the session "
                "expired; the write is not sent again"
            )
        else:
            return refused.error if isinstance(refused.error, AuthError) else AuthError(code)
        return AuthError(message, service="salesforce", code=refused.code)

    def call(self, kind: str, fn: Callable[[], T]) -> T:
        """Run one API call with bounded retries for connection errors and 5xx."""

        def attempt_once(_attempt: int) -> T:
            self.calls.add(kind)
            try:
                result = fn()
            except SalesforceExpiredSession as exc:
                raise _SessionRefused(_errors_of(exc)[0], translate(kind, exc)) from None
            except SalesforceError as exc:
                if exc.status < 500 or isinstance(exc, SalesforceAuthenticationFailed):
                    raise translate(kind, exc) from None
                status = exc.status
                raise ServerError(f"Salesforce {kind}: HTTP {status}", status=status) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise ServerError(f"Salesforce {kind}: {type(exc).__name__}") from None
            self._note_usage()
            return result

        # ServerError includes the token endpoint's own 5xx or connection error
        return self._retry.run(attempt_once, classify, kind=kind)

    def _note_usage(self) -> None:
        usage = self._sf.api_usage.get("api-usage") if self._sf else None
        if usage is not None:
            self.api_usage = (usage.used, usage.total)
            self.log.debug("salesforce.api_usage", used=usage.used, total=usage.total)

    def query(self, soql: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """The first page of a SOQL query."""
        timeout = self.settings.timeout_seconds
        result: dict[str, Any] = self.request(
            "query", lambda sf: sf.query(soql, headers=headers or {}, timeout=timeout)
        )
        return result

    def query_more(self, next_url: str) -> dict[str, Any]:
        """The page at a `nextRecordsUrl`."""
        timeout = self.settings.timeout_seconds
        result: dict[str, Any] = self.request(
            "query_more",
            lambda sf: sf.query_more(next_url, identifier_is_url=True, timeout=timeout),
        )
        return result

    def rest(self, kind: str, path: str, method: str = "GET", **kwargs: Any) -> Any:
        """A REST call relative to the versioned data API, counted as `kind`."""
        timeout = self.settings.timeout_seconds
        return self.request(
            kind,
            lambda sf: sf.restful(path, method=method, timeout=timeout, **kwargs),
            write=method not in ("GET", "HEAD"),
        )

    def identity(self) -> str:
        """Who the session acts as: `username (user id, org id)`.

        From OAuth userinfo when the session may read it (the `openid` scope, or a SOAP or
        given session); otherwise from the token answer's `id` URL and the configured username.
        """
        self.client()
        org, user = _ids_of(self.current.identity_url if self.current else None)
        try:
            info = self.request("identity", lambda sf: sf.oauth2("userinfo")) or {}
        except AuthError:
            raise
        except CrmSyncError:
            info = {}
        name = info.get("preferred_username") or self.settings.username
        user = info.get("user_id") or user or "?"
        org = info.get("organization_id") or org or "?"
        if not name:
            return f"user {user} (org {org}; the app's openid scope would show the username)"
        return f"{name} (user {user}, org {org})"

    def close(self) -> None:
        """Release the HTTP session; the next call connects again."""
        if self._session is not None:
            self._session.close()
        self._sf = None
        self._session = None
