"""The commands a user types: --dry-run, --json, status, demo, sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from crm_sync.sandbox.world import SandboxWorld
from crm_sync.store.store import Store


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm_sync.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _config(world: SandboxWorld, tmp_path: Path, **sections: Any) -> tuple[str, Path]:
    state = tmp_path / "state.sqlite3"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(world.config_dict(f"sqlite:///{state}", **sections)))
    return str(path), state


def test_dry_run_sends_writes_and_reserves_nothing(world: SandboxWorld, tmp_path: Path) -> None:
    """--dry-run lists contacts, fields and cost; the API, the CRMs and the store are untouched."""
    path, state = _config(world, tmp_path)
    result = _cli("--once", "--dry-run", "--json", "--config", path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    items = report["would_send"]
    assert len(items) > 100
    assert {i["source"] for i in items} == {"hubspot", "salesforce"}
    for item in items:
        expected = 10 * ("contact.phones" in item["fields"]) + ("contact.emails" in item["fields"])
        assert item["worst_case_credits"] == expected
    assert report["worst_case_credits"] == sum(i["worst_case_credits"] for i in items)
    assert not world.enrichment.submitted
    assert not world.hubspot.writes
    assert not world.salesforce.writes
    store = Store.open(f"sqlite:///{state}")
    try:
        assert store.batches_by_state() == {} or sum(store.batches_by_state().values()) == 0
        assert store.credits_in_flight() == 0
        assert store.recent_runs() == []
    finally:
        store.close()


def test_json_report_and_status(world: SandboxWorld, tmp_path: Path) -> None:
    """--json prints one object with per-source counts; status shows the batches and the spend."""
    path, _ = _config(world, tmp_path)
    result = _cli("--once", "--json", "--config", path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    names = {s["name"]: s for s in report["sources"]}
    assert set(names) == {"hubspot", "salesforce"}
    for source in names.values():
        assert source["connector"] in {"hubspot", "salesforce"}
        assert set(source["counts"]) >= {
            "scanned",
            "skipped",
            "submitted",
            "emails_written",
            "phones_written",
            "kept_existing",
            "not_found",
            "rejected",
            "credits_spent",
        }
    spent = sum(s["counts"]["credits_spent"] for s in report["sources"])
    assert spent == world.enrichment.credits_charged
    status = _cli("status", "--json", "--config", path)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["batches_by_state"]["written"] >= 2
    assert data["in_doubt"] == []
    assert sum(d["credits"] for d in data["credits_by_source_and_day"]) == spent
    assert data["recent_runs"][0]["status"] == "ok"
    text = _cli("status", "--config", path).stdout
    assert "Batches by state:" in text
    assert "written" in text


def test_demo_runs_with_no_config(tmp_path: Path) -> None:
    """`crm-sync demo --json` needs no config and no network and writes results back."""
    result = _cli("demo", "--json", "--contacts", "80")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    totals = {
        k: sum(s["counts"][k] for s in report["sources"]) for k in ("submitted", "emails_written")
    }
    assert totals["submitted"] > 50
    assert totals["emails_written"] > 10


def test_sandbox_prints_urls_and_keys(tmp_path: Path) -> None:
    """`crm-sync sandbox all` serves the emulators and prints their URLs and keys."""
    with subprocess.Popen(
        [sys.executable, "-m", "crm_sync.cli", "sandbox", "all", "--contacts", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(3)]
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert lines[0].startswith("crm-sync sandbox")
    assert lines[1].startswith("enrichment API: http://127.0.0.1:")
    assert "api key: sandbox-enrichment-key" in lines[2]


@pytest.mark.parametrize("command", ["--help", "run --help", "check --help", "sandbox --help"])
def test_help_works(command: str) -> None:
    """Every command explains itself."""
    result = _cli(*command.split())
    assert result.returncode == 0
    assert "usage: crm-sync" in result.stdout


def test_debug_logs_carry_no_secret(world: SandboxWorld, tmp_path: Path) -> None:
    """At DEBUG, every API call is logged as JSON, and no key, token or session id appears."""
    path, _ = _config(world, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "crm_sync.cli", "--once", "--config", path],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CRM_SYNC_LOG_LEVEL": "debug"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(e["event"] == "enrichment.call" and e["level"] == "debug" for e in events)
    output = result.stdout + result.stderr
    for secret in (world.enrichment.api_key, world.hubspot.token, world.salesforce.session_id):
        assert secret not in output
