"""Builds the engine's collaborators from a validated config, and closes them afterwards.

One clock is built here (`build_clock`) and handed to everything that reads the time: the
store, the pipeline context (and through it the scheduler, health and status), so cooldowns,
the per-day budget's day start, leases and durations all agree on what "now" is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from connectors.base import Connector
from connectors.registry import build_connector
from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.config import Config
from crm_sync.pipeline.context import Context


def build_clock() -> Clock:
    """The process's one clock: the real time (tests build contexts with a fake one)."""
    return SYSTEM_CLOCK


@contextmanager
def open_context(
    config: Config, *, webhook: bool = False, clock: Clock | None = None, **overrides: Any
) -> Iterator[Context]:
    """A ready Context: store opened (schema migrated), API client, one connector per source.

    `webhook=True` gives the API the configured public URL so results are pushed to us. The
    store and the context share `clock` (the real one unless given).
    """
    from crm_sync.enrichment.client import EnrichmentClient
    from crm_sync.store.opening import open_configured_store

    clock = clock or build_clock()
    store = open_configured_store(config.state, clock=clock)
    client = EnrichmentClient.from_config(config.enrichment)
    connectors: dict[str, Connector] = {}
    try:
        for source in config.sources:
            if source.enabled:
                connectors[source.name] = build_connector(source)
        webhook_url = config.webhook.public_url if webhook and config.webhook.enabled else None
        yield Context(
            config=config,
            store=store,
            client=client,
            connectors=connectors,
            clock=clock,
            webhook_url=webhook_url,
            **overrides,
        )
    finally:
        for connector in connectors.values():
            with suppress(Exception):
                connector.close()
        client.close()
        store.close()
