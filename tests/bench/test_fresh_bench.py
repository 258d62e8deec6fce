"""Smoke test of bench/fresh.py: a small run ends with one JSON line holding the agreed figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fresh.py"


@pytest.mark.slow
def test_fresh_bench_prints_latency_and_backlog_fraction_as_json_last() -> None:
    """A 600-contact portal and 12 new contacts at a 20x clock: every new contact settled."""
    args = ["--contacts", "600", "--fresh", "12", "--calls", "2", "--window", "0.1"]
    done = subprocess.run(
        [sys.executable, str(BENCH), *args, "--no-baseline"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["fresh_settled"] == figures["fresh_created"] == 12
    assert 0 < figures["p50_s"] <= figures["p95_s"]
    assert 0 < figures["contacts_per_minute_fraction"] <= 1.05
    assert figures["resubmitted_contacts"] == 0
    assert figures["fresh_posts"] >= 1
