"""SIGTERM mid-cycle: exit 0 within the grace; the next run resumes and pays for nobody twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_sync.exit_codes import EXIT_IN_DOUBT, EXIT_OK
from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from tests.support.processes import (
    DaemonProcess,
    assert_every_found_value_written,
    run_once,
    store_snapshot,
    submitted_once,
    wait_for,
    world_candidates,
    write_config,
)

SUBMIT_PATH = "/api/v1/contact/enrich/bulk"
EXIT_MARGIN_SECONDS = 3.0


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    """600 HubSpot contacts (about five batches) and fast job completion."""
    options = WorldOptions(
        hubspot_contacts=600, salesforce_contacts=0, completion_delay=0.1, rate_limit_calls=5000
    )
    with SandboxWorld(options) as started:
        yield started


def _posts(world: SandboxWorld) -> int:
    """Accepted bulk POSTs (the strict emulator may refuse one first: it is split and resent)."""
    return sum(
        1
        for c in world.enrichment.calls
        if c.method == "POST" and c.path == SUBMIT_PATH and c.status == 200
    )


@pytest.mark.parametrize(
    ("latency", "grace", "clean"),
    [(0.4, 5.0, True), (2.0, 0.3, False)],
    ids=["stage-finishes-in-grace", "grace-expires-mid-post"],
)
def test_sigterm_mid_cycle_exits_zero_and_the_rerun_resumes(
    world: SandboxWorld, tmp_path: Path, latency: float, grace: float, clean: bool
) -> None:
    """Exit 0 within the grace; the rerun submits the rest once and writes every paid result."""
    state_url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    config = world.config_dict(
        state_url,
        sources=[world.hubspot_source()],
        schedule={
            "interval_minutes": 60,
            "poll_interval_seconds": 0.3,
            "shutdown_grace_seconds": grace,
        },
        webhook={"listen": "127.0.0.1:0"},
    )
    config_path = write_config(tmp_path / "config.yaml", config)
    world.enrichment.faults.latency = latency  # every API answer is slow: the cycle takes seconds

    daemon = DaemonProcess(config_path, tmp_path)
    try:
        daemon.wait_event({"webhook_listening"}, 15)
        wait_for(lambda: _posts(world) >= 1, 20, "the first bulk POST")
        if not clean:  # the next POST has left and waits `latency` for its answer: cut it off
            time.sleep(latency / 4)
        code, seconds = daemon.terminate(timeout=grace + EXIT_MARGIN_SECONDS)
    finally:
        daemon.close()
    assert code == 0, daemon.tail()
    assert seconds <= grace + EXIT_MARGIN_SECONDS
    assert ("exiting_with_work_in_flight" not in daemon.output()) is clean
    first_run = len(world.enrichment.submissions_per_contact())
    expected = world_candidates(world)
    assert 0 < first_run < expected, "SIGTERM must land mid-cycle, with backlog left"

    world.enrichment.faults.latency = 0.0
    rerun = run_once(config_path, tmp_path)

    states, in_doubt = store_snapshot(state_url)
    assert rerun.returncode == (EXIT_OK if clean else EXIT_IN_DOUBT), rerun.stderr[-2000:]
    assert bool(in_doubt) is not clean, "a POST cut off by the grace leaves its batch in_doubt"
    submitted_once(world)
    assert len(world.enrichment.submissions_per_contact()) == expected, (
        rerun.stdout + rerun.stderr[-4000:]
    )
    assert all(states.get(s, 0) == 0 for s in ("planned", "sending", "submitted", "received"))
    assert assert_every_found_value_written(world, exclude=in_doubt) > 100
