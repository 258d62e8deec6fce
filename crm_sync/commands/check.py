"""`crm-sync check`: can we reach everything the config names, with the credentials it gives?

Each check returns one `CheckLine` (a name, OK or FAILED, a human message and the exit code
it implies); `run` prints them and exits with the most severe code. The enrichment API comes
first, then every enabled source through its connector's own `check()`: token accepted, object and
mapped fields exist, API usage left. Base URLs may be shown; keys and tokens never are.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from connectors.registry import build_connector
from crm_sync.commands.common import add_config_argument, load
from crm_sync.config import Config, SourceConfig
from crm_sync.enrichment.client import EnrichmentClient
from crm_sync.errors import (
    AuthError,
    CrmSyncError,
    InsufficientCredits,
    OutcomeUnknown,
    RetriableError,
)
from crm_sync.exit_codes import EXIT_AUTH, EXIT_CREDITS, EXIT_OK, EXIT_PARTIAL
from crm_sync.logs import configure_logging

# An interactive check should answer in seconds, not ride out a minute of backoff.
CHECK_MAX_RETRIES = 2
CHECK_BACKOFF_CAP = 5.0


@dataclass(frozen=True)
class CheckLine:
    """The outcome of one check, as printed: `<name>: OK|FAILED <message>`."""

    name: str
    ok: bool
    message: str
    exit_code: int = EXIT_OK

    def render(self) -> str:
        return f"{self.name}: {'OK' if self.ok else 'FAILED'} {self.message}"


ClientFactory = Callable[[Config], EnrichmentClient]


def _default_client(config: Config) -> EnrichmentClient:
    enrichment = config.enrichment
    return EnrichmentClient.from_config(
        enrichment,
        max_retries=min(enrichment.max_retries, CHECK_MAX_RETRIES),
        backoff_cap=min(enrichment.backoff_cap_seconds, CHECK_BACKOFF_CAP),
    )


def check_enrichment(config: Config, client_factory: ClientFactory = _default_client) -> CheckLine:
    """Verify the key and read the balance; never raises for a remote failure."""
    url = config.enrichment.resolved_base_url
    try:
        with client_factory(config) as client:
            workspace = client.verify_key()
            balance = client.credits()
    except AuthError as exc:
        code = f" ({exc.code})" if exc.code else ""
        refused = f"the API key was refused{code} (api_version={config.enrichment.api_version})"
        return CheckLine("enrichment", False, refused, EXIT_AUTH)
    except InsufficientCredits as exc:
        return CheckLine("enrichment", False, f"{exc} at {url}", EXIT_CREDITS)
    except (RetriableError, OutcomeUnknown) as exc:
        return CheckLine("enrichment", False, f"{exc}", EXIT_PARTIAL)
    except CrmSyncError as exc:
        return CheckLine("enrichment", False, f"{exc} at {url}", EXIT_PARTIAL)
    version = config.enrichment.api_version
    message = f"workspace={workspace} balance={balance} credits api_version={version} url={url}"
    return CheckLine("enrichment", True, message)


def check_source(source: SourceConfig) -> list[CheckLine]:
    """One line per connector check of a source; never raises for a remote failure."""
    name = f"source {source.name}"
    try:
        connector = build_connector(source)
    except CrmSyncError as exc:
        return [CheckLine(name, False, str(exc), EXIT_PARTIAL)]
    try:
        results = connector.check()
    except AuthError as exc:
        return [CheckLine(name, False, f"credentials refused: {exc}", EXIT_AUTH)]
    except CrmSyncError as exc:
        return [CheckLine(name, False, str(exc), EXIT_PARTIAL)]
    finally:
        connector.close()
    lines = []
    for result in results:
        code = EXIT_OK if result.ok else EXIT_AUTH if result.credentials_refused else EXIT_PARTIAL
        lines.append(CheckLine(f"{name} {result.name}", result.ok, result.detail, code))
    return lines


def run_checks(config: Config) -> list[CheckLine]:
    """Every check the config calls for, in the order they are printed."""
    lines = [check_enrichment(config)]
    for source in config.sources:
        if source.enabled:
            lines.extend(check_source(source))
    return lines


def exit_code(lines: list[CheckLine]) -> int:
    """The most severe code among the lines (auth 3 and credits 4 outrank unreachable 1)."""
    return max((line.exit_code for line in lines), default=EXIT_OK)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    config = load(args)
    configure_logging()
    lines = run_checks(config)
    for line in lines:
        print(line.render())
    return exit_code(lines)
