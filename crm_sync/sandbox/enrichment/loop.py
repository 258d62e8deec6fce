"""The enrichment emulator's server-loop side: tasks on the loop, and webhook delivery.

A base class of `EnrichmentEmulator` (which sets every attribute declared here), kept apart so
each module holds one idea: the emulator answers calls; this sends what it owes afterwards.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from crm_sync.clock import Clock
from crm_sync.sandbox.enrichment.records import Faults, WebhookAttempt
from crm_sync.sandbox.enrichment.styles import SLOW_POST_WAIT_SECONDS
from crm_sync.sandbox.enrichment.webhooks import DeliveryPolicy, deliver


class EmulatorLoop:
    """Background work of the emulator on the server's event loop."""

    api_key: str
    clock: Clock
    faults: Faults
    webhook_policy: DeliveryPolicy
    webhook_attempts: list[WebhookAttempt]
    _lock: threading.RLock
    _tasks: set[asyncio.Task[Any]]
    _loop: asyncio.AbstractEventLoop | None
    _webhooks_pending: int

    def _deliver_later(self, enrichment_id: str, events: list[tuple[str, bytes, bool]]) -> None:
        """Send `events` (URL, body, is the batch webhook) in order from the server loop."""
        with self._lock:
            self._webhooks_pending += 1
        if not self._call_on_loop(lambda: self._spawn(self._send_webhooks(enrichment_id, events))):
            self._webhook_done()

    async def _first_webhook_attempt(self, enrichment_id: str) -> None:
        """Wait until the job's webhook was tried once (bounded: a dead receiver must not hang)."""
        deadline = self.clock.monotonic() + SLOW_POST_WAIT_SECONDS
        while self.clock.monotonic() < deadline:
            with self._lock:
                if any(a.enrichment_id == enrichment_id for a in self.webhook_attempts):
                    return
                if self._webhooks_pending == 0:
                    return  # no webhook (no URL, or dropped): nothing to wait for
            await asyncio.sleep(0.01)

    async def _send_webhooks(
        self, enrichment_id: str, events: list[tuple[str, bytes, bool]]
    ) -> None:
        """Per-contact events first (v2), then the batch webhook, each retried on its own."""
        try:
            for url, body, batch in events:
                await deliver(
                    enrichment_id=enrichment_id,
                    url=url,
                    body=body,
                    api_key=self.api_key,
                    policy=self.webhook_policy,
                    record=self._record_attempt,
                    dropped=functools.partial(self._dropped, batch),
                    clock=self.clock,
                )
        finally:
            self._webhook_done()

    def _dropped(self, batch: bool) -> bool:
        return self.faults.drop_webhooks or (batch and self.faults.drop_batch_webhooks)

    def _webhook_done(self) -> None:
        with self._lock:
            self._webhooks_pending -= 1

    def _record_attempt(self, attempt: WebhookAttempt) -> None:
        with self._lock:
            self.webhook_attempts.append(attempt)

    # -- tasks on the server loop -----------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Start `coro` on the running (server) loop, keeping a reference until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _call_on_loop(self, callback: Callable[[], object]) -> bool:
        """Run `callback` on the server loop, from that loop or from a test's thread.

        False when there is no live loop (the server never answered a call, or has stopped).
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            callback()
            return True
        try:
            loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the server stopped between the check and the call
            return False
        return True
