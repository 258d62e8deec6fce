"""Config loading: every problem named by its key, secrets from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_sync.cli import main
from crm_sync.config import load_config, parse_config
from crm_sync.errors import ConfigError
from crm_sync.wiring import check_sources


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
    """An unknown connector name fails, in the wiring step, with the list of known names."""
    config = parse_config(
        {
            "enrichment": {"api_key": "k"},
            "sources": [{"name": "p", "connector": "pipedrive", "fields": {"email": "email"}}],
        },
        env={},
    )
    with pytest.raises(
        ConfigError, match=r"sources\[0\]\.connector: unknown connector 'pipedrive'"
    ):
        check_sources(config)


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


@pytest.mark.parametrize(
    ("section", "url"),
    [
        ({}, "https://app.fullenrich.com/api/v1"),
        ({"api_version": "v1"}, "https://app.fullenrich.com/api/v1"),
        ({"api_version": "v2"}, "https://app.fullenrich.com/api/v2"),
        ({"api_version": "v2", "base_url": "http://127.0.0.1:9/x/"}, "http://127.0.0.1:9/x"),
        ({"provider": "deepenrich"}, "https://app.deepenrich.com/api/v1"),
    ],
)
def test_base_url_follows_the_api_version(section: dict[str, str], url: str) -> None:
    """v1 is the default; the base URL follows the version unless base_url overrides it."""
    config = parse_config({"enrichment": {"api_key": "k", **section}}, env={})
    assert config.enrichment.resolved_base_url == url
    assert config.enrichment.api_version == section.get("api_version", "v1")


def test_deepenrich_with_v2_is_a_config_error_naming_the_key() -> None:
    """DeepEnrich speaks v1 only."""
    raw = {"enrichment": {"api_key": "k", "provider": "deepenrich", "api_version": "v2"}}
    with pytest.raises(ConfigError) as info:
        parse_config(raw, env={})
    assert "enrichment.api_version: deepenrich speaks v1 only" in str(info.value)


def test_contact_events_need_v2() -> None:
    """Per-contact webhooks exist in v2 only; an unknown event name is refused."""
    with pytest.raises(ConfigError) as info:
        parse_config({"enrichment": {"api_key": "k", "webhook_events": ["contact_finished"]}})
    assert "enrichment.webhook_events: per-contact webhook events need api_version: v2" in str(
        info.value
    )
    with pytest.raises(ConfigError, match=r"enrichment\.webhook_events"):
        parse_config({"enrichment": {"api_key": "k", "api_version": "v2", "webhook_events": ["x"]}})
    with pytest.raises(ConfigError, match=r"enrichment\.api_version"):
        parse_config({"enrichment": {"api_key": "k", "api_version": "v3"}})
