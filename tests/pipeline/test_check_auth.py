"""`crm-sync check` names each source's auth flow and identity; refused credentials exit 3
with the provider's own error code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from crm_sync.cli import main
from crm_sync.sandbox.salesforce.keys import generate_key_pair
from crm_sync.sandbox.world import SandboxWorld


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def _check(world: SandboxWorld, tmp_path: Path, sources: list[dict[str, Any]]) -> int:
    config = world.config_dict(f"sqlite:///{tmp_path / 's.db'}", sources=sources)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return main(["check", "--config", str(path)])


def test_check_names_flow_and_identity(
    world: SandboxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every flow: OK, the flow and who it acts as; password mode warns about Summer '27."""
    sources = [
        world.salesforce_source("sf-jwt", auth="jwt"),
        world.salesforce_source("sf-cc", auth="client_credentials"),
        world.salesforce_source("sf-password", auth="password"),
        world.hubspot_source("hs-oauth", auth="oauth"),
    ]
    assert _check(world, tmp_path, sources) == 0
    out = capsys.readouterr().out
    assert "source sf-jwt salesforce session: OK accepted; auth jwt as sandbox@example.com" in out
    assert "auth client_credentials as user 0055g" in out  # no openid scope: ids only
    assert "auth password as sandbox@example.com" in out
    assert "source sf-password salesforce auth: OK warning: username-password login" in out
    assert "Summer '27" in out
    assert "source hs-oauth hubspot.auth: OK oauth as installer@example.com" in out


@pytest.mark.parametrize(
    "case",
    [
        ("jwt", {"private_key": generate_key_pair().private_key}, "invalid_grant"),
        ("jwt", {"consumer_key": "3MVGsomeone-else"}, "invalid_client_id"),
        ("client_credentials", {"consumer_secret": "wrong-secret"}, "invalid_client"),
        ("oauth", {"refresh_token": "na1-revoked"}, "BAD_REFRESH_TOKEN"),
    ],
)
def test_refused_credentials_exit_3_with_the_providers_code(
    world: SandboxWorld,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, dict[str, str], str],
) -> None:
    """A refused key, secret or refresh token: exit 3, the line names the provider's code."""
    flow, change, code = case
    if flow == "oauth":
        source = world.hubspot_source(auth="oauth")
    else:
        source = world.salesforce_source(auth=flow)
    source["settings"].update(change)
    assert _check(world, tmp_path, [source]) == 3
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if "FAILED" in line and "source" in line]
    assert failed
    assert code in failed[0]
    assert "wrong-secret" not in out
