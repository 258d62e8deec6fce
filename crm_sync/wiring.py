"""Builds the engine's collaborators from a validated config, and closes them afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from connectors.base import Connector
from connectors.registry import build_connector
from crm_sync.config import Config
from crm_sync.pipeline.context import Context


@contextmanager
def open_context(config: Config, *, webhook: bool = False, **overrides: Any) -> Iterator[Context]:
    """A ready Context: store opened (schema migrated), API client, one connector per source.

    `webhook=True` gives the API the configured public URL so results are pushed to us.
    """
    from crm_sync.enrichment.client import EnrichmentClient
    from crm_sync.store.opening import open_configured_store

    store = open_configured_store(config.state)
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
            webhook_url=webhook_url,
            **overrides,
        )
    finally:
        for connector in connectors.values():
            with suppress(Exception):
                connector.close()
        client.close()
        store.close()
