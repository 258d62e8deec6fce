"""`crm-sync check`: can we reach everything the config names, with the credentials it gives?

Each check returns one `CheckLine` (a name, OK or FAILED, a human message and the exit code
it implies); `run` prints them and exits with the most severe code. The state store comes first
(connection and schema version, nothing changed), then the schedule (as APScheduler reads it),
the enrichment API, then every enabled source through its connector's own `check()`: token
accepted, object and mapped fields exist, API usage left. Base URLs may be shown; keys and
tokens never are. A config with no source is fine here (enrichment only).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from connectors.base import Connector
from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.commands.check_line import CheckLine
from crm_sync.commands.check_outputs import check_outputs
from crm_sync.commands.common import add_config_argument, load
from crm_sync.config import Config, SourceConfig
from crm_sync.enrichment.client import EnrichmentClient
from crm_sync.errors import (
    AuthError,
    CrmSyncError,
    InsufficientCredits,
    NotFoundError,
    OutcomeUnknown,
    RetriableError,
)
from crm_sync.exit_codes import (
    EXIT_AUTH,
    EXIT_CONFIG,
    EXIT_CREDITS,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TRANSIENT,
    most_severe,
)
from crm_sync.failures import code_for
from crm_sync.logs import configure_logging

# An interactive check should answer in seconds, not ride out a minute of backoff.
CHECK_MAX_RETRIES = 2
CHECK_BACKOFF_CAP = 5.0


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
        return CheckLine("enrichment", False, f"{exc}", EXIT_TRANSIENT)
    except NotFoundError:
        message = f"{url} answered 404: fix enrichment.base_url (or remove it)"
        return CheckLine("enrichment", False, message, EXIT_CONFIG)
    except CrmSyncError as exc:
        return CheckLine("enrichment", False, f"{exc} at {url}", EXIT_FAILED)
    version = config.enrichment.api_version
    message = f"workspace={workspace} balance={balance} credits api_version={version} url={url}"
    return CheckLine("enrichment", True, message)


def check_source(source: SourceConfig, clock: Clock = SYSTEM_CLOCK) -> list[CheckLine]:
    """One line per connector check of a source; never raises for a remote failure."""
    from crm_sync.wiring import connector_for

    name = f"source {source.name}"
    try:
        connector = connector_for(source, clock=clock)
    except CrmSyncError as exc:
        return [CheckLine(name, False, str(exc), code_for(exc))]
    try:
        results = connector.check()
        refused = any(r.credentials_refused for r in results)
        fields = [] if refused else [field_line(name, connector)]
    except AuthError as exc:
        return [CheckLine(name, False, f"credentials refused: {exc}", EXIT_AUTH)]
    except CrmSyncError as exc:
        return [CheckLine(name, False, str(exc), code_for(exc))]
    finally:
        connector.close()
    lines = []
    for result in results:
        code = EXIT_OK if result.ok else EXIT_AUTH if result.credentials_refused else EXIT_FAILED
        lines.append(CheckLine(f"{name} {result.name}", result.ok, result.detail, code))
    return lines + fields


def field_line(name: str, connector: Connector) -> CheckLine:
    """The mapped fields as every run checks them before spending: a wrong one exits 2."""
    label = f"{name} mapped fields"
    if type(connector).check_fields is Connector.check_fields:
        return CheckLine(label, True, "not checked: this connector has no check_fields")
    problems = connector.check_fields()
    if problems:
        return CheckLine(label, False, "; ".join(problems), EXIT_CONFIG)
    return CheckLine(label, True, "exist and are writable")


def check_store(config: Config) -> CheckLine:
    """Connect to the state store and read its schema version; changes nothing."""
    from crm_sync.store.opening import probe_store, shown_url
    from crm_sync.store.schema import SCHEMA_VERSION

    try:
        backend, version = probe_store(config.state)
    except CrmSyncError as exc:
        return CheckLine("state store", False, str(exc), code_for(exc))
    if version == 0:
        schema = f"new store (schema {SCHEMA_VERSION} is created on the first run)"
    elif version < SCHEMA_VERSION:
        schema = f"schema {version}, migrated to {SCHEMA_VERSION} on the next run"
    else:
        schema = f"schema {version}"
    return CheckLine("state store", True, f"{backend} {shown_url(config.state.url)} {schema}")


def check_schedule(config: Config, clock: Clock = SYSTEM_CLOCK) -> CheckLine:
    """The daemon's trigger as APScheduler reads it, with its next fire time."""
    from crm_sync.daemon.scheduler import cycle_trigger

    schedule = config.schedule
    trigger = cycle_trigger(schedule)
    upcoming = trigger.get_next_fire_time(None, clock.now())
    what = (
        f"cron {schedule.cron!r}"
        if schedule.cron
        else f"every {schedule.interval_minutes or 15} minutes"
    )
    return CheckLine("schedule", True, f"{what}, next at {upcoming:%Y-%m-%d %H:%M} UTC")


def run_checks(config: Config, clock: Clock = SYSTEM_CLOCK) -> list[CheckLine]:
    """Every check the config calls for, in the order they are printed."""
    lines = [check_store(config), check_schedule(config, clock), check_enrichment(config)]
    for source in config.sources:
        if source.enabled:
            lines.extend(check_source(source, clock))
    lines.extend(check_outputs(config))
    return lines


def exit_code(lines: list[CheckLine]) -> int:
    """The most severe code among the lines (see `exit_codes.most_severe`)."""
    return most_severe(line.exit_code for line in lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    from crm_sync.wiring import build_clock

    config = load(args)
    configure_logging()
    lines = run_checks(config, build_clock())
    for line in lines:
        print(line.render())
    return exit_code(lines)
