"""Metrics of one `--once` run, pushed to a Prometheus Pushgateway when the run ends.

A CronJob's pod is gone before any scrape, so `metrics.pushgateway_url` receives, with
prometheus-client's `push_to_gateway` (which replaces the job's group), what the daemon exports
as gauges: the run's exit code, duration and time, the last success and each source's failures
in a row (read from the store's history), the balance against the reserve, batches by state,
and this run's contact counts and credits per source. A failed push is logged, never fatal.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from crm_sync.logs import get_logger
from crm_sync.outputs.history import RunHealth
from crm_sync.outputs.metrics import PREFIX, RunGauges
from crm_sync.store.states import BatchState

if TYPE_CHECKING:
    from crm_sync.config import Config
    from crm_sync.pipeline.report import RunReport

_NOT_CONTACT_COUNTS = frozenset({"credits_spent", "skipped", "rejected_reasons"})


def _log() -> Any:
    return get_logger(component="pushgateway")


def run_registry(
    config: Config,
    report: RunReport,
    seconds: float,
    health: RunHealth | None,
    batches: dict[str, int] | None,
) -> CollectorRegistry:
    """A registry holding what one run pushes."""
    registry = CollectorRegistry()
    gauges = RunGauges(registry)
    gauges.observe_config(config)
    gauges.observe_last_run(report, seconds)
    if health is not None:
        gauges.observe_health(health)
    if report.balance is not None:
        Gauge(
            f"{PREFIX}_balance_credits",
            "Credit balance seen at the last run start",
            registry=registry,
        ).set(report.balance)
    contacts = Gauge(
        f"{PREFIX}_last_run_contacts",
        "Contacts of the last run, by source and outcome",
        ["source", "outcome"],
        registry=registry,
    )
    credits = Gauge(
        f"{PREFIX}_last_run_credits_spent",
        "Credits the last run spent, by source",
        ["source"],
        registry=registry,
    )
    source_codes = Gauge(
        f"{PREFIX}_last_run_source_exit_code",
        "What each source alone would have made the last run exit with",
        ["source"],
        registry=registry,
    )
    for source in report.sources:
        for item in fields(source.counts):
            value = getattr(source.counts, item.name)
            # Contact counts only: credits have their own gauge, reasons (Counters) are labels
            # of other counts, and a new count field is pushed without a change here.
            if item.name not in _NOT_CONTACT_COUNTS and type(value) is int:
                contacts.labels(source=source.name, outcome=item.name).set(value)
        credits.labels(source=source.name).set(source.counts.credits_spent)
        source_codes.labels(source=source.name).set(source.exit_code)
    if batches is not None:
        by_state = Gauge(f"{PREFIX}_batches", "Batches per state", ["state"], registry=registry)
        for state, n in sorted(batches.items()):
            by_state.labels(state=state).set(n)
        Gauge(
            f"{PREFIX}_in_doubt_batches",
            "Batches that may have been paid for with no answer recorded: a person must act",
            registry=registry,
        ).set(batches.get(BatchState.IN_DOUBT, 0))
    return registry


def safe_url(url: str) -> str:
    """The URL without credentials, for log lines."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def push_run(
    config: Config,
    report: RunReport,
    seconds: float,
    *,
    health: RunHealth | None = None,
    batches: dict[str, int] | None = None,
) -> bool:
    """Push the run's metrics when `metrics.pushgateway_url` is set; True when pushed."""
    settings = config.metrics
    if not settings.pushgateway_url:
        return False
    try:
        registry = run_registry(config, report, seconds, health, batches)
        push_to_gateway(
            settings.pushgateway_url,
            job=settings.pushgateway_job,
            registry=registry,
            timeout=settings.push_timeout_seconds,
        )
    except Exception as exc:  # metrics must never fail a run that did its work
        _log().warning(
            "metrics_push_failed",
            url=safe_url(settings.pushgateway_url),
            error=type(exc).__name__,
        )
        return False
    _log().info("metrics_pushed", url=safe_url(settings.pushgateway_url))
    return True
