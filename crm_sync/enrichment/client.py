"""The enrichment API client (FullEnrich / DeepEnrich): sync, thread-safe, never pays twice.

It speaks the wire dialect of `api_version` (`wire_v1.py`, `wire_v2.py`) and hands the
pipeline the internal model only. This module holds the API's operations; how one call is sent
(rate-limiter slot, which failures are retried, the POST never resent once it may have left)
is in `sending.py`.

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
from crm_sync.enrichment.ratelimit import POLL, RateLimiter, limiter_for
from crm_sync.enrichment.responses import (
    api_error,
    parse_result,
    raise_for_status,
    read_json,
    validated_request,
)
from crm_sync.enrichment.sending import Sender
from crm_sync.enrichment.stats import ClientStats
from crm_sync.enrichment.wire import WireDialect, dialect_for
from crm_sync.errors import OutcomeUnknown, ServerError
from crm_sync.logs import MASK, register_secret
from crm_sync.retry import RetryPolicy

__all__ = [
    "CODE_IN_PROGRESS",
    "ENDPOINT_CREDITS",
    "ENDPOINT_RESULT",
    "ENDPOINT_SUBMIT",
    "ENDPOINT_VERIFY",
    "ClientStats",
    "EnrichmentClient",
]


ENDPOINT_VERIFY = "verify"
ENDPOINT_CREDITS = "credits"
ENDPOINT_SUBMIT = "submit"
ENDPOINT_RESULT = "result"
CODE_IN_PROGRESS = "error.enrichment.in_progress"


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
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            headers={"Authorization": f"Bearer {secret}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        # Errors raised on giving up hide the attempt's own exception (`hide_cause`): they
        # carry only codes and statuses, never what a transport error may have captured.
        policy = RetryPolicy(
            "enrichment",
            max_retries=max_retries,
            base=backoff_base,
            cap=backoff_cap,
            clock=clock,
            rng=rng or random.Random(),
            hide_cause=True,
        )
        self._sender = Sender(
            self._http,
            base_url=self.base_url,
            limiter=self.limiter,
            policy=policy,
            stats=self.stats,
            clock=clock,
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
        response = self._sender.call(ENDPOINT_VERIFY, "GET", "account/keys/verify")
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
        response = self._sender.call(ENDPOINT_CREDITS, "GET", "account/credits")
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
        response = self._sender.call(
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
        response = self._sender.call(ENDPOINT_RESULT, "GET", path, kind=POLL, params=params)
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
