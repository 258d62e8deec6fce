"""A replica killed with SIGKILL mid-submit is replaced by a replica on another host, fast.

Two `crm-sync run` processes on one PostgreSQL database report different host names
(`CRM_SYNC_HOSTNAME`), so neither may judge the other by its pid: the survivor takes over only
when the dead holder's source lease expires. Time is scaled by 10: a 6 s lease TTL (60 s in
production) must give a takeover within 12 s (the 120 s the README promises), measured from the
kill to the first batch the survivor submits.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from crm_sync.store.store import Store
from tests.support.processes import DaemonProcess, submitted_once, wait_for, write_config

SCALE = 10.0
LEASE_TTL = 60.0 / SCALE
TAKEOVER_LIMIT = 120.0 / SCALE


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    """600 HubSpot contacts, quick jobs; the API's own limit never binds."""
    options = WorldOptions(
        hubspot_contacts=600, salesforce_contacts=0, completion_delay=0.2, rate_limit_calls=5000
    )
    with SandboxWorld(options) as started:
        yield started


def _owners_of_submitted(store: Store, world: SandboxWorld) -> list[str]:
    """The owner of each batch the API accepted, in the order the API made them."""
    owners = []
    for enrichment_id in world.enrichment.job_ids():
        batch = store.batch_by_enrichment_id(enrichment_id)
        if batch is not None:
            owners.append(batch.owner)
    return owners


def test_a_killed_replica_is_replaced_on_another_host_within_two_minutes(
    world: SandboxWorld, tmp_path: Path, pg_database_url: str
) -> None:
    """kill -9 of the lease holder; the replica on "host-b" submits within the scaled 120 s."""
    config = world.config_dict(
        pg_database_url,
        sources=[world.hubspot_source()],
        enrichment={
            **world.enrichment_section(),
            "rate_limit_per_minute": 3,  # 3 calls a second: host-a submits for several seconds
            "rate_limit_window_seconds": 1.0,
        },
        state={"url": pg_database_url, "lease_ttl_seconds": LEASE_TTL},
        run={"batch_size": 20, "poll_initial_seconds": 0.3, "poll_max_seconds": 1.0},
        schedule={
            "interval_minutes": 0.6 / 60,  # a cycle every 6 s in production time
            "poll_interval_seconds": 0.3,
            "shutdown_grace_seconds": 2.0,
        },
        webhook={"listen": "127.0.0.1:0"},
    )
    config_path = write_config(tmp_path / "config.yaml", config)
    store = Store.open(pg_database_url)
    holder = DaemonProcess(config_path, tmp_path, "host-a", {"CRM_SYNC_HOSTNAME": "host-a"})
    survivor: DaemonProcess | None = None
    try:
        holder.wait_event({"webhook_listening"}, 20)
        wait_for(lambda: len(_owners_of_submitted(store, world)) >= 1, 20, "host-a's first batch")
        survivor = DaemonProcess(config_path, tmp_path, "host-b", {"CRM_SYNC_HOSTNAME": "host-b"})
        survivor.wait_event({"webhook_listening"}, 20)
        wait_for(lambda: len(_owners_of_submitted(store, world)) >= 3, 20, "host-a submitting")
        owners = _owners_of_submitted(store, world)
        assert all(owner.startswith("host-a:") for owner in owners), owners
        holder.process.kill()  # SIGKILL: no cleanup, the lease stays in the store
        killed_at = time.monotonic()
        holder.process.wait()
        wait_for(
            lambda: any(o.startswith("host-b:") for o in _owners_of_submitted(store, world)),
            TAKEOVER_LIMIT * 3,
            "a batch submitted by host-b",
        )
        takeover = time.monotonic() - killed_at
        code, _ = survivor.terminate(timeout=10)
    finally:
        store.close()
        holder.close()
        if survivor is not None:
            survivor.close()
    print(f"takeover after kill -9: {takeover:.1f} s (x{SCALE:.0f} = {takeover * SCALE:.0f} s)")
    assert takeover < TAKEOVER_LIMIT
    assert code == 0
    submitted_once(world)


def test_a_write_back_claimed_by_a_killed_replica_is_finished_on_another_host_in_time(
    world: SandboxWorld, tmp_path: Path, pg_database_url: str
) -> None:
    """host-a dies holding a write-back claim (after its CRM write); host-b writes that batch
    within the scaled 120 s: claims last 1.5 lease TTLs, not minutes."""
    config = world.config_dict(
        pg_database_url,
        sources=[world.hubspot_source()],
        state={"url": pg_database_url, "lease_ttl_seconds": LEASE_TTL},
        run={"batch_size": 100, "poll_initial_seconds": 0.3, "poll_max_seconds": 1.0},
        schedule={
            "interval_minutes": 0.6 / 60,
            "poll_interval_seconds": 3.0 / SCALE,  # 30 s in production time
            "shutdown_grace_seconds": 2.0,
        },
        webhook={"listen": "127.0.0.1:0"},
    )
    config_path = write_config(tmp_path / "config.yaml", config)
    holder = DaemonProcess(
        config_path,
        tmp_path,
        "host-a",
        {"CRM_SYNC_HOSTNAME": "host-a", "CRM_SYNC_FAILPOINT": "after_crm_write"},
    )
    survivor: DaemonProcess | None = None
    store = Store.open(pg_database_url)
    try:
        holder.process.wait(timeout=60)  # killed by its failpoint, claim held, batch `received`
        died_at = time.monotonic()
        states = store.batches_by_state()
        assert states.get("received", 0) >= 1, states
        survivor = DaemonProcess(config_path, tmp_path, "host-b", {"CRM_SYNC_HOSTNAME": "host-b"})
        wait_for(
            lambda: store.batches_by_state().get("received", 0) == 0,
            TAKEOVER_LIMIT * 3,
            "host-a's claimed batch written by host-b",
        )
        finished = time.monotonic() - died_at
        code, _ = survivor.terminate(timeout=10)
    finally:
        store.close()
        holder.close()
        if survivor is not None:
            survivor.close()
    print(f"write-back taken over after {finished:.1f} s (x{SCALE:.0f} = {finished * SCALE:.0f} s)")
    assert finished < TAKEOVER_LIMIT
    assert code == 0
    submitted_once(world)
