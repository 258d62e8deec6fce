"""Builds the engine's collaborators from a validated config, and closes them afterwards.

One clock is built here (`build_clock`) and handed to everything that reads the time: the
store, the enrichment client, the connectors and the pipeline context (and through it the
scheduler, health and status), so cooldowns, the per-day budget's day start, leases, backoff and
durations all agree on what "now" is.

The connectors are built here too: each source's `SourceConfig` becomes the `SourceSpec` its
connector is given, and each connector judges its own settings and filters (`check_sources`),
so the config model never imports the connector registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from connectors.base import Connector
from connectors.registry import build_connector, validate_spec
from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.config import Config, SourceConfig
from crm_sync.errors import ConfigError
from crm_sync.pipeline.context import Context


def build_clock() -> Clock:
    """The process's one clock: the real time (tests build contexts with a fake one)."""
    return SYSTEM_CLOCK


def source_problems(source: SourceConfig) -> list[str]:
    """Problems with a source's connector name, settings and filters, as `key: message` lines."""
    return validate_spec(source.connector, source.spec())


def check_sources(config: Config) -> None:
    """ConfigError naming every key of every source that its connector refuses (exit 2)."""
    problems = [
        f"sources[{index}].{problem}"
        for index, source in enumerate(config.sources)
        for problem in source_problems(source)
    ]
    if problems:
        problems = list(dict.fromkeys(problems))
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems), problems)


def connector_for(source: SourceConfig, *, clock: Clock = SYSTEM_CLOCK) -> Connector:
    """A ready connector for a source whose settings passed `check_sources`."""
    return build_connector(source.connector, source.spec(), clock=clock)


@contextmanager
def open_context(
    config: Config, *, webhook: bool = False, clock: Clock | None = None, **overrides: Any
) -> Iterator[Context]:
    """A ready Context: store opened (schema migrated), API client, one connector per source.

    `webhook=True` gives the API the configured public URL so results are pushed to us. The
    store, the client, the connectors and the context share `clock` (the real one unless given).
    """
    from crm_sync.enrichment.client import EnrichmentClient
    from crm_sync.store.opening import open_configured_store

    check_sources(config)
    clock = clock or build_clock()
    store = open_configured_store(config.state, clock=clock)
    client = EnrichmentClient.from_config(config.enrichment, clock=clock)
    connectors: dict[str, Connector] = {}
    try:
        for source in config.sources:
            if source.enabled:
                connectors[source.name] = connector_for(source, clock=clock)
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
