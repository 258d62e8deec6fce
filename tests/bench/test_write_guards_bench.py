"""The write-guard benchmark runs and prints its JSON line (figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_write_guards_bench_prints_figures() -> None:
    """A small run ends with one JSON line holding each check's cost per contact."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "write_guards.py"), "--contacts", "40"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["contacts"] == 40
    for name in ("email_check_us", "phone_check_us", "identity_check_us", "guards_total_us"):
        assert figures[name] > 0
