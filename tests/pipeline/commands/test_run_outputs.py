"""What a `--once` run tells the outside: apprise notifications and a Pushgateway push.

The real CLI in a subprocess against the sandbox emulators; a local HTTP server stands in for
the notification endpoint (apprise's `json://`) and for the Pushgateway.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client.parser import text_string_to_metric_families

from crm_sync.daemon.service import Daemon
from crm_sync.exit_codes import EXIT_AUTH, EXIT_CREDITS, EXIT_IN_DOUBT, EXIT_TRANSIENT
from crm_sync.outputs.metrics import Metrics
from crm_sync.outputs.notify import notices_for
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.report import RunReport, SourceCounts, SourceReport
from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from crm_sync.store.store import Store
from tests.daemon.conftest import make_config
from tests.pipeline.commands.recorder import Recorded, Recorder
from tests.support.daemon_app import IdleClient

NOTIFY_PASSWORD = "notify-secret-7f3a9"


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    options = WorldOptions(
        hubspot_contacts=30, salesforce_contacts=10, completion_delay=0.05, rate_limit_calls=1000
    )
    with SandboxWorld(options) as started:
        yield started


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _run_once(
    world: SandboxWorld, tmp_path: Path, **sections: Any
) -> subprocess.CompletedProcess[str]:
    salesforce = world.salesforce_source()
    salesforce["settings"]["session_id"] = "refused-session"  # the org refuses it: exit 3
    config = world.config_dict(
        f"sqlite:///{tmp_path / 'state.sqlite3'}",
        sources=[world.hubspot_source(budget={"per_run": 5}), salesforce],
        **sections,
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "crm_sync.cli", "--once", "--json", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _messages(requests: list[Recorded]) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in requests if r.method == "POST"]


def test_failing_run_notifies_and_pushes_its_metrics(world: SandboxWorld, tmp_path: Path) -> None:
    """A run with a refused source: `failed` and `budget_reached` reach the JSON endpoint, a
    dead second URL only costs a log line, and the pushed payload parses with the run's figures."""
    with Recorder() as hook, Recorder() as gateway:
        result = _run_once(
            world,
            tmp_path,
            notify={
                "urls": [
                    f"json://crm:{NOTIFY_PASSWORD}@127.0.0.1:{hook.port}/hooks/crm-sync",
                    f"json://127.0.0.1:{_closed_port()}/nobody-listens",
                ],
                "events": ["failed", "in_doubt", "low_balance", "budget_reached", "finished"],
                "timeout_seconds": 2,
            },
            metrics={"pushgateway_url": gateway.url},
        )
        assert result.returncode == EXIT_AUTH, result.stderr[-3000:]
        received = _messages(hook.wait_for(3))
        pushes = gateway.wait_for(1)

    by_title = {m["title"]: m for m in received}
    failed = by_title["crm-sync salesforce: failed"]
    assert failed["type"] == "failure"
    assert "crm-sync check --config" in failed["message"]
    budget = by_title["crm-sync hubspot: budget reached"]
    assert "budget reached" in budget["message"]
    assert "crm-sync: finished" in by_title
    assert all(r.path == "/hooks/crm-sync" for r in hook.requests)
    # The dead URL is logged by position and scheme, never by value; the run's code is unchanged.
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    dead = [e for e in logged if e.get("event") == "notification_failed"]
    assert dead
    assert {(e["index"], e["scheme"]) for e in dead} == {(1, "json")}
    assert NOTIFY_PASSWORD not in result.stderr
    assert "nobody-listens" not in result.stderr

    push = pushes[0]
    assert (push.method, push.path) == ("PUT", "/metrics/job/crm-sync")
    families = {f.name: f for f in text_string_to_metric_families(push.body.decode())}

    def value(name: str, **labels: str) -> float:
        samples = [s for s in families[name].samples if s.labels == labels]
        assert len(samples) == 1, (name, labels, families[name].samples)
        return float(samples[0].value)

    assert value("crm_sync_last_run_exit_code") == EXIT_AUTH
    assert value("crm_sync_last_run_duration_seconds") > 0
    assert value("crm_sync_last_run_source_exit_code", source="salesforce") == EXIT_AUTH
    assert value("crm_sync_last_run_source_exit_code", source="hubspot") == 0
    assert value("crm_sync_last_run_contacts", source="hubspot", outcome="submitted") == 5
    assert value("crm_sync_last_run_credits_spent", source="hubspot") >= 1
    assert value("crm_sync_source_consecutive_failures", source="salesforce") == 1
    assert value("crm_sync_source_consecutive_failures", source="hubspot") == 0
    assert value("crm_sync_source_last_success_timestamp_seconds", source="hubspot") > 0
    assert value("crm_sync_in_doubt_batches") == 0
    assert value("crm_sync_balance_credits") > 0
    # The run as a whole failed and none succeeded before: 0 stands for "never".
    assert value("crm_sync_last_success_timestamp_seconds") == 0


