"""Helpers for the operator-facing tests: the real `crm-sync` in a subprocess, on the emulators."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from crm_sync.sandbox.world import SandboxWorld, WorldOptions


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    """Three emulators with enough HubSpot contacts for three batches, fast completion."""
    options = WorldOptions(hubspot_contacts=320, salesforce_contacts=40, completion_delay=0.05)
    with SandboxWorld(options) as started:
        yield started


def cli(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    keep_env: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`crm-sync ARGS` as a user runs it; `env` adds to (or, without keep_env, replaces) ours."""
    base = dict(os.environ) if keep_env else {"PATH": os.environ.get("PATH", "")}
    base.pop("CRM_SYNC_LOG_LEVEL", None)
    base.pop("CRM_SYNC_FAILPOINT", None)
    return subprocess.run(
        [sys.executable, "-m", "crm_sync.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**base, **(env or {})},
    )


def write_config(tmp_path: Path, config: dict[str, Any], name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def hubspot_config(world: SandboxWorld, tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """A config with only the HubSpot source and a SQLite store in tmp_path."""
    config = world.config_dict(
        f"sqlite:///{tmp_path / 'state.sqlite3'}", sources=[world.hubspot_source()]
    )
    config.update(sections)
    return config


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int, *names: str) -> None:
    """The documented code, no traceback, and a message naming each of `names`."""
    output = result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == code, f"exit {result.returncode}, wanted {code}\n{output[-3000:]}"
    for name in names:
        assert name in result.stderr, f"{name!r} not named in:\n{result.stderr[-3000:]}"
