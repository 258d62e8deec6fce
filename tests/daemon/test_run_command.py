"""`crm-sync run` as a real subprocess against the sandbox emulators: start, serve, SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import yaml

from crm_sync.http_server import BackgroundServer
from crm_sync.sandbox.enrichment import EnrichmentEmulator
from crm_sync.sandbox.hubspot import HubSpotEmulator

GRACE = 5.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def emulators() -> Iterator[
    tuple[EnrichmentEmulator, BackgroundServer, HubSpotEmulator, BackgroundServer]
]:
    """The enrichment API and HubSpot emulators on loopback sockets."""
    enrichment = EnrichmentEmulator(completion_delay=0.05)
    hubspot = HubSpotEmulator(contacts=5)
    with BackgroundServer(enrichment.app) as api, BackgroundServer(hubspot.app) as crm:
        yield enrichment, api, hubspot, crm


def _write_config(tmp_path: Path, emulators: Any) -> Path:
    enrichment, api, hubspot, crm = emulators
    config = {
        "enrichment": {"api_key": enrichment.api_key, "base_url": api.url},
        "state": {"url": f"sqlite:///{tmp_path / 'state.sqlite3'}"},
        "schedule": {"interval_minutes": 60, "shutdown_grace_seconds": GRACE},
        "webhook": {"listen": "127.0.0.1:0"},
        "sources": [
            {
                "name": "hs",
                "connector": "hubspot",
                "settings": {"access_token": hubspot.token, "base_url": crm.url},
                "fields": {"email": "email", "phone": "phone"},
            }
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _pump(stream: IO[str], lines: queue.Queue[dict[str, Any]], raw: list[str]) -> None:
    for line in stream:
        raw.append(line)
        try:
            lines.put(json.loads(line))
        except ValueError:
            continue


def _wait_event(
    lines: queue.Queue[dict[str, Any]], names: set[str], timeout: float, raw: list[str]
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        if event.get("event") in names:
            return event
    raise AssertionError(f"none of {names} within {timeout}s: {''.join(raw)[-3000:]}")


def test_sigterm_stops_the_daemon_with_exit_zero(tmp_path: Path, emulators: Any) -> None:
    """The daemon logs its port, serves health, runs its first cycle, and exits 0 on SIGTERM."""
    config = _write_config(tmp_path, emulators)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "crm_sync.cli", "run", "--config", str(config)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    lines: queue.Queue[dict[str, Any]] = queue.Queue()
    raw: list[str] = []
    assert process.stderr is not None
    pump = threading.Thread(target=_pump, args=(process.stderr, lines, raw), daemon=True)
    pump.start()
    try:
        port = _wait_event(lines, {"webhook_listening"}, 20, raw)["port"]
        assert port > 0
        _wait_event(lines, {"run_summary", "cycle_failed"}, 20, raw)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
            assert http.get("/healthz").status_code == 200
            assert http.get("/readyz").status_code == 200
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGTERM)  # a second signal is harmless
        code = process.wait(timeout=GRACE + 5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        pump.join(timeout=5)
        process.stderr.close()
    output = "".join(raw)
    assert code == 0, output[-2000:]
    assert "daemon_stopped" in output
    assert emulators[0].api_key not in output
    assert emulators[2].token not in output
