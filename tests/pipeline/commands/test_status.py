"""`status` reads only the store: no secret needed; history with counts, charged credits, reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crm_sync.exit_codes import EXIT_OK
from crm_sync.pipeline.context import owner_is_dead
from crm_sync.pipeline.run_record import RUN_LEASE_TTL
from crm_sync.sandbox.world import SandboxWorld
from crm_sync.store.store import Store
from tests.pipeline.commands.conftest import cli, hubspot_config, write_config
from tests.support.clock import FakeClock


def test_status_works_with_no_secret_set(world: SandboxWorld, tmp_path: Path) -> None:
    """Every secret comes from a variable that is unset: status still reads the store."""
    config = hubspot_config(world, tmp_path)
    env = {
        "T_ENRICH_KEY": world.enrichment.api_key,
        "T_HUBSPOT_TOKEN": world.hubspot.token,
    }
    config["enrichment"]["api_key"] = "${T_ENRICH_KEY}"
    config["sources"][0]["settings"]["access_token"] = "${T_HUBSPOT_TOKEN}"
    path = write_config(tmp_path, config)
    run = cli("--once", "--json", "--config", path, env=env)
    assert run.returncode == EXIT_OK, run.stderr[-2000:]

    refused = cli("--once", "--config", path)  # the run itself does need them
    assert refused.returncode == 2
    status = cli("status", "--json", "--config", path)
    assert status.returncode == EXIT_OK, status.stderr
    data = json.loads(status.stdout)
    [entry] = data["recent_runs"]
    report = json.loads(run.stdout)
    counts = report["sources"][0]["counts"]
    assert entry["status"] == "ok"
    assert entry["counts"]["submitted"] == counts["submitted"] > 0
    assert entry["credits_charged"] == counts["credits_spent"] == world.enrichment.credits_charged
    assert entry["credits_reserved"] == 0
    assert entry["duration_seconds"] is not None
    assert entry["duration_seconds"] >= 0
    day = data["credits_by_source_and_day"][0]
    assert day["credits"] == world.enrichment.credits_charged
    assert day["reserved"] == 0
    text = cli("status", "--config", path)
    assert f"charged={world.enrichment.credits_charged}" in text.stdout


def test_status_by_state_url_needs_no_config(world: SandboxWorld, tmp_path: Path) -> None:
    """--state-url reads a store with no config file at all."""
    path = write_config(tmp_path, hubspot_config(world, tmp_path))
    assert cli("--once", "--config", path).returncode == EXIT_OK
    url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    status = cli("status", "--state-url", url, "--json", "--config", str(tmp_path / "absent.yaml"))
    assert status.returncode == EXIT_OK, status.stderr
    assert json.loads(status.stdout)["recent_runs"][0]["status"] == "ok"


def test_run_history_shows_reservations_apart_from_charges(tmp_path: Path) -> None:
    """A submitted batch not yet collected is reserved, not charged."""
    from crm_sync.store.records import PlannedContact

    store = Store.open(f"sqlite:///{tmp_path / 's.sqlite3'}")
    try:
        store.start_run("r1", "here:1:a")
        batch = store.plan_batch(
            source="s",
            run_id="r1",
            owner="here:1:a",
            name="crm-sync s batch {batch_id}",
            contacts=[PlannedContact("1", ("contact.phones",), {})],
            reserved_credits_for=lambda planned: 10 * len(planned),
        )
        assert batch is not None
        assert batch.id in batch.name
        [summary] = store.run_history()
        assert (summary.charged_credits, summary.reserved_credits) == (0, 10)
        [(_source, _day, charged, reserved)] = store.spend_by_source_and_day()
        assert (charged, reserved) == (0, 10)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("owner", "lease", "age", "abandoned"),
    [
        ("elsewhere:123:x", False, timedelta(minutes=5), True),  # other host, lease gone
        ("elsewhere:123:x", True, timedelta(minutes=5), False),  # other host, heartbeat alive
        ("elsewhere:123:x", False, timedelta(seconds=5), False),  # just started, no lease yet
    ],
)
def test_runs_of_other_hosts_are_judged_by_their_lease(
    tmp_path: Path, owner: str, lease: bool, age: timedelta, abandoned: bool
) -> None:
    """A run on another host is abandoned only once its heartbeat lease has expired."""
    now = datetime.now(UTC)
    clock = FakeClock(now - age)
    store = Store.open(f"sqlite:///{tmp_path / 's.sqlite3'}", clock=clock)
    try:
        store.start_run("r1", owner)
        if lease:
            clock.wall = now - timedelta(seconds=10)
            store.acquire_lease("run:r1", owner, RUN_LEASE_TTL)
        clock.wall = now
        result = store.abandon_dead_runs(owner_is_dead, RUN_LEASE_TTL)
        [run] = store.run_history()
    finally:
        store.close()
    assert (result == ["r1"]) is abandoned
    assert run.status == ("abandoned" if abandoned else "running")
