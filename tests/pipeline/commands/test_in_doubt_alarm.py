"""In doubt is a standing alarm: every `--once` and `status` exit 6 until `resolve` settles it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crm_sync.exit_codes import EXIT_IN_DOUBT, EXIT_OK
from crm_sync.sandbox.world import SandboxWorld
from crm_sync.store.store import Store
from tests.pipeline.commands.conftest import cli, hubspot_config, write_config


def _killed_at(config_path: str, failpoint: str) -> None:
    """`--once` SIGKILLed at a failpoint, as a node loss would."""
    result = subprocess.run(
        [sys.executable, "-m", "crm_sync.cli", "--once", "--config", config_path],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CRM_SYNC_FAILPOINT": failpoint},
    )
    assert result.returncode == -9, result.stderr[-2000:]


def _status(config_path: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli("status", "--json", "--config", config_path, *extra)


@pytest.fixture
def in_doubt_setup(world: SandboxWorld, tmp_path: Path) -> tuple[str, Path]:
    config = hubspot_config(world, tmp_path)
    path = write_config(tmp_path, config)
    _killed_at(path, "after_submit")
    return path, tmp_path / "state.sqlite3"


def test_in_doubt_alarm_stands_until_resolved_not_sent(
    world: SandboxWorld, in_doubt_setup: tuple[str, Path]
) -> None:
    """Two consecutive --once exit 6, status exits 6 and names the batch; --not-sent clears it."""
    path, _ = in_doubt_setup
    first = cli("--once", "--json", "--config", path)
    second = cli("--once", "--json", "--config", path)
    assert first.returncode == EXIT_IN_DOUBT, first.stderr[-2000:]
    assert second.returncode == EXIT_IN_DOUBT, second.stderr[-2000:]
    report = json.loads(second.stdout)
    assert len(report["in_doubt"]) == 1
    doubt = report["in_doubt"][0]
    assert doubt["batch"] in doubt["name"]

    status = _status(path)
    assert status.returncode == EXIT_IN_DOUBT, status.stderr
    data = json.loads(status.stdout)
    [item] = data["in_doubt"]
    assert item["batch"] == doubt["batch"]
    assert item["batch"] in item["name"]
    # The first batch of 100 candidates, less those whose input the API would refuse.
    assert 90 <= len(item["contacts"]) <= 100
    assert item["worst_case_credits"] >= len(item["contacts"])
    text = cli("status", "--config", path)
    assert text.returncode == EXIT_IN_DOUBT
    assert f"crm-sync resolve {item['batch']} --not-sent" in text.stdout
    assert item["name"] in text.stdout

    # The name in the provider's dashboard carries the batch id: that is how a person finds it.
    names = [world.enrichment.result_body(i)["name"] for i in world.enrichment.job_ids()]
    assert any(item["batch"] in name for name in names)

    resolved = cli("resolve", item["batch"][:8], "--not-sent", "--config", path)
    assert resolved.returncode == EXIT_OK, resolved.stderr
    assert item["batch"] in resolved.stdout
    assert _status(path).returncode == EXIT_OK
    again = cli("--once", "--json", "--config", path)
    assert again.returncode == EXIT_OK, again.stderr[-2000:]
    assert json.loads(again.stdout)["in_doubt"] == []


def test_resolve_sent_with_enrichment_id_writes_the_paid_result(
    world: SandboxWorld, in_doubt_setup: tuple[str, Path]
) -> None:
    """--sent --enrichment-id fetches the result and writes it; the alarm clears."""
    path, state = in_doubt_setup
    assert cli("--once", "--config", path).returncode == EXIT_IN_DOUBT
    [item] = json.loads(_status(path).stdout)["in_doubt"]
    [enrichment_id] = [
        i
        for i in world.enrichment.job_ids()
        if item["batch"] in world.enrichment.result_body(i)["name"]
    ]
    world.enrichment.finish_all()
    writes_before = len(world.hubspot.writes)
    resolved = cli(
        "resolve", item["batch"], "--sent", "--enrichment-id", enrichment_id, "--config", path
    )
    assert resolved.returncode == EXIT_OK, resolved.stderr[-2000:]
    assert "written" in resolved.stdout
    assert len(world.hubspot.writes) > writes_before
    store = Store.open(f"sqlite:///{state}")
    try:
        batch = store.get_batch(item["batch"])
        assert batch is not None
        assert batch.state == "written"
        assert batch.enrichment_id == enrichment_id
        assert store.in_doubt_batches() == []
    finally:
        store.close()
    assert _status(path).returncode == EXIT_OK


def test_resolve_sent_without_id_starts_the_cooldown(
    world: SandboxWorld, in_doubt_setup: tuple[str, Path]
) -> None:
    """--sent alone releases the contacts as asked: the next run does not send them again."""
    path, _state = in_doubt_setup
    assert cli("--once", "--config", path).returncode == EXIT_IN_DOUBT
    [item] = json.loads(_status(path).stdout)["in_doubt"]
    contacts = set(item["contacts"])
    assert cli("resolve", item["batch"], "--sent", "--config", path).returncode == EXIT_OK
    before = world.enrichment.submissions_per_contact()
    rerun = cli("--once", "--config", path)
    assert rerun.returncode == EXIT_OK, rerun.stderr[-2000:]
    after = world.enrichment.submissions_per_contact()
    assert all(after[c] == before[c] for c in contacts)


def test_resolve_refuses_what_is_not_in_doubt(world: SandboxWorld, tmp_path: Path) -> None:
    """An unknown or settled batch is a clean error naming it, not a traceback."""
    path = write_config(tmp_path, hubspot_config(world, tmp_path))
    assert cli("--once", "--config", path).returncode == EXIT_OK
    unknown = cli("resolve", "no-such-batch", "--not-sent", "--config", path)
    assert unknown.returncode == 2
    assert "no-such-batch" in unknown.stderr
    assert "Traceback" not in unknown.stderr
