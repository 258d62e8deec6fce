"""Arguments and helpers shared by several commands."""

from __future__ import annotations

import argparse
import os

from crm_sync.config import Config, load_config
from crm_sync.logs import register_secret

DEFAULT_CONFIG = "config.yaml"
# The store named by the config this process loaded, to name it when it fails (see failures.py).
_state_url: list[str] = []


def current_state_url() -> str | None:
    """The `state.url` of the config loaded last, if any."""
    return _state_url[-1] if _state_url else None


def remember_state_url(url: str) -> None:
    _state_url.append(url)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """`--config PATH`; SUPPRESS keeps a value given before the command from being reset."""
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="PATH",
        help=f"config file (default: $CRM_SYNC_CONFIG or {DEFAULT_CONFIG})",
    )


def config_path(args: argparse.Namespace) -> str:
    return getattr(args, "config", None) or os.environ.get("CRM_SYNC_CONFIG") or DEFAULT_CONFIG


def load(args: argparse.Namespace) -> Config:
    """Load and validate the config named by the arguments; register its secrets for masking."""
    from crm_sync.wiring import check_sources

    config = load_config(config_path(args))
    check_sources(config)  # each connector judges its own settings and filters
    register_config_secrets(config)
    remember_state_url(config.state.url)
    return config


def register_config_secrets(config: Config) -> None:
    """Every secret in the config is masked in logs from now on."""
    register_secret(config.enrichment.api_key.get_secret_value())
    for source in config.sources:
        for key, value in source.settings.items():
            if isinstance(value, str) and any(
                word in key.lower() for word in ("token", "key", "secret", "password", "session")
            ):
                register_secret(value)
