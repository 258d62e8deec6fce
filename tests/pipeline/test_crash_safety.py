"""Crash safety: `--once` killed with SIGKILL at each stage boundary, then rerun to completion."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from crm_sync.exit_codes import EXIT_IN_DOUBT, EXIT_OK
from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from crm_sync.store.store import Store
from tests.support.dialects import both_api_versions  # noqa: F401 - runs every test in v1 and v2

FAILPOINTS = [
    "after_plan",
    "after_mark_sending",
    "after_submit",
    "after_mark_submitted",
    "after_result_stored",
    "after_crm_write",
]

# Between mark_sending and mark_submitted the POST may or may not have gone out: in_doubt.
IN_DOUBT_POINTS = {"after_mark_sending", "after_submit"}


def _once(config_path: Path, failpoint: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CRM_SYNC_FAILPOINT"}
    if failpoint:
        env["CRM_SYNC_FAILPOINT"] = failpoint
    return subprocess.run(
        [sys.executable, "-m", "crm_sync.cli", "--once", "--json", "--config", str(config_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def big_world(api_version: str) -> Iterator[SandboxWorld]:
    """Enough contacts for three batches, so a crash in the first leaves work for the rerun."""
    options = WorldOptions(
        hubspot_contacts=320,
        salesforce_contacts=0,
        completion_delay=0.05,
        api_version=api_version,
    )
    with SandboxWorld(options) as started:
        yield started


@pytest.mark.parametrize("failpoint", FAILPOINTS)
def test_killed_run_then_rerun_pays_once_and_loses_nothing(
    big_world: SandboxWorld, tmp_path: Path, failpoint: str
) -> None:
    """Each contact is submitted at most once; every found value outside in_doubt is written."""
    world = big_world
    state = tmp_path / "state.sqlite3"
    config = world.config_dict(f"sqlite:///{state}", sources=[world.hubspot_source()])
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))

    killed = _once(config_path, failpoint)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    rerun = _once(config_path, None)
    assert rerun.returncode in (EXIT_OK, EXIT_IN_DOUBT), rerun.stderr[-2000:]

    assert max(world.enrichment.submissions_per_contact().values(), default=0) <= 1
    store = Store.open(f"sqlite:///{state}")
    try:
        in_doubt = {c.record_id for b in store.in_doubt_batches() for c in b.contacts}
        states = store.batches_by_state()
    finally:
        store.close()
    if failpoint in IN_DOUBT_POINTS:
        assert in_doubt, "a batch that may have been sent before the crash must be in_doubt"
        assert rerun.returncode == EXIT_IN_DOUBT
    else:
        assert not in_doubt
        assert rerun.returncode == 0, rerun.stdout
    assert states.get("sending", 0) == 0
    assert states.get("submitted", 0) == 0
    assert states.get("received", 0) == 0
    _assert_every_found_value_written(world, exclude=in_doubt)


def _assert_every_found_value_written(world: SandboxWorld, exclude: set[str]) -> None:
    checked = 0
    for enrichment_id in world.enrichment.job_ids():
        body = world.enrichment.internal_result(enrichment_id)
        for item in body.get("datas", []):
            rid = item["custom"]["crm_id"]
            if rid in exclude:
                continue
            contact = item["contact"]
            record = world.hubspot.records[rid]
            email = contact.get("most_probable_email")
            if email and contact.get("most_probable_email_status") in {
                "DELIVERABLE",
                "HIGH_PROBABILITY",
            }:
                assert record["email"] == email, rid
                checked += 1
            if contact.get("most_probable_phone") and not contact["most_probable_phone"].startswith(
                "+0"
            ):
                assert (record["phone"] or "").startswith("+"), rid
                checked += 1
    assert checked > 20


def _slow_limiter_config(world: SandboxWorld, tmp_path: Path, **extra: Any) -> Path:
    """Three API calls per half second, batches of 50: POSTs soon wait for a limiter slot."""
    state = tmp_path / "state.sqlite3"
    config = world.config_dict(
        f"sqlite:///{state}",
        sources=[world.hubspot_source()],
        enrichment={
            **world.enrichment_section(),
            "rate_limit_per_minute": 3,
            "rate_limit_window_seconds": 0.5,
        },
        run={"batch_size": 50, "poll_initial_seconds": 0.2, "poll_max_seconds": 1.0},
        **extra,
    )
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return config_path


def _assert_rerun_settles_everything(world: SandboxWorld, tmp_path: Path, config: Path) -> None:
    """The rerun exits 0, nothing is in_doubt or pending, nobody was sent twice."""
    rerun = _once(config, None)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr[-2000:]
    assert max(world.enrichment.submissions_per_contact().values(), default=0) <= 1
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    try:
        assert not store.in_doubt_batches()
        states = store.batches_by_state()
    finally:
        store.close()
    for state in ("planned", "sending", "submitted", "received", "in_doubt"):
        assert states.get(state, 0) == 0, states
    _assert_every_found_value_written(world, exclude=set())


def test_killed_while_waiting_for_a_limiter_slot_leaves_nothing_in_doubt(
    big_world: SandboxWorld, tmp_path: Path
) -> None:
    """A batch waiting for its slot is still `planned`: the rerun plans it again, no in_doubt."""
    config = _slow_limiter_config(big_world, tmp_path)
    killed = _once(config, "waiting_for_limiter_slot")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    _assert_rerun_settles_everything(big_world, tmp_path, config)


def test_killed_between_two_batches_after_a_stop(big_world: SandboxWorld, tmp_path: Path) -> None:
    """SIGTERM mid-submit, then SIGKILL where the stop is seen: nothing sent after the stop."""
    config = _slow_limiter_config(
        big_world,
        tmp_path,
        schedule={"interval_minutes": 60, "poll_interval_seconds": 0.3},
        webhook={"listen": "127.0.0.1:0"},
    )
    env = {**os.environ, "CRM_SYNC_FAILPOINT": "between_batches_after_stop"}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "crm_sync.cli", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while _accepted_posts(big_world) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _accepted_posts(big_world) >= 1, "the daemon never submitted"
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=20)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert code == -signal.SIGKILL
    posts_at_kill = _accepted_posts(big_world)
    assert posts_at_kill < 7, "the stop came too late to test anything"
    _assert_rerun_settles_everything(big_world, tmp_path, config)


def _accepted_posts(world: SandboxWorld) -> int:
    return sum(1 for c in world.enrichment.calls if c.method == "POST" and c.status == 200)
