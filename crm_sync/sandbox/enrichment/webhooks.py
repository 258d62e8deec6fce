"""Webhook delivery as the real API does it: signed, retried on any non-2xx, same body each time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.logs import get_logger
from crm_sync.sandbox.enrichment.facts import SIGNATURE_HEADER, signature
from crm_sync.sandbox.enrichment.records import WebhookAttempt

log = get_logger(component="sandbox.enrichment.webhooks")


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    retry_interval: float  # seconds between attempts (60 on the real API)
    max_retries: int  # retries after the first attempt (5 on the real API)
    timeout: float = 10.0


async def deliver(
    *,
    enrichment_id: str,
    url: str,
    body: bytes,
    api_key: str,
    policy: DeliveryPolicy,
    record: Callable[[WebhookAttempt], None],
    dropped: Callable[[], bool],
    clock: Clock = SYSTEM_CLOCK,
) -> bool:
    """POST `body` to `url` until a 2xx answer or the retries run out; True when delivered.

    `dropped()` is read before each attempt so a test can switch delivery off mid-way.
    """
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(body, api_key)}
    async with httpx.AsyncClient(timeout=policy.timeout, trust_env=False) as client:
        for attempt in range(1, policy.max_retries + 2):
            if dropped():
                return False
            status: int | None = None
            error: str | None = None
            try:
                response = await client.post(url, content=body, headers=headers)
                status = response.status_code
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            record(WebhookAttempt(enrichment_id, url, attempt, status, error, clock.monotonic()))
            if status is not None and 200 <= status < 300:
                return True
            log.info(
                "webhook_failed",
                enrichment_id=enrichment_id,
                attempt=attempt,
                status=status,
                error=error,
            )
            if attempt <= policy.max_retries:
                await asyncio.sleep(policy.retry_interval)
    return False
