"""How one enrichment API call is sent: a limiter slot per attempt, and the retry classification.

Every request goes through the process-wide rate limiter (`ratelimit.py`), is logged at debug
(endpoint, status, duration, attempt), and is retried by the one retry policy
(`crm_sync.retry`) when retrying is safe:

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

The policy's backoff honours `Retry-After` (the API does not document it). A 429 without
`Retry-After` means the API's window (60 s) is full, perhaps by another client of the same key:
the retries are then spread so that the last one comes at least one whole rate window (the
limiter's `window`) after the first 429, and a full window never exhausts them.

A stop (`ctx.stopping`) set while waiting for a slot or between attempts ends the call with
`NotSent`: nothing was sent, or every attempt was refused before any work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx

from crm_sync.clock import Clock
from crm_sync.enrichment.ratelimit import CALL, RateLimiter
from crm_sync.enrichment.stats import ClientStats
from crm_sync.errors import NotSent, OutcomeUnknown, ServerError
from crm_sync.logs import get_logger
from crm_sync.retry import Decision, NeverResend, Retry, RetryPolicy, RetryStopped

__all__ = ["Sender"]

# Transport failures that prove the request never reached the server.
_NEVER_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
_POST_RETRYABLE_STATUSES = frozenset({429, 503})


def _log() -> Any:
    """Bound per call, not at import: a logger bound at import keeps the processors and level
    in force at that moment and would ignore `configure_logging` run later by the CLI."""
    return get_logger(component="enrichment.client")


class Sender:
    """Sends one call (all its attempts) through the limiter, the retry policy and the stats."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        base_url: str,
        limiter: RateLimiter,
        policy: RetryPolicy,
        stats: ClientStats,
        clock: Clock,
    ) -> None:
        self.http = http
        self.base_url = base_url
        self.limiter = limiter
        self.policy = policy
        self.stats = stats
        self.clock = clock

    def call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        kind: str = CALL,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        on_send: Callable[[], None] | None = None,
        stop: threading.Event | None = None,
    ) -> httpx.Response:
        """Send with retries; return the last answer (retriable ones only once retries run out).

        `kind` is the limiter's kind of slot; `on_send` runs in the slot before the first attempt.
        """

        def attempt_once(attempt: int) -> httpx.Response:
            return self._send_once(
                endpoint=endpoint,
                method=method,
                path=path,
                kind=kind,
                params=params,
                body=body,
                attempt=attempt,
                on_send=on_send if attempt == 1 else None,
                stop=stop,
            )

        try:
            return self.policy.run(
                attempt_once,
                _Classification(self, endpoint, idempotent=method == "GET"),
                stop=stop,
                on_retry=lambda _attempt: self.stats.add("retries", endpoint),
                endpoint=endpoint,
            )
        except RetryStopped:
            raise NotSent(
                "stop requested between attempts; every attempt was refused before work"
            ) from None

    def _send_once(
        self,
        *,
        endpoint: str,
        method: str,
        path: str,
        params: dict[str, str] | None,
        body: dict[str, Any] | None,
        attempt: int,
        kind: str,
        on_send: Callable[[], None] | None,
        stop: threading.Event | None,
    ) -> httpx.Response:
        """One HTTP request inside a limiter slot, counted and logged whatever happens."""
        status: int | None = None
        error: str | None = None
        with self.limiter.slot(kind, stop):
            if on_send is not None:
                on_send()
            self.stats.add("calls", endpoint)
            started = self.clock.monotonic()
            try:
                response = self.http.request(method, path, params=params, json=body)
                status = response.status_code
            except httpx.TransportError as exc:
                error = type(exc).__name__
                raise
            finally:
                duration_ms = round((self.clock.monotonic() - started) * 1000, 1)
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

    def outcome_unknown(self, endpoint: str, failure: str) -> OutcomeUnknown:
        """The error for a POST that may have been applied: logged, never resent."""
        _log().warning("enrichment.outcome_unknown", endpoint=endpoint, failure=failure)
        return OutcomeUnknown(
            f"the bulk POST to {self.base_url} failed after it was sent ({failure}); "
            "it may have been enriched and charged, so it is not resent"
        )


class _Classification:
    """The retry table above for one call; remembers when the API's rate window was full."""

    def __init__(self, sender: Sender, endpoint: str, *, idempotent: bool) -> None:
        self.sender = sender
        self.endpoint = endpoint
        self.idempotent = idempotent
        self.window_full_until: float | None = None  # first 429 without Retry-After + window

    def __call__(self, outcome: httpx.Response | BaseException, attempt: int) -> Decision:
        if isinstance(outcome, httpx.TransportError):
            return self._failure(outcome, attempt)
        if isinstance(outcome, BaseException):
            return None  # NotSent from the limiter, an on_send error: raised as they are
        status = outcome.status_code
        if status != 429 and status < 500:
            return None
        if not self.idempotent and status not in _POST_RETRYABLE_STATUSES:
            return NeverResend(self.sender.outcome_unknown(self.endpoint, f"HTTP {status}"))
        after = _retry_after(outcome)
        if status == 429 and self.window_full_until is None and not after:
            window = float(getattr(self.sender.limiter, "window", 60.0))
            self.window_full_until = self.sender.clock.monotonic() + window
        return Retry(after=after, spread_until=self.window_full_until)

    def _failure(self, exc: httpx.TransportError, attempt: int) -> Decision:
        failure = type(exc).__name__
        if not self.idempotent and not isinstance(exc, _NEVER_SENT):
            return NeverResend(self.sender.outcome_unknown(self.endpoint, failure))
        return Retry(
            give_up=ServerError(
                f"cannot reach the enrichment API at {self.sender.base_url} "
                f"({self.endpoint}: {failure} after {attempt} attempts)"
            )
        )


def _retry_after(response: httpx.Response) -> float | None:
    """The server's `Retry-After` in seconds, when it sends a plain number."""
    value = response.headers.get("Retry-After")
    if value and value.strip().isdigit():
        return float(value)
    return None
