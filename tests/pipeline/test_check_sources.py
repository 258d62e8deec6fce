"""`crm-sync check` against the sandbox: every source OK, or the reason and a non-zero exit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from crm_sync.cli import main
from crm_sync.sandbox.world import SandboxWorld


@pytest.fixture(autouse=True)
def _reset_logging() -> Any:
    yield
    structlog.reset_defaults()


def _write(tmp_path: Path, config: dict[str, Any]) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_every_source_ok(
    world: SandboxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The enrichment key and both sources pass; exit 0; no secret printed."""
    path = _write(tmp_path, world.config_dict(f"sqlite:///{tmp_path / 's.db'}"))
    assert main(["check", "--config", path]) == 0
    out = capsys.readouterr().out
    assert "enrichment: OK" in out
    assert "source hubspot hubspot.token: OK" in out
    assert "source salesforce salesforce session: OK" in out
    assert "FAILED" not in out
    for secret in (world.enrichment.api_key, world.hubspot.token, world.salesforce.session_id):
        assert secret not in out


def test_bad_token_and_missing_field_are_named(
    world: SandboxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused token and a missing field are both named; the field (config, 2) outranks the
    token (3) in the exit code, as `exit_codes.most_severe` orders them."""
    config = world.config_dict(f"sqlite:///{tmp_path / 's.db'}")
    config["sources"][0]["settings"]["access_token"] = "not-the-token"
    config["sources"][1]["fields"]["phone"] = "Fax__c"
    assert main(["check", "--config", _write(tmp_path, config)]) == 2
    out = capsys.readouterr().out
    assert "source hubspot hubspot.token: FAILED HubSpot refused the access token" in out
    assert "source salesforce field phone: FAILED Contact.Fax__c missing" in out
    assert "not-the-token" not in out


def test_missing_field_alone_exits_2(
    world: SandboxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing HubSpot property is a config error (exit 2) naming the field, as in a run."""
    config = world.config_dict(f"sqlite:///{tmp_path / 's.db'}")
    config["sources"] = [world.hubspot_source(fields={"email": "email", "phone": "no_such_prop"})]
    assert main(["check", "--config", _write(tmp_path, config)]) == 2
    out = capsys.readouterr().out
    assert "hubspot.property.no_such_prop: FAILED" in out
    assert (
        "source hubspot mapped fields: FAILED fields.phone: "
        "HubSpot contact property 'no_such_prop' does not exist" in out
    )


def test_read_only_salesforce_field_exits_2(
    world: SandboxWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Salesforce field that exists but is not updateable is refused by check (exit 2)."""
    config = world.config_dict(f"sqlite:///{tmp_path / 's.db'}")
    config["sources"] = [world.salesforce_source(fields={"email": "Email", "phone": "CreatedDate"})]
    assert main(["check", "--config", _write(tmp_path, config)]) == 2
    out = capsys.readouterr().out
    assert "mapped fields: FAILED fields.phone: Salesforce field Contact.CreatedDate" in out
