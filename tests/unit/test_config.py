"""Config loading: every problem named by its key, secrets from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_sync.cli import main
from crm_sync.config import load_config, parse_config
from crm_sync.errors import ConfigError


def test_enrichment_only_is_valid_and_interpolated() -> None:
    """A file with only an enrichment section is valid; ${VAR} comes from the environment."""
    config = parse_config(
        {"enrichment": {"provider": "deepenrich", "api_key": "${KEY}"}}, env={"KEY": "k-123"}
    )
    assert config.enrichment.api_key.get_secret_value() == "k-123"
    assert config.enrichment.resolved_base_url == "https://app.deepenrich.com/api/v1"
    assert "k-123" not in repr(config)


def test_every_problem_is_named_by_its_key() -> None:
    """Unknown keys, missing keys and missing variables are all reported at once."""
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "enrichment": {"api_key": "${NOPE}", "colour": "blue"},
                "state": {"url": "mysql://x"},
            },
            env={},
        )
    text = str(info.value)
    assert "enrichment.api_key: environment variable NOPE is not set" in text
    assert "enrichment.colour: unknown key" in text
    assert "state.url:" in text


def test_missing_enrichment_section() -> None:
    """The one required section is named when absent."""
    with pytest.raises(ConfigError, match="enrichment: required key is missing"):
        parse_config({"state": {}}, env={})


def test_unknown_connector_lists_known_ones() -> None:
    """An unknown connector name fails with the list of known names."""
    with pytest.raises(
        ConfigError, match=r"sources\[0\]\.connector: unknown connector 'pipedrive'"
    ):
        parse_config(
            {
                "enrichment": {"api_key": "k"},
                "sources": [{"name": "p", "connector": "pipedrive", "fields": {"email": "email"}}],
            },
            env={},
        )


def test_bad_config_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI turns a bad config into exit code 2 and a message that names the key."""
    path = tmp_path / "c.yaml"
    path.write_text("enrichment:\n  api_key: k\n  rate_limit_per_minute: -1\n")
    assert main(["--once", "--config", str(path)]) == 2
    assert "enrichment.rate_limit_per_minute" in capsys.readouterr().err


def test_unreadable_files(tmp_path: Path) -> None:
    """A missing file and invalid YAML are clear errors."""
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("enrichment: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
