"""Two `crm-sync run` processes on one PostgreSQL database share a backlog and pay once each."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from crm_sync.store.store import Store
from tests.support.processes import (
    DaemonProcess,
    assert_every_found_value_written,
    nothing_pending,
    store_snapshot,
    submitted_once,
    wait_for,
    world_candidates,
    write_config,
)

GRACE = 5.0


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    """600 HubSpot and 200 Salesforce contacts; jobs finish in 0.2 s."""
    options = WorldOptions(
        hubspot_contacts=600, salesforce_contacts=200, completion_delay=0.2, rate_limit_calls=5000
    )
    with SandboxWorld(options) as started:
        yield started


def test_two_replicas_on_postgres_submit_each_contact_once(
    world: SandboxWorld, tmp_path: Path, pg_database_url: str
) -> None:
    """Two daemons started together drain the shared backlog: each contact paid for once."""
    config = world.config_dict(
        pg_database_url,
        schedule={
            "interval_minutes": 0.02,  # a cycle every 1.2 s per replica: they keep overlapping
            "poll_interval_seconds": 0.3,
            "shutdown_grace_seconds": GRACE,
        },
        webhook={"listen": "127.0.0.1:0"},
    )
    config_path = write_config(tmp_path / "config.yaml", config)
    expected = world_candidates(world)

    replicas = [DaemonProcess(config_path, tmp_path, name=f"replica-{i}") for i in (1, 2)]
    codes: list[int] = []
    try:
        for replica in replicas:
            replica.wait_event({"webhook_listening"}, 20)
        store = Store.open(pg_database_url)
        try:
            wait_for(
                lambda: (
                    len(world.enrichment.submissions_per_contact()) >= expected
                    and nothing_pending(store, world)
                ),
                40,
                "the shared backlog submitted and written",
            )
            owners = Counter(
                store.batch_by_enrichment_id(j).owner  # type: ignore[union-attr]
                for j in world.enrichment.job_ids()
            )
        finally:
            store.close()
        codes = [replica.terminate(timeout=GRACE + 5)[0] for replica in replicas]
    finally:
        for replica in replicas:
            replica.close()

    assert codes == [0, 0], [r.tail() for r in replicas]
    submitted_once(world)
    assert len(world.enrichment.submissions_per_contact()) == expected
    states, in_doubt = store_snapshot(pg_database_url)
    assert not in_doubt
    # The strict API refuses LinkedIn-only items: each refused batch is `failed`, split, and sent.
    splits = sum(replica.seen["batch_refused_split"] for replica in replicas)
    assert states.get("failed", 0) == splits, states
    assert set(states) - {"failed"} == {"written"}, states
    assert sum(owners.values()) == len(world.enrichment.job_ids()) >= expected // 100
    print(f"batches per replica: {sorted(owners.values())}, contacts: {expected}")
    assert assert_every_found_value_written(world) > 200
    for replica in replicas:
        assert replica.seen["run_summary"] >= 1, replica.tail()
