"""`crm-sync demo --live`: contacts created while the daemon runs are each enriched, in seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_demo_live_shows_each_created_contact_settled_with_its_latency(tmp_path: Path) -> None:
    """Three contacts created through the HubSpot API: each settled, with seconds since creation."""
    done = subprocess.run(
        [sys.executable, "-m", "crm_sync.cli", "demo", "--live", "--live-contacts", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])["contacts"]
    assert len(rows) == 3
    for row in rows:
        assert row["outcome"]
        assert 0 <= row["seconds_since_created"] < 30
