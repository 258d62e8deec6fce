"""Logs of a run: run_id on every line, one run_summary, CRM calls at DEBUG without secrets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crm_sync.exit_codes import EXIT_OK
from crm_sync.sandbox.world import SandboxWorld
from tests.pipeline.commands.conftest import cli, write_config


def _events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_debug_run_logs_every_crm_call_with_run_id(world: SandboxWorld, tmp_path: Path) -> None:
    """Both CRMs' calls at DEBUG (method, path, status, duration); run_id on every line."""
    path = write_config(tmp_path, world.config_dict(f"sqlite:///{tmp_path / 's.sqlite3'}"))
    result = cli("--once", "--json", "--config", path, env={"CRM_SYNC_LOG_LEVEL": "DEBUG"})
    assert result.returncode == EXIT_OK, result.stderr[-2000:]
    events = _events(result.stderr)
    run_id = json.loads(result.stdout)["run_id"]
    assert [e for e in events if e.get("run_id") != run_id] == []
    calls = [e for e in events if e["event"] == "crm.call"]
    services = {e["service"] for e in calls}
    assert services == {"hubspot", "salesforce"}
    for call in calls:
        assert call["level"] == "debug"
        assert call["method"] in {"GET", "POST", "PATCH"}
        assert call["path"].startswith("/")
        assert "?" not in call["path"]
        assert isinstance(call["status"], int)
        assert call["duration_ms"] is not None
    assert any(e["service"] == "hubspot" and e["method"] == "POST" for e in calls)
    assert any(e.get("source") for e in calls)
    text = result.stdout + result.stderr
    for secret in (world.hubspot.token, world.salesforce.session_id, world.enrichment.api_key):
        assert secret not in text
    summaries = [e for e in events if e["event"] == "run_summary"]
    assert len(summaries) == 1
    summary = summaries[0]
    assert summary["exit_code"] == EXIT_OK
    assert summary["counts"]["submitted"] > 0
    assert summary["credits_spent"] == world.enrichment.credits_charged
    assert summary["duration_seconds"] >= 0
    written = [e for e in events if e["event"] == "batch_written"]
    assert written
    assert all(e.get("batch") and e.get("source") for e in written)


def test_info_run_has_no_crm_call_lines(world: SandboxWorld, tmp_path: Path) -> None:
    """At INFO the per-call lines stay out of the log."""
    path = write_config(tmp_path, world.config_dict(f"sqlite:///{tmp_path / 's.sqlite3'}"))
    result = cli("--once", "--config", path)
    assert result.returncode == EXIT_OK, result.stderr[-2000:]
    assert not [e for e in _events(result.stderr) if e["event"] == "crm.call"]


class _RefusingConnector:
    """The real connector, except that the CRM refuses the first record of every write."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def write(self, updates: Any) -> list[Any]:
        from connectors.base import WriteOutcome, WriteStatus

        refused = WriteOutcome(updates[0].record_id, WriteStatus.REJECTED, "CONFLICT: taken")
        return [refused, *self._inner.write(updates[1:])]


def test_refused_write_is_a_warning(world: SandboxWorld, tmp_path: Path) -> None:
    """A record the CRM refuses is logged at warning, with its batch and reason."""
    from structlog.testing import capture_logs

    from crm_sync.config import parse_config
    from crm_sync.pipeline.cycle import run_cycle
    from crm_sync.wiring import open_context

    raw = world.config_dict(f"sqlite:///{tmp_path / 's.sqlite3'}", sources=[world.hubspot_source()])
    with open_context(parse_config(raw, env={})) as ctx:
        ctx.connectors["hubspot"] = _RefusingConnector(ctx.connectors["hubspot"])  # type: ignore[assignment]
        with capture_logs() as logs:
            report = run_cycle(ctx)
    refused = [e for e in logs if e["event"] == "write_refused"]
    assert refused
    assert report.sources[0].counts.rejected == len(refused)
    for event in refused:
        assert event["log_level"] == "warning"
        assert "CONFLICT" in event["reason"]
        assert event["record"]
