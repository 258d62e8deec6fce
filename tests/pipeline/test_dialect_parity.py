"""The same seeded world gets the same values written whichever API version is spoken."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from crm_sync.cli import main
from crm_sync.commands.demo import run_demo
from crm_sync.config import parse_config
from crm_sync.pipeline.cycle import collect_and_write, run_cycle
from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from crm_sync.wiring import open_context
from tests.support.processes import assert_every_found_value_written

COUNTS = ("submitted", "emails_written", "phones_written", "not_found", "credits_spent")


WRITTEN_FIELDS = ("email", "phone", "Email", "MobilePhone")


def _values(records: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The fields crm-sync writes, per (CRM, record id); timestamps are not compared."""
    return {
        (crm, rid): {f: record.get(f) for f in WRITTEN_FIELDS if f in record}
        for crm, by_id in records.items()
        for rid, record in by_id.items()
    }


def _counts(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: {k: s["counts"].get(k) for k in COUNTS} for s in report["sources"]}


def test_demo_writes_the_same_values_in_v1_and_v2() -> None:
    """`demo` on v1 and v2: every CRM record ends identical, and something was written."""
    v1 = run_demo(contacts=60, seed=11, api_version="v1")
    v2 = run_demo(contacts=60, seed=11, api_version="v2")
    assert v1.report.exit_code == v2.report.exit_code == 0
    assert _values(v1.records) == _values(v2.records)
    assert _counts(v1.report.as_dict()) == _counts(v2.report.as_dict())
    assert sum(s.counts.emails_written + s.counts.phones_written for s in v2.report.sources) > 20


def test_demo_cli_takes_the_api_version(capsys: Any) -> None:
    """`crm-sync demo --api-version v2 --json` runs and reports what v1 reports."""
    reports = {}
    for version in ("v1", "v2"):
        code = main(["demo", "--api-version", version, "--json", "--contacts", "40"])
        assert code == 0
        reports[version] = json.loads(capsys.readouterr().out)
    assert _counts(reports["v1"]) == _counts(reports["v2"])


def _once_records(tmp_path: Path, api_version: str) -> dict[str, Any]:
    """Run `crm-sync --once` (a real subprocess) on a fresh world; the CRM records after."""
    options = WorldOptions(
        hubspot_contacts=80, salesforce_contacts=40, completion_delay=0.05, api_version=api_version
    )
    with SandboxWorld(options) as world:
        config_path = tmp_path / f"config-{api_version}.yaml"
        state = f"sqlite:///{tmp_path / f'state-{api_version}.sqlite3'}"
        raw = world.config_dict(state, run={"poll_initial_seconds": 0.2, "poll_max_seconds": 0.5})
        assert raw["enrichment"]["api_version"] == api_version
        config_path.write_text(yaml.safe_dump(raw))
        env = {k: v for k, v in os.environ.items() if k != "CRM_SYNC_FAILPOINT"}
        done = subprocess.run(
            [sys.executable, "-m", "crm_sync.cli", "--once", "--config", str(config_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return {
            "hubspot": copy.deepcopy(world.hubspot.records),
            "salesforce": copy.deepcopy(world.salesforce.records),
        }


def test_once_writes_the_same_values_in_v1_and_v2(tmp_path: Path) -> None:
    """`--once` with api_version v1, then v2, on two copies of one seeded world: same records."""
    v1 = _values(_once_records(tmp_path, "v1"))
    v2 = _values(_once_records(tmp_path, "v2"))
    assert v1 == v2
    assert sum(bool(v.get("email") or v.get("Email")) for v in v2.values()) > 40


def test_switching_version_with_batches_in_flight(tmp_path: Path) -> None:
    """Batches submitted in v1 are collected and written by a run configured for v2."""
    options = WorldOptions(hubspot_contacts=60, salesforce_contacts=30, completion_delay=0.5)
    with SandboxWorld(options) as world:
        state = f"sqlite:///{tmp_path / 'state.sqlite3'}"
        v1 = parse_config(world.config_dict(state), env={})
        with open_context(v1) as ctx:
            first = run_cycle(ctx, wait=False)  # submits, and leaves the jobs running
            assert ctx.store.submitted_batches()
        raw = world.config_dict(state)
        raw["enrichment"].update(api_version="v2", base_url=world.enrichment_url[:-2] + "v2")
        v2 = parse_config(raw, env={})
        with open_context(v2) as ctx:
            collect_and_write(ctx, {}, wait=True, deadline=ctx.clock.now() + timedelta(seconds=30))
            states = ctx.store.batches_by_state()
            assert states.get("written")
            assert not any(states.get(s) for s in ("planned", "sending", "submitted", "received"))
        assert first.exit_code == 0
        assert assert_every_found_value_written(world) > 20
        assert max(world.enrichment.submissions_per_contact().values()) == 1