def test_unreachable_gateway_and_endpoint_leave_a_good_run_at_zero(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """Nothing listens for notifications or pushes: a run that worked still exits 0."""
    config = world.config_dict(
        f"sqlite:///{tmp_path / 'state.sqlite3'}",
        sources=[world.hubspot_source()],
        notify={"urls": [f"json://127.0.0.1:{_closed_port()}/x"], "events": ["finished"]},
        metrics={
            "pushgateway_url": f"http://127.0.0.1:{_closed_port()}",
            "push_timeout_seconds": 2,
        },
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "crm_sync.cli", "--once", "--json", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = {
        json.loads(line).get("event") for line in result.stderr.splitlines() if line[:1] == "{"
    }
    assert {"notification_failed", "metrics_push_failed"} <= events


def test_a_run_that_cannot_run_still_notifies(world: SandboxWorld, tmp_path: Path) -> None:
    """The enrichment API on a closed port: the run ends early (exit 5), and `failed` says why."""
    port = _closed_port()
    with Recorder() as hook:
        config = world.config_dict(
            f"sqlite:///{tmp_path / 'state.sqlite3'}",
            sources=[world.hubspot_source()],
            notify={"urls": [f"json://127.0.0.1:{hook.port}/x"]},
        )
        config["enrichment"]["base_url"] = f"http://127.0.0.1:{port}/api/v1"
        config["enrichment"]["max_retries"] = 0
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        result = subprocess.run(
            [sys.executable, "-m", "crm_sync.cli", "--once", "--json", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == EXIT_TRANSIENT, result.stderr[-3000:]
        (message,) = _messages(hook.wait_for(1))
    assert message["title"] == "crm-sync: failed"
    assert f"127.0.0.1:{port}" in message["message"]
    assert "crm-sync check --config" in message["message"]


def _report_with(source: SourceReport, exit_code: int) -> RunReport:
    report = RunReport("r1", datetime.now(UTC), exit_code=exit_code)
    report.sources.append(source)
    return report


def test_events_per_source_outcome() -> None:
    """low_balance for a source stopped by credits, in_doubt for contacts left in doubt, neither
    counted as `failed`; a run-level failure reason becomes one `failed` notice."""
    low = SourceReport(
        "hs", "hubspot", status="skipped", message="balance 5 is below min_balance 10"
    )
    low.exit_code = EXIT_CREDITS
    doubt = SourceReport("sf", "salesforce", SourceCounts(in_doubt=3))
    events = [(n.event, n.source) for n in notices_for(_report_with(low, EXIT_CREDITS))]
    assert events == [("low_balance", "hs"), ("finished", None)]
    notices = notices_for(_report_with(doubt, EXIT_IN_DOUBT), "/etc/c.yaml")
    assert [(n.event, n.source) for n in notices] == [("in_doubt", "sf"), ("finished", None)]
    assert "crm-sync status --config /etc/c.yaml" in notices[0].body
    assert "crm-sync resolve" in notices[0].body
    standing = _report_with(SourceReport("sf", "salesforce"), EXIT_IN_DOUBT)
    standing.in_doubt = [
        {
            "batch": "b-7",
            "source": "sf",
            "name": "crm-sync sf 2026-11-30 b-7",
            "contacts": 40,
            "worst_case_credits": 440,
        }
    ]
    (told,) = [n for n in notices_for(standing, "/etc/c.yaml") if n.event == "in_doubt"]
    assert told.source == "sf"
    assert 'batch b-7 "crm-sync sf 2026-11-30 b-7" (40 contacts, up to 440 credits)' in told.body
    assert "crm-sync resolve b-7 --config /etc/c.yaml --sent" in told.body
    ended = notices_for(_report_with(SourceReport("hs", "hubspot"), 5), failure="store down")
    assert [(n.event, n.reason) for n in ended if n.event == "failed"] == [("failed", "store down")]


def test_the_daemon_notifies_a_failed_cycle(tmp_path: Path) -> None:
    """The daemon's cycle cannot reach the API: its `failed` notice reaches the endpoint."""
    with Recorder() as hook:
        config = make_config(tmp_path, notify={"urls": [f"json://127.0.0.1:{hook.port}/d"]})
        store = Store.open(config.state.url)
        ctx = Context(config=config, store=store, client=IdleClient(), connectors={})
        never = IntervalTrigger(hours=24)
        daemon = Daemon(
            ctx,
            metrics=Metrics(),
            scheduler_options={"cycle_trigger_override": never, "poll_trigger_override": never},
        )
        daemon.start()
        try:
            (message,) = _messages(hook.wait_for(1))
        finally:
            daemon.request_stop()
            daemon.shutdown()
            store.close()
    assert message["title"] == "crm-sync: failed"
    assert message["type"] == "failure"


def test_a_lasting_condition_is_not_told_again_by_the_next_run(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """Two CronJob-like runs over a budget: `budget_reached` once, `finished` twice."""
    with Recorder() as hook:
        config = world.config_dict(
            f"sqlite:///{tmp_path / 'state.sqlite3'}",
            sources=[world.hubspot_source(budget={"per_run": 5})],
            notify={
                "urls": [f"json://127.0.0.1:{hook.port}/x"],
                "events": ["budget_reached", "finished"],
            },
        )
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        for expected in (2, 3):
            result = subprocess.run(
                [sys.executable, "-m", "crm_sync.cli", "--once", "--json", "--config", str(path)],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, result.stderr[-3000:]
            titles = [m["title"] for m in _messages(hook.wait_for(expected))]
    assert titles == [
        "crm-sync hubspot: budget reached",
        "crm-sync: finished",
        "crm-sync: finished",
    ]
