"""`--once` on SIGTERM/SIGINT: no new work, the run recorded `interrupted`, a report, exit 7.

And no run stays `running` after its process is gone: the next run or `status` marks it
`abandoned`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from crm_sync.exit_codes import EXIT_INTERRUPTED, EXIT_OK
from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from crm_sync.store.store import Store
from tests.pipeline.commands.conftest import cli, hubspot_config, write_config


class Once:
    """A `--once --json` process whose log events are read as they come."""

    def __init__(self, config_path: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "crm_sync.cli", "--once", "--json", "--config", config_path],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.events: list[dict[str, Any]] = []
        self.stderr_lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line)
            if line.startswith("{"):
                self.events.append(json.loads(line))

    def wait_for(self, event: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(e["event"] == event for e in self.events):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no {event} event; stderr:\n{''.join(self.stderr_lines)[-3000:]}")

    def finish(self, timeout: float = 60) -> tuple[int, dict[str, Any]]:
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        self.proc.stdout.close()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        assert "Traceback" not in "".join(self.stderr_lines), "".join(self.stderr_lines)[-3000:]
        return code, json.loads(out)


def _store(state: Path) -> Store:
    return Store.open(f"sqlite:///{state}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_waiting_for_results(tmp_path: Path, sig: signal.Signals) -> None:
    """A signal during the collect wait: exit 7 with a report; the batch is collected next run."""
    options = WorldOptions(hubspot_contacts=60, salesforce_contacts=0, completion_delay=30)
    with SandboxWorld(options) as world:
        path = write_config(tmp_path, hubspot_config(world, tmp_path))
        once = Once(path)
        once.wait_for("batch_submitted")
        once.proc.send_signal(sig)
        code, report = once.finish()
        assert code == EXIT_INTERRUPTED
        assert report["interrupted"] is True
        assert report["exit_code"] == EXIT_INTERRUPTED
        assert any(e["event"] == "run_summary" and e["exit_code"] == 7 for e in once.events)
        store = _store(tmp_path / "state.sqlite3")
        try:
            [run] = store.run_history(5)
            states = store.batches_by_state()
        finally:
            store.close()
        assert run.status == "interrupted"
        assert run.finished_at is not None
        # A batch the strict emulator refused was split before any work (`failed`, contacts
        # freed); what was sent waits, submitted, for the next run.
        assert set(states) <= {"submitted", "failed"}, states
        assert states["submitted"] >= 1
        world.enrichment.finish_all()
        rerun = cli("--once", "--json", "--config", path)
        assert rerun.returncode == EXIT_OK, rerun.stderr[-2000:]
    assert max(world.enrichment.submissions_per_contact().values()) == 1


def test_sigterm_during_submission_leaves_nothing_in_doubt(tmp_path: Path) -> None:
    """SIGTERM between POSTs: exit 7, no batch sending or in doubt; the rest is sent next run."""
    options = WorldOptions(hubspot_contacts=600, salesforce_contacts=0, completion_delay=0.05)
    with SandboxWorld(options) as world:
        world.enrichment.faults.latency = 0.3  # each POST takes a while: the signal lands mid-run
        path = write_config(tmp_path, hubspot_config(world, tmp_path))
        once = Once(path)
        once.wait_for("batch_submitted")
        once.proc.send_signal(signal.SIGTERM)
        code, report = once.finish()
        assert code == EXIT_INTERRUPTED, report
        assert report["interrupted"] is True
        store = _store(tmp_path / "state.sqlite3")
        try:
            states = store.batches_by_state()
            [run] = store.run_history(5)
        finally:
            store.close()
        assert run.status == "interrupted"
        for state in ("sending", "in_doubt", "planned"):
            assert states.get(state, 0) == 0, states
        world.enrichment.faults.latency = 0
        rerun = cli("--once", "--json", "--config", path)
        assert rerun.returncode == EXIT_OK, rerun.stderr[-2000:]
        assert json.loads(rerun.stdout)["in_doubt"] == []
    assert max(world.enrichment.submissions_per_contact().values()) == 1


def test_step_outliving_the_grace_still_records_and_exits_7(tmp_path: Path) -> None:
    """A call that hangs past shutdown_grace_seconds: the run is recorded interrupted, exit 7."""
    options = WorldOptions(hubspot_contacts=60, salesforce_contacts=0, completion_delay=30)
    with SandboxWorld(options) as world:
        config = hubspot_config(world, tmp_path)
        config["schedule"] = {"shutdown_grace_seconds": 0.5}
        config["run"] = {**config["run"], "poll_initial_seconds": 0.1}
        path = write_config(tmp_path, config)
        once = Once(path)
        once.wait_for("batch_submitted")
        world.enrichment.faults.latency = 60  # every poll now hangs
        time.sleep(0.3)
        once.proc.send_signal(signal.SIGTERM)
        code, report = once.finish(timeout=30)
        world.enrichment.faults.latency = 0
        assert code == EXIT_INTERRUPTED
        assert report["interrupted"] is True
        assert "grace" in report["reason"]
        store = _store(tmp_path / "state.sqlite3")
        try:
            [run] = store.run_history(5)
        finally:
            store.close()
        assert run.status == "interrupted"


def test_killed_run_is_marked_abandoned_by_status(world: SandboxWorld, tmp_path: Path) -> None:
    """A run SIGKILLed mid-way is `abandoned` (not `running`) as soon as status looks."""
    path = write_config(tmp_path, hubspot_config(world, tmp_path))
    killed = subprocess.run(
        [sys.executable, "-m", "crm_sync.cli", "--once", "--config", path],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CRM_SYNC_FAILPOINT": "after_plan"},
    )
    assert killed.returncode == -9
    status = cli("status", "--json", "--config", path)
    assert status.returncode == EXIT_OK, status.stderr
    [run] = json.loads(status.stdout)["recent_runs"]
    assert run["status"] == "abandoned"
    assert run["reason"]
