"""Issue 14's done-when test: `crm-sync run` enriches new HubSpot contacts within minutes.

Time-scaled by 10 so it runs in well under a minute: fresh_scan_seconds 60 -> 6,
max_batch_wait_seconds 60 -> 6, enrichment taking 5 s -> 0.5 s, 30 contacts created over 120 s
-> over 12 s, and the bound fresh_scan_seconds + max_batch_wait_seconds + 30 s -> 6 + 6 + 3 =
15 s. Every duration is divided by the same factor, so the ratios the issue fixes stay as they
are (the daemon's tick, a sixtieth of the shorter period, scales with them).
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from crm_sync.store.store import Store
from tests.support.fresh import create_contact, hubspot_client
from tests.support.processes import DaemonProcess, free_port, wait_for, write_config

SCALE = 10
FRESH_SCAN = 60 / SCALE
MAX_WAIT = 60 / SCALE
ENRICHMENT_SECONDS = 5 / SCALE
CREATE_OVER = 120 / SCALE
BOUND = (60 + 60 + 30) / SCALE
CONTACTS = 30


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    options = WorldOptions(
        hubspot_contacts=20,
        salesforce_contacts=0,
        completion_delay=ENRICHMENT_SECONDS,
        webhook_retry_interval=0.2,
    )
    with SandboxWorld(options) as started:
        yield started


def _parse(text: str | None) -> datetime:
    return datetime.fromisoformat((text or "").replace("Z", "+00:00"))


@pytest.mark.slow
def test_each_new_contact_is_settled_within_the_bound_with_one_fresh_post_per_period(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """30 contacts created over the period: each settled in time; fresh POSTs a period apart."""
    port = free_port()
    state_url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    config = world.config_dict(
        state_url,
        sources=[world.hubspot_source()],
        webhook={
            "listen": f"127.0.0.1:{port}",
            "public_url": f"http://127.0.0.1:{port}/webhooks/enrichment",
        },
        schedule={
            "interval_minutes": 60,
            "fresh_scan_seconds": FRESH_SCAN,
            "fresh_overlap_seconds": 1,
            "shutdown_grace_seconds": 5,
        },
        run={"max_batch_wait_seconds": MAX_WAIT},
    )
    daemon = DaemonProcess(write_config(tmp_path / "config.yaml", config), tmp_path)
    client = hubspot_client(world)
    try:
        daemon.wait_event({"fresh_lane_started"}, timeout=20)
        created: list[str] = []
        for i in range(CONTACTS):
            created.append(create_contact(client, f"Rep{i}", "Newlead", email=f"rep{i}@x.io"))
            time.sleep(CREATE_OVER / CONTACTS)
        store = Store.open(state_url)
        try:

            def settled() -> bool:
                rows = [store.ledger_row("hubspot", i) for i in created]
                return all(r is not None and r.outcome and not r.in_flight_batch_id for r in rows)

            wait_for(settled, BOUND + 10, "every created contact settled")
            rows = {i: store.ledger_row("hubspot", i) for i in created}
            fresh = list(_fresh_batches(store, world))
        finally:
            store.close()
        code, _ = daemon.terminate(timeout=15)
        assert code == 0, daemon.tail()
    finally:
        daemon.close()

    records = world.hubspot.records
    waited = {}
    for record_id, row in rows.items():
        assert row is not None
        start = _parse(records[record_id]["createdate"])
        waited[record_id] = round((row.updated_at - start).total_seconds(), 2)
    late = {i: w for i, w in waited.items() if w > BOUND}
    assert not late, f"settled later than {BOUND}s after creation: {late}"
    print(f"creation to settled, scaled seconds: max {max(waited.values())}, bound {BOUND}")
    submitted = world.enrichment.submissions_per_contact()
    assert all(submitted[i] == 1 for i in created)
    arrivals = sorted(fresh)
    # The first contacts must go before the last ones exist: two POSTs at least.
    assert len(arrivals) >= 2, arrivals
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(g >= MAX_WAIT for g in gaps), f"fresh POSTs closer than {MAX_WAIT}s: {gaps}"
    assert datetime.now(UTC) > _parse(records[created[0]]["createdate"])


def _fresh_batches(store: Store, world: SandboxWorld) -> list[float]:
    """When each fresh-lane POST reached the API (emulator clock), from the store's batches."""
    arrival: dict[str, float] = defaultdict(float)
    for item in world.enrichment.submitted:
        arrival[item.enrichment_id] = item.at
    times = []
    for enrichment_id in world.enrichment.job_ids():
        batch = store.batch_by_enrichment_id(enrichment_id)
        if batch is not None and " fresh " in batch.name:
            times.append(arrival[enrichment_id])
    return times
