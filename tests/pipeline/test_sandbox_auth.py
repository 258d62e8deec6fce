"""`crm-sync sandbox` prints what a user needs to try each auth flow, and it works as printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from crm_sync.config import SourceConfig
from crm_sync.wiring import connector_for

SANDBOX_ARGS = ("--contacts", "5", "--session-ttl", "600")


def _printed_and_checked(service: str) -> list[str]:
    """The sandbox's output up to the end of its auth section, each flow tried while it runs."""
    with subprocess.Popen(
        [sys.executable, "-m", "crm_sync.cli", "sandbox", service, *SANDBOX_ARGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            lines: list[str] = []
            while not lines or not lines[-1].startswith("  sessions"):
                lines.append(proc.stdout.readline().rstrip("\n"))
                assert len(lines) < 60, lines
            _check_salesforce_flows(lines)
            _check_hubspot_oauth(lines)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return lines


def _value(lines: list[str], pattern: str) -> str:
    for line in lines:
        match = re.search(pattern, line)
        if match:
            return match.group(1)
    raise AssertionError(f"{pattern!r} not printed in {lines}")


def _check(settings: dict[str, Any]) -> str:
    source = SourceConfig(
        name="sb", connector="salesforce", settings=settings, fields={"email": "Email"}
    )
    connector = connector_for(source)
    try:
        lines = {r.name: r for r in connector.check()}
    finally:
        connector.close()
    assert lines["salesforce session"].ok, lines
    return lines["salesforce session"].detail


def _check_salesforce_flows(lines: list[str]) -> None:
    url = _value(lines, r"^salesforce: (http://\S+)")
    key = _value(lines, r"consumer key: (\S+)")
    jwt = {
        "consumer_key": key,
        "username": _value(lines, r"jwt: username (\S+),"),
        "private_key_file": _value(lines, r"private key (\S+\.pem)"),
        "login_url": url,
    }
    assert "auth jwt as sandbox@example.com" in _check(jwt)
    secret = _value(lines, r"consumer secret (\S+),")
    cc = {"consumer_key": key, "consumer_secret": secret, "login_url": url}
    assert "auth client_credentials as user 0055g" in _check(cc)


def _check_hubspot_oauth(lines: list[str]) -> None:
    settings = {
        "base_url": _value(lines, r"^hubspot: (http://\S+)"),
        "client_id": _value(lines, r"client_id: (\S+)"),
        "client_secret": _value(lines, r"client_secret: (\S+)"),
        "refresh_token": _value(lines, r"refresh_token: (\S+)"),
    }
    source = SourceConfig(
        name="hs", connector="hubspot", settings=settings, fields={"email": "email"}
    )
    connector = connector_for(source)
    try:
        lines_by_name = {r.name: r for r in connector.check()}
    finally:
        connector.close()
    assert lines_by_name["hubspot.auth"].detail.startswith("oauth as installer@example.com")


def test_sandbox_prints_a_working_jwt_key_pair_and_app_credentials() -> None:
    """The printed key file, consumer key and secret, and HubSpot OAuth app log in as shown."""
    lines = _printed_and_checked("all")
    assert any(line.startswith("salesforce OAuth app") for line in lines)
    assert any(line.startswith("hubspot OAuth app") for line in lines)
    assert "  access tokens last 600 s" in lines
    assert "  sessions from a login expire after 600 s" in lines


def test_sandbox_config_copied_whole_passes_check(tmp_path: Path) -> None:
    """Everything `sandbox all` prints after "# a config" is a config that `check` accepts."""
    with subprocess.Popen(
        [sys.executable, "-m", "crm_sync.cli", "sandbox", "all", "--contacts", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            lines: list[str] = []
            while not lines or "private_key_file" not in lines[-1]:
                lines.append(proc.stdout.readline().rstrip("\n"))
                assert len(lines) < 120, lines
            start = lines.index("# a config that uses these emulators:")
            config = tmp_path / "config.yaml"
            config.write_text("\n".join(lines[start:]) + "\n", encoding="utf-8")
            state = f"sqlite:///{tmp_path / 'state.sqlite3'}"
            text = config.read_text(encoding="utf-8").replace(
                "sqlite:///crm-sync-sandbox.sqlite3", state
            )
            config.write_text(text, encoding="utf-8")
            check = subprocess.run(
                [sys.executable, "-m", "crm_sync.cli", "check", "--config", str(config)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "unknown key" not in check.stdout + check.stderr
