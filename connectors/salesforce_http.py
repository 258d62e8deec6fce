"""How the Salesforce connector talks to an org: the HTTP session, retries, and error translation.

Library errors are translated here and nowhere else:

    SalesforceExpiredSession / failed login      -> AuthError(service="salesforce")
    SalesforceRefusedRequest REQUEST_LIMIT_...   -> QuotaExhausted (stop the source for the day)
    SalesforceMalformedRequest (MALFORMED_QUERY) -> ValidationError (a FatalError) naming the error
    connection errors and 5xx                    -> retried `max_retries` times, then ServerError

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

from connectors.base import CallCounter
from connectors.salesforce_settings import SalesforceSettings
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
    rewrites: dict[str, str] = {}
    for url in (settings.instance_url, settings.login_url):
        if url and url.startswith("http://"):
            origin = _origin(url)
            rewrites["https://" + origin.removeprefix("http://")] = origin
    if settings.login_url:
        rewrites[f"https://{settings.domain}.salesforce.com"] = _origin(settings.login_url)
    fallback = PlainHttpAdapter({}, settings.timeout_seconds)
    session.mount("https://", fallback)
    session.mount("http://", fallback)
    if rewrites:
        adapter = PlainHttpAdapter(rewrites, settings.timeout_seconds)
        for source in rewrites:
            session.mount(source + "/", adapter)  # the "/" keeps :80 from matching :8080
    return session


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
            f"Salesforce refused the session ({code or 'HTTP 401'}): renew the session id "
            "or log in with username, password and security token",
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


class SalesforceApi:
    """One org's simple-salesforce client: connected on first use, every call counted and retried.

    `calls` is the connector's counter and `log` its bound logger, so the figures and log lines
    stay the connector's own.
    """

    def __init__(
        self,
        settings: SalesforceSettings,
        calls: CallCounter,
        log: Any,
        sleep: Callable[[float], None],
    ) -> None:
        self.settings = settings
        self.calls = calls
        self.log = log
        self._sleep = sleep
        self._sf: Salesforce | None = None
        self._session: requests.Session | None = None
        self.api_usage: tuple[int, int] | None = None

    def client(self) -> Salesforce:
        """The simple-salesforce client, logging in on first use when no session is given."""
        if self._sf is None:
            if self.settings.session_id and self.settings.instance_url:
                self._sf = self._connect()  # no network call: the session is given
            else:
                self._sf = self.call("login", self._connect)
            register_secret(self._sf.session_id)
        return self._sf

    def _connect(self) -> Salesforce:
        s = self.settings
        if self._session is None:
            self._session = build_session(s)
        if s.instance_url and s.session_id:
            return Salesforce(
                instance_url=s.instance_url,
                session_id=s.session_id.get_secret_value(),
                version=s.api_version,
                session=self._session,
            )
        # the settings validator guarantees all three
        assert s.username is not None
        assert s.password is not None
        assert s.security_token is not None
        return Salesforce(
            username=s.username,
            password=s.password.get_secret_value(),
            security_token=s.security_token.get_secret_value(),
            domain=s.domain,
            version=s.api_version,
            session=self._session,
        )

    def call(self, kind: str, fn: Callable[[], T]) -> T:
        """Run one API call with bounded retries for connection errors and 5xx."""
        attempts = self.settings.max_retries + 1
        for attempt in range(attempts):
            self.calls.add(kind)
            try:
                result = fn()
            except SalesforceError as exc:
                if exc.status < 500 or isinstance(exc, SalesforceAuthenticationFailed):
                    raise translate(kind, exc) from None
                error = ServerError(f"Salesforce {kind}: HTTP {exc.status}", status=exc.status)
            except (requests.ConnectionError, requests.Timeout) as exc:
                error = ServerError(f"Salesforce {kind}: {type(exc).__name__}")
            else:
                self._note_usage()
                return result
            if attempt + 1 < attempts:
                delay = min(30.0, 0.5 * 2**attempt)
                self.log.warning("salesforce.retry", kind=kind, attempt=attempt + 1, delay=delay)
                self._sleep(delay)
        raise error

    def _note_usage(self) -> None:
        usage = self._sf.api_usage.get("api-usage") if self._sf else None
        if usage is not None:
            self.api_usage = (usage.used, usage.total)
            self.log.debug("salesforce.api_usage", used=usage.used, total=usage.total)

    def query(self, soql: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """The first page of a SOQL query."""
        sf = self.client()
        timeout = self.settings.timeout_seconds
        call = functools.partial(sf.query, soql, headers=headers or {}, timeout=timeout)
        result: dict[str, Any] = self.call("query", call)
        return result

    def query_more(self, next_url: str) -> dict[str, Any]:
        """The page at a `nextRecordsUrl`."""
        sf = self.client()
        timeout = self.settings.timeout_seconds
        call = functools.partial(sf.query_more, next_url, identifier_is_url=True, timeout=timeout)
        result: dict[str, Any] = self.call("query_more", call)
        return result

    def rest(self, kind: str, path: str, method: str = "GET", **kwargs: Any) -> Any:
        """A REST call relative to the versioned data API, counted as `kind`."""
        sf = self.client()
        timeout = self.settings.timeout_seconds
        call = functools.partial(sf.restful, path, method=method, timeout=timeout, **kwargs)
        return self.call(kind, call)

    def close(self) -> None:
        """Release the HTTP session; the next call connects again."""
        if self._session is not None:
            self._session.close()
        self._sf = None
        self._session = None
