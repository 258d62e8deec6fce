"""The enrichment API client (FullEnrich / DeepEnrich): sync, thread-safe, never pays twice.

It speaks the wire dialect of `api_version` (`wire_v1.py`, `wire_v2.py`) and hands the
pipeline the internal model only.

Every request goes through the process-wide rate limiter (`ratelimit.py`), is logged at debug
(endpoint, status, duration, attempt), and is retried when retrying is safe:

    answer / failure                GET (idempotent)      POST /contact/enrich/bulk (paid)
    ------------------------------  --------------------  ------------------------------------
    connect error / connect timeout retry                 retry: the request never left us
    / pool timeout
    429                             retry                 retry: refused before any work
    503                             retry                 retry: "unavailable" = not processed
    500, 502, 504, other 5xx        retry                 OutcomeUnknown, never resent
    read timeout, read/write error, retry                 OutcomeUnknown, never resent
    remote disconnect

Why 503 and 429 only on the POST: both mean the server (or its front proxy) refused the request
before handing it to the application, so no enrichment was created. A 500 may come after the
enrichment was created and stored; a 502 or 504 from a proxy means the upstream was reached (or
may have been) and did not answer in time, which is exactly the case where work may have
started. The API has no idempotency key, so a resend is a second paid enrichment: for those we
raise `OutcomeUnknown` and the caller marks the batch `in_doubt`.

Backoff is capped exponential with full jitter: `uniform(0, min(cap, base * 2**(attempt-1)))`,
raised to `Retry-After` when the server sends one (the API does not document it). A 429
without `Retry-After` means the API's window (60 s) is full, perhaps by another client of the
same key: the retries are then spread so that the last one comes at least one whole rate window
(the limiter's `window`) after the first 429, and a full window never exhausts them.

`submit` takes two hooks for the pipeline: `on_send` runs once, inside the limiter slot, right
before the first attempt leaves (the pipeline marks the batch `sending` there, so a batch is
never `sending` while it merely waits for a slot); `stop` (`ctx.stopping`) ends a wait for a
slot or a backoff between attempts with `NotSent`: nothing was sent, or every attempt was
refused before any work, so the caller may send the batch again later.

Which exception each answer maps to is in `responses.py`; the counters are in `stats.py`.
Exceptions carry only codes and statuses: the API key never reaches a message, a repr or a
traceback.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.config import EnrichmentConfig
from crm_sync.enrichment.models import BulkRequest, EnrichmentResult, EnrichmentStatus
from crm_sync.enrichment.ratelimit import CALL, POLL, RateLimiter, limiter_for
from crm_sync.enrichment.responses import (
    api_error,
    parse_result,
    raise_for_status,
    read_json,
    validated_request,
)
from crm_sync.enrichment.stats import ClientStats
from crm_sync.enrichment.wire import WireDialect, dialect_for
from crm_sync.errors import NotSent, OutcomeUnknown, ServerError
from crm_sync.logs import MASK, get_logger, register_secret

__all__ = [
    "CODE_IN_PROGRESS",
    "ENDPOINT_CREDITS",
    "ENDPOINT_RESULT",
    "ENDPOINT_SUBMIT",
    "ENDPOINT_VERIFY",
    "ClientStats",
    "EnrichmentClient",
]


def _log() -> Any:
    """Bound per call, not at import: a logger bound at import keeps the processors and level
    in force at that moment and would ignore `configure_logging` run later by the CLI."""
    return get_logger(component="enrichment.client")


ENDPOINT_VERIFY = "verify"
ENDPOINT_CREDITS = "credits"
ENDPOINT_SUBMIT = "submit"
ENDPOINT_RESULT = "result"
CODE_IN_PROGRESS = "error.enrichment.in_progress"
# Transport failures that prove the request never reached the server.
_NEVER_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
_POST_RETRYABLE_STATUSES = frozenset({429, 503})


class EnrichmentClient:
    """Talks to one enrichment account; share one instance (or many) across worker threads."""

    def __init__(
        self,
        base_url: str,
        api_key: str | SecretStr,
        *,
        rate_limit_per_minute: int = 60,
        rate_limit_window: float = 60.0,
        poll_share: float = 0.0,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff_cap: float = 60.0,
        backoff_base: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        limiter: RateLimiter | None = None,
        api_version: str = "v1",
        webhook_events: tuple[str, ...] = (),
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self._key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        secret = self._key.get_secret_value()
        register_secret(secret)
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_cap = backoff_cap
        self.backoff_base = backoff_base
        self.limiter: RateLimiter = limiter or limiter_for(
            self.base_url,
            secret,
            rate_limit_per_minute,
            window=rate_limit_window,
            poll_share=poll_share,
            clock=clock,
        )
        self.stats = ClientStats()
        self.dialect: WireDialect = dialect_for(api_version)
        self.webhook_events = tuple(webhook_events)
        self._clock = clock
        self._rng = rng or random.Random()
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            headers={"Authorization": f"Bearer {secret}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_config(cls, config: EnrichmentConfig, **overrides: Any) -> EnrichmentClient:
        """A client built from the `enrichment:` section; keyword overrides win."""
        kwargs: dict[str, Any] = {
            "rate_limit_per_minute": config.rate_limit_per_minute,
            "rate_limit_window": config.rate_limit_window_seconds,
            "poll_share": config.poll_share,
            "timeout": config.timeout_seconds,
            "max_retries": config.max_retries,
            "backoff_cap": config.backoff_cap_seconds,
            "api_version": config.api_version,
            "webhook_events": config.webhook_events,
        }
        kwargs.update(overrides)
        base_url = kwargs.pop("base_url", config.resolved_base_url)
        api_key = kwargs.pop("api_key", config.api_key)
        return cls(base_url, api_key, **kwargs)

    def __repr__(self) -> str:
        return (
            f"EnrichmentClient(base_url={self.base_url!r}, "
            f"api_version={self.dialect.version!r}, api_key={MASK!r})"
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EnrichmentClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the four endpoints -------------------------------------------------------------------

    def verify_key(self) -> str:
        """The workspace id the key belongs to; raises EnrichmentAuthError when refused."""
        response = self._call(ENDPOINT_VERIFY, "GET", "account/keys/verify")
        self._raise_for_status(ENDPOINT_VERIFY, response)
        body = read_json(response)
        workspace = body.get("workspace_id") if isinstance(body, dict) else None
        if not isinstance(workspace, str) or not workspace:
            raise ServerError(
                "the enrichment API answered the key check without a workspace_id",
                status=response.status_code,
            )
        return workspace

    def credits(self) -> int:
        """The account's credit balance."""
        response = self._call(ENDPOINT_CREDITS, "GET", "account/credits")
        self._raise_for_status(ENDPOINT_CREDITS, response)
        body = read_json(response)
        balance = body.get("balance") if isinstance(body, dict) else None
        if isinstance(balance, bool) or not isinstance(balance, int | float):
            raise ServerError(
                "the enrichment API answered the credits call without a numeric balance",
                status=response.status_code,
            )
        return int(balance)

    def submit(
        self,
        request: BulkRequest | Mapping[str, Any],
        *,
        on_send: Callable[[], None] | None = None,
        stop: threading.Event | None = None,
    ) -> str:
        """Start one paid bulk enrichment; return its enrichment_id.

        Raises OutcomeUnknown when the POST may have reached the API without us seeing the
        answer: the caller must then never resend this batch automatically. Raises NotSent when
        `stop` was set before the POST left (or between attempts the API refused before any
        work). `on_send` runs once, in the limiter slot, just before the first attempt; if it
        raises, nothing is sent.
        """
        body = self.dialect.request_body(
            validated_request(request), contact_events=self.webhook_events
        )
        response = self._call(
            ENDPOINT_SUBMIT, "POST", "contact/enrich/bulk", body=body, on_send=on_send, stop=stop
        )
        self._raise_for_status(ENDPOINT_SUBMIT, response)
        answer = read_json(response)
        enrichment_id = answer.get("enrichment_id") if isinstance(answer, dict) else None
        if not isinstance(enrichment_id, str) or not enrichment_id:
            # The API accepted the request (2xx) but we cannot tell which enrichment it made.
            raise OutcomeUnknown(
                f"the enrichment API answered {response.status_code} to the bulk POST "
                "without an enrichment_id; the batch may have been enriched (and charged)"
            )
        return enrichment_id

    def get_result(self, enrichment_id: str, *, force_results: bool = False) -> EnrichmentResult:
        """The enrichment's current state; IN_PROGRESS while it runs (either wire variant)."""
        if not enrichment_id or not enrichment_id.strip():
            raise ValueError("enrichment_id must not be empty")
        path = f"contact/enrich/bulk/{quote(enrichment_id, safe='')}"
        params = {"forceResults": "true" if force_results else "false"}
        response = self._call(ENDPOINT_RESULT, "GET", path, params=params)
        body = read_json(response)
        status = response.status_code
        if status == 400 and api_error(response).code == CODE_IN_PROGRESS:
            return EnrichmentResult(id=enrichment_id, status=EnrichmentStatus.IN_PROGRESS)
        if isinstance(body, dict) and (status < 300 or status == 402):
            if status == 402 and not self.dialect.looks_like_result(body):
                self._raise_for_status(ENDPOINT_RESULT, response)
            return parse_result(enrichment_id, self._internal(body, status), status)
        self._raise_for_status(ENDPOINT_RESULT, response)
        return parse_result(enrichment_id, body, status)

    # -- helpers ------------------------------------------------------------------------------

    def _internal(self, body: dict[str, Any], status: int) -> dict[str, Any]:
        """A result body mapped from the configured dialect; ServerError if of another one."""
        try:
            return self.dialect.to_internal(body)
        except ValueError:
            raise ServerError(
                f"the enrichment API answered {status} with a result that is not "
                f"{self.dialect.version}; check enrichment.api_version and base_url",
                status=status,
            ) from None

    def _raise_for_status(self, endpoint: str, response: httpx.Response) -> None:
        """Raise what a non-2xx answer maps to (see `responses.py`)."""
        raise_for_status(
            endpoint,
            response,
            key=self._key,
            max_retries=self.max_retries,
            code_map=self.dialect.error_code,
        )

    def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        on_send: Callable[[], None] | None = None,
        stop: threading.Event | None = None,
    ) -> httpx.Response:
        """Send with retries; return the last answer (retriable ones only once retries run out)."""
        idempotent = method == "GET"
        attempt = 0
        window_full_until: float | None = None  # first 429 without Retry-After + rate window
        while True:
            attempt += 1
            try:
                response = self._send_once(
                    endpoint=endpoint,
                    method=method,
                    path=path,
                    params=params,
                    body=body,
                    attempt=attempt,
                    on_send=on_send if attempt == 1 else None,
                    stop=stop,
                )
            except httpx.TransportError as exc:
                failure = type(exc).__name__
                if not idempotent and not isinstance(exc, _NEVER_SENT):
                    raise self._outcome_unknown(endpoint, failure) from None
                if attempt > self.max_retries:
                    raise ServerError(
                        f"cannot reach the enrichment API at {self.base_url} "
                        f"({endpoint}: {failure} after {attempt} attempts)"
                    ) from None
                self._backoff(endpoint, attempt, None, stop=stop)
                continue
            status = response.status_code
            if status != 429 and status < 500:
                return response
            if not idempotent and status not in _POST_RETRYABLE_STATUSES:
                raise self._outcome_unknown(endpoint, f"HTTP {status}")
            if attempt > self.max_retries:
                return response
            if status == 429 and window_full_until is None and not _retry_after(response):
                window = float(getattr(self.limiter, "window", 60.0))
                window_full_until = self._clock.monotonic() + window
            self._backoff(endpoint, attempt, response, stop=stop, until=window_full_until)

    def _send_once(
        self,
        *,
        endpoint: str,
        method: str,
        path: str,
        params: dict[str, str] | None,
        body: dict[str, Any] | None,
        attempt: int,
        on_send: Callable[[], None] | None = None,
        stop: threading.Event | None = None,
    ) -> httpx.Response:
        """One HTTP request inside a limiter slot, counted and logged whatever happens."""
        status: int | None = None
        error: str | None = None
        with self.limiter.slot(POLL if endpoint == ENDPOINT_RESULT else CALL, stop):
            if on_send is not None:
                on_send()
            self.stats.add("calls", endpoint)
            started = self._clock.monotonic()
            try:
                response = self._http.request(method, path, params=params, json=body)
                status = response.status_code
            except httpx.TransportError as exc:
                error = type(exc).__name__
                raise
            finally:
                duration_ms = round((self._clock.monotonic() - started) * 1000, 1)
                _log().debug(
                    "enrichment.call",
                    endpoint=endpoint,
                    method=method,
                    status=status,
                    error=error,
                    attempt=attempt,
                    duration_ms=duration_ms,
                )
        if status == 429:
            self.stats.add("rate_limited", endpoint)
        return response

    def _outcome_unknown(self, endpoint: str, failure: str) -> OutcomeUnknown:
        _log().warning("enrichment.outcome_unknown", endpoint=endpoint, failure=failure)
        return OutcomeUnknown(
            f"the bulk POST to {self.base_url} failed after it was sent ({failure}); "
            "it may have been enriched and charged, so it is not resent"
        )

    def _backoff(
        self,
        endpoint: str,
        attempt: int,
        response: httpx.Response | None,
        *,
        stop: threading.Event | None = None,
        until: float | None = None,
    ) -> None:
        """Sleep before attempt `attempt + 1`; with `until`, leave the remaining retries enough
        time to reach it (the last retry comes after `until`)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        delay = self._rng.uniform(0, ceiling)
        retry_after = _retry_after(response)
        if retry_after is not None:
            delay = min(self.backoff_cap, max(delay, retry_after))
        elif until is not None:
            retries_left = max(1, self.max_retries - attempt + 1)
            delay = max(delay, (until - self._clock.monotonic()) / retries_left)
        self.stats.add("retries", endpoint)
        _log().debug(
            "enrichment.retry", endpoint=endpoint, attempt=attempt, delay_s=round(delay, 3)
        )
        self._pause(delay, stop)

    def _pause(self, delay: float, stop: threading.Event | None) -> None:
        """Sleep `delay` seconds; NotSent as soon as `stop` is set."""
        if self._clock.sleep(delay, stop):
            raise NotSent("stop requested between attempts; every attempt was refused before work")


def _retry_after(response: httpx.Response | None) -> float | None:
    """The server's `Retry-After` in seconds, when it sends a plain number."""
    value = response.headers.get("Retry-After") if response is not None else None
    if value and value.strip().isdigit():
        return float(value)
    return None
