"""v2 per-contact webhooks end to end: each contact stored and written as its event lands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from tests.daemon.e2e.test_webhooks import daemon_config, result_gets, run_until_done
from tests.support.processes import assert_every_found_value_written, submitted_once

CONTACT_EVENTS = {"webhook_events": ["contact_finished"]}


@pytest.fixture
def v2_world(request: pytest.FixtureRequest) -> Iterator[SandboxWorld]:
    """A v2 world whose per-contact events come in the reading the test names."""
    style = request.param
    options = WorldOptions(
        hubspot_contacts=80,
        salesforce_contacts=30,
        completion_delay=0.2,
        rate_limit_calls=5000,
        webhook_retry_interval=0.2,
        api_version="v2",
        enrichment_kwargs={"contact_event_style": style},
    )
    with SandboxWorld(options) as started:
        yield started


@pytest.mark.parametrize("v2_world", ["record"], indirect=True)
def test_each_contact_is_written_from_its_own_event(v2_world: SandboxWorld, tmp_path: Path) -> None:
    """Every contact event is acknowledged; every found value is written; no result GET."""
    world = v2_world
    raw = daemon_config(world, tmp_path, poll_after=600, **CONTACT_EVENTS)

    batches = run_until_done(world, raw, timeout=25)

    assert batches
    assert all(b is not None and b.state == "written" for b in batches)
    contact_posts = [a for a in world.enrichment.webhook_attempts if a.url.endswith("/contact")]
    assert contact_posts
    assert all(a.status == 200 for a in contact_posts)
    assert len(contact_posts) == sum(len(b.contacts) for b in batches if b is not None)
    assert result_gets(world) == []
    submitted_once(world)
    assert assert_every_found_value_written(world) > 15


@pytest.mark.parametrize("v2_world", ["envelope"], indirect=True)
def test_batch_completes_from_contact_events_alone(v2_world: SandboxWorld, tmp_path: Path) -> None:
    """With the batch webhook lost, the last settled contact completes its batch: no poll."""
    world = v2_world
    world.enrichment.faults.drop_batch_webhooks = True
    raw = daemon_config(world, tmp_path, poll_after=600, **CONTACT_EVENTS)

    batches = run_until_done(world, raw, timeout=25)

    assert batches
    assert all(b is not None and b.state == "written" for b in batches)
    assert {b.result_source for b in batches if b is not None} == {"contact_events"}
    assert result_gets(world) == []
    assert assert_every_found_value_written(world) > 15
