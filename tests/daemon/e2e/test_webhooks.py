"""Webhooks end to end: the in-process daemon gets its results pushed, or polls when none come."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crm_sync.config import parse_config
from crm_sync.daemon.service import Daemon
from crm_sync.outputs.metrics import Metrics
from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from crm_sync.store.store import Store
from crm_sync.wiring import open_context
from tests.support.dialects import both_api_versions  # noqa: F401 - runs every test in v1 and v2
from tests.support.processes import (
    assert_every_found_value_written,
    free_port,
    nothing_pending,
    submitted_once,
    wait_for,
    world_candidates,
)


def result_gets(world: SandboxWorld) -> list[Any]:
    """The result GETs the emulator answered (either dialect)."""
    return [c for c in world.enrichment.calls if "/contact/enrich/bulk/" in c.path]


@pytest.fixture
def world(api_version: str) -> Iterator[SandboxWorld]:
    """A world of 280 HubSpot and 120 Salesforce contacts (four batches) whose jobs finish fast."""
    options = WorldOptions(
        hubspot_contacts=280,
        salesforce_contacts=120,
        completion_delay=0.2,
        rate_limit_calls=5000,
        webhook_retry_interval=0.2,
        api_version=api_version,
    )
    with SandboxWorld(options) as started:
        yield started


def daemon_config(
    world: SandboxWorld, tmp_path: Path, poll_after: float, **enrichment: Any
) -> dict[str, Any]:
    """A daemon config whose public webhook URL is its own listen address."""
    port = free_port()
    raw = world.config_dict(
        f"sqlite:///{tmp_path / 'state.sqlite3'}",
        webhook={
            "listen": f"127.0.0.1:{port}",
            "public_url": f"http://127.0.0.1:{port}/webhooks/enrichment",
            "poll_after_seconds": poll_after,
        },
        schedule={
            "interval_minutes": 60,
            "poll_interval_seconds": 0.3,
            "shutdown_grace_seconds": 5,
        },
    )
    raw["enrichment"].update(enrichment)
    return raw


def run_until_done(world: SandboxWorld, raw: dict[str, Any], timeout: float) -> list[Any]:
    """Run the daemon until the whole backlog is written; the batches of every API job."""
    config = parse_config(raw, env={})
    expected = world_candidates(world)
    with open_context(config, webhook=True) as ctx:
        store = ctx.store
        daemon = Daemon(ctx, metrics=Metrics())
        daemon.start()
        try:
            wait_for(
                lambda: (
                    len(world.enrichment.submissions_per_contact()) >= expected
                    and nothing_pending(store, world)
                ),
                timeout,
                "every candidate submitted and written",
            )
        finally:
            daemon.request_stop("test")
            assert daemon.wait(), "in-flight work did not finish within the grace"
    store = Store.open(config.state.url)
    try:
        return [store.batch_by_enrichment_id(j) for j in world.enrichment.job_ids()]
    finally:
        store.close()


def test_webhooks_write_every_result_without_polling(world: SandboxWorld, tmp_path: Path) -> None:
    """Signed webhooks to the daemon's own URL get every result written, with no result GET."""
    raw = daemon_config(world, tmp_path, poll_after=600)

    batches = run_until_done(world, raw, timeout=20)

    assert len(batches) >= 4
    assert all(b is not None and b.state == "written" for b in batches)
    assert {b.result_source for b in batches if b is not None} == {"webhook"}
    assert result_gets(world) == []
    delivered = [a for a in world.enrichment.webhook_attempts if a.status == 200]
    assert {a.enrichment_id for a in delivered} == set(world.enrichment.job_ids())
    submitted_once(world)
    assert len(world.enrichment.submissions_per_contact()) == world_candidates(world)
    assert assert_every_found_value_written(world) > 50


def test_dropped_webhooks_are_recovered_by_polling(world: SandboxWorld, tmp_path: Path) -> None:
    """With every webhook dropped, polling after poll_after_seconds writes every result."""
    world.enrichment.faults.drop_webhooks = True
    raw = daemon_config(world, tmp_path, poll_after=1)

    batches = run_until_done(world, raw, timeout=25)

    assert len(batches) >= 4
    assert all(b is not None and b.state == "written" for b in batches)
    assert {b.result_source for b in batches if b is not None} == {"poll"}
    assert world.enrichment.webhook_attempts == []
    submitted_once(world)
    assert len(world.enrichment.submissions_per_contact()) == world_candidates(world)
    assert assert_every_found_value_written(world) > 50
