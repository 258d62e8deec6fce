"""Smoke tests of bench/pipeline.py: it runs end to end and its last line has the agreed shape."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "pipeline.py"
TARGET_KEYS = {
    "contacts_per_minute_fraction": float,
    "enrichment_calls_per_100": float,
    "crm_calls_per_100": float,
    "cpu_ms_per_contact": float,
    "peak_rss_mb": float,
}


def _bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_pipeline", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


SMALL_RUN = ["--contacts", "300", "--calls", "2", "--window", "0.2", "--completion-delay", "0.05"]


@pytest.fixture(scope="module")
def v1_figures() -> dict[str, Any]:
    """One small v1 run, shared by the smoke test and the v1/v2 comparison."""
    return _bench_json(*SMALL_RUN)


def test_bench_runs_and_prints_the_figures_as_json_last(v1_figures: dict[str, Any]) -> None:
    """A 300-contact run exits 0 and ends with one JSON object holding the five target figures."""
    figures = v1_figures
    for key, kind in TARGET_KEYS.items():
        assert isinstance(figures[key], int | kind), key
        assert figures[key] > 0, key
    assert figures["submitted"] > 0
    assert figures["pending_batches"] == 0
    assert figures["resubmitted_contacts"] == 0
    assert figures["rate_limited"] == 0
    assert figures["max_calls_in_any_window"] <= 2


def _bench_json(*args: str) -> dict[str, Any]:
    """Run bench/pipeline.py in a subprocess (its emulators need an importable module)."""
    done = subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def test_v2_bench_reports_what_v1_reports(v1_figures: dict[str, Any]) -> None:
    """`--api-version v2` submits, calls and writes exactly what v1 does on the same world."""
    v2 = _bench_json(*SMALL_RUN, "--api-version", "v2")
    same = ("submitted", "values_written", "enrichment_calls_per_100", "crm_calls_per_100")
    assert {k: v1_figures[k] for k in same} == {k: v2[k] for k in same}
    assert v2["api_version"] == "v2"
    assert v2["pending_batches"] == v2["resubmitted_contacts"] == 0


def test_whole_bursts_counts_only_calls_in_complete_bursts() -> None:
    """The span runs from the first call's end over whole bursts; a partial last one is left out."""
    bench = _bench_module()
    # (API calls so far, end time, contacts): credits, then POSTs in bursts of 2 per 1.0 s
    ends = [(1, 0.0, 0), (2, 0.1, 100), (3, 1.0, 100), (4, 1.1, 100), (5, 2.0, 100), (6, 2.1, 50)]
    span, contacts = bench.whole_bursts(ends, 2)
    assert (span, contacts) == (2.0, 400)


def test_whole_bursts_without_a_post_measures_nothing() -> None:
    """A run that only asked for credits has no span, so the fraction cannot divide by zero."""
    bench = _bench_module()
    assert bench.whole_bursts([(1, 0.0, 0)], 6) == (0.0, 0)
