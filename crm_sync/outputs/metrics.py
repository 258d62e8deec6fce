"""Prometheus metrics on a registry of our own (never the global one), so tests stay isolated.

Counters are fed by the pipeline and the daemon (`observe_run`, `observe_counts`,
`observe_webhook`, `set_balance`); API calls and batches per state are read at scrape time
by collectors bound to a Context, so they are never stale and never double counted.
`RunGauges` (last run, last success, failures in a row, reserve) are the same on the daemon's
registry and on what `--once` pushes to a Pushgateway, so one set of alerts serves both.
Labels carry only names (source, service, endpoint, state, outcome), never a secret.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from crm_sync.bounded import SingleFlight, Unanswered
from crm_sync.exit_codes import RUN_STATUS
from crm_sync.logs import get_logger
from crm_sync.store.states import BatchState, StoreOutcome

if TYPE_CHECKING:
    from crm_sync.config import Config
    from crm_sync.outputs.history import RunHealth
    from crm_sync.pipeline.context import Context
    from crm_sync.pipeline.report import RunReport, SourceCounts

PREFIX = "crm_sync"
WEBHOOK_OUTCOMES = (
    StoreOutcome.STORED,
    StoreOutcome.DUPLICATE,
    StoreOutcome.KEPT,
    "bad_signature",
    "malformed",
    "too_large",
    "timeout",
    "error",
)
# The same names as a run's status in the store (`crm-sync status`), one per exit code.
RUN_OUTCOMES = RUN_STATUS
_NOT_CONTACT_COUNTS = frozenset({"credits_spent", "skipped", "rejected_reasons"})
_RATE_LIMIT_KINDS = frozenset({"rate_limited", "429", "throttled"})


class RunGauges:
    """How the last run went and when each source last succeeded: what alerts are built on."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.last_run_exit_code = Gauge(
            f"{PREFIX}_last_run_exit_code", "Exit code of the last finished run", registry=r
        )
        self.last_run_timestamp = Gauge(
            f"{PREFIX}_last_run_timestamp_seconds",
            "When the last run finished (Unix time)",
            registry=r,
        )
        self.last_run_seconds = Gauge(
            f"{PREFIX}_last_run_duration_seconds", "Wall time of the last run", registry=r
        )
        self.last_success = Gauge(
            f"{PREFIX}_last_success_timestamp_seconds",
            "When the last run that exited 0 finished (Unix time; from the store's history)",
            registry=r,
        )
        self.source_last_success = Gauge(
            f"{PREFIX}_source_last_success_timestamp_seconds",
            "When each source last finished a run with exit code 0 (Unix time)",
            ["source"],
            registry=r,
        )
        self.source_failures = Gauge(
            f"{PREFIX}_source_consecutive_failures",
            "Finished runs in a row in which the source did not succeed",
            ["source"],
            registry=r,
        )
        self.reserve = Gauge(
            f"{PREFIX}_reserve_credits", "run.reserve: credits a run never spends", registry=r
        )
        self.min_balance = Gauge(
            f"{PREFIX}_min_balance_credits",
            "run.min_balance: below it no source is submitted",
            registry=r,
        )

    def observe_config(self, config: Config) -> None:
        """The thresholds an alert compares the balance with."""
        self.reserve.set(config.run.reserve)
        self.min_balance.set(config.run.min_balance)

    def observe_last_run(self, report: RunReport, seconds: float) -> None:
        finished = report.finished_at or report.started_at
        self.last_run_exit_code.set(report.exit_code)
        self.last_run_timestamp.set(finished.timestamp())
        self.last_run_seconds.set(max(seconds, 0.0))

    def observe_health(self, health: RunHealth) -> None:
        """Last success and failures in a row, as the store's run history tells them."""
        if health.last_success is not None:
            self.last_success.set(health.last_success.timestamp())
        for name, source in health.sources.items():
            self.source_failures.labels(source=name).set(source.consecutive_failures)
            if source.last_success is not None:
                self.source_last_success.labels(source=name).set(source.last_success.timestamp())


class Metrics:
    """Every metric of the engine on one `CollectorRegistry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter(f"{PREFIX}_runs", "Cycles run, by outcome", ["outcome"], registry=r)
        self.run_seconds = Histogram(
            f"{PREFIX}_run_duration_seconds",
            "Wall time of one cycle",
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
            registry=r,
        )
        self.contacts = Counter(
            f"{PREFIX}_contacts",
            "Contacts by source and outcome",
            ["source", "outcome"],
            registry=r,
        )
        self.credits = Counter(
            f"{PREFIX}_credits_spent", "Enrichment credits spent, by source", ["source"], registry=r
        )
        self.balance = Gauge(
            f"{PREFIX}_balance_credits", "Credit balance seen at the last run start", registry=r
        )
        self.webhooks = Counter(
            f"{PREFIX}_webhooks", "Webhook deliveries by outcome", ["outcome"], registry=r
        )
        self.scheduler_events = Counter(
            f"{PREFIX}_scheduler_events",
            "Scheduled runs missed (misfire) or skipped (previous still running)",
            ["job", "event"],
            registry=r,
        )
        for outcome in WEBHOOK_OUTCOMES:
            self.webhooks.labels(outcome=outcome)
        self.gauges = RunGauges(r)
        self._bound: list[Collector] = []
        self._lock = threading.Lock()

    def observe_run(self, report: RunReport, seconds: float) -> None:
        """Count one finished cycle, its duration, its balance and every source's counts."""
        self.runs.labels(outcome=RUN_OUTCOMES.get(report.exit_code, "failed")).inc()
        self.run_seconds.observe(max(seconds, 0.0))
        self.gauges.observe_last_run(report, seconds)
        if report.balance is not None:
            self.set_balance(report.balance)
        for source in report.sources:
            self.observe_counts(source.name, source.counts)

    def observe_health(self, health: RunHealth) -> None:
        """Last success and failures in a row, read from the store after each cycle."""
        self.gauges.observe_health(health)

    def observe_run_error(self, seconds: float) -> None:
        """Count a cycle that raised instead of returning a report."""
        self.runs.labels(outcome="error").inc()
        self.run_seconds.observe(max(seconds, 0.0))

    def observe_counts(self, source: str, counts: SourceCounts) -> None:
        """Add a delta of contact counts and credits for one source."""
        for item in fields(counts):
            name = item.name
            if name in _NOT_CONTACT_COUNTS:
                continue
            value = getattr(counts, name)
            if value:
                self.contacts.labels(source=source, outcome=name).inc(value)
        for reason, value in counts.skipped.items():
            if value:
                self.contacts.labels(source=source, outcome=f"skipped_{reason}").inc(value)
        if counts.credits_spent:
            self.credits.labels(source=source).inc(counts.credits_spent)

    def observe_webhook(self, outcome: str) -> None:
        self.webhooks.labels(outcome=outcome).inc()

    def set_balance(self, n: int) -> None:
        self.balance.set(n)

    def observe_scheduler_event(self, job: str, event: str) -> None:
        """`event` is "missed" (misfire grace exceeded) or "skipped" (max instances reached)."""
        self.scheduler_events.labels(job=job, event=event).inc()

    def bind_context(self, ctx: Context, *extra: Collector) -> Callable[[], None]:
        """Read API calls and batches per state from `ctx` at scrape time; returns an unbind."""
        self.gauges.observe_config(ctx.config)
        collectors: list[Collector] = [ApiCallsCollector(ctx), BatchStateCollector(ctx), *extra]
        with self._lock:
            for old in self._bound:
                self.registry.unregister(old)
            self._bound = list(collectors)
            for collector in collectors:
                self.registry.register(collector)

        def unbind() -> None:
            with self._lock:
                for collector in collectors:
                    if collector in self._bound:
                        self.registry.unregister(collector)
                        self._bound.remove(collector)

        return unbind

    def render(self) -> bytes:
        """The Prometheus text exposition of everything on the registry."""
        return generate_latest(self.registry)


class ApiCallsCollector(Collector):
    """API calls and 429 answers per service: the enrichment client and each CRM connector."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            f"{PREFIX}_api_calls", "HTTP calls per service and endpoint", labels=["service", "kind"]
        )
        limited = CounterMetricFamily(
            f"{PREFIX}_api_rate_limited", "429 answers per service", labels=["service", "kind"]
        )
        stats: Any = getattr(self._ctx.client, "stats", None)
        if stats is not None and hasattr(stats, "snapshot"):
            snap: Mapping[str, Mapping[str, int]] = stats.snapshot()
            for endpoint, n in snap.get("calls", {}).items():
                calls.add_metric(["enrichment", endpoint], n)
            for endpoint, n in snap.get("rate_limited", {}).items():
                limited.add_metric(["enrichment", endpoint], n)
        for name, connector in list(self._ctx.connectors.items()):
            for kind, n in dict(connector.calls.counts).items():
                target = limited if kind in _RATE_LIMIT_KINDS else calls
                target.add_metric([name, kind], n)
        yield calls
        yield limited


class BatchStateCollector(Collector):
    """Batches per state, asked of the store at each scrape; absent when the store fails or
    does not answer within `webhook.readyz_timeout_seconds` (a hung database never hangs a
    scrape, nor piles up threads)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._read = SingleFlight(
            ctx.store.batches_by_state,
            ctx.config.webhook.readyz_timeout_seconds,
            "metrics-batches",
        )

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(f"{PREFIX}_batches", "Batches per state", labels=["state"])
        in_doubt = GaugeMetricFamily(
            f"{PREFIX}_in_doubt_batches",
            "Batches that may have been paid for with no answer recorded: a person must act",
        )
        try:
            by_state: Mapping[str, int] = self._read.result()
        except Unanswered as exc:  # a scrape must never fail because the store is down
            get_logger(component="metrics").warning("metrics_store_unavailable", error=str(exc))
            by_state = {}
        else:
            in_doubt.add_metric([], by_state.get(BatchState.IN_DOUBT, 0))
        for state, n in sorted(by_state.items()):
            family.add_metric([state], n)
        yield family
        yield in_doubt


METRICS = Metrics()


def observe_run(report: RunReport, seconds: float) -> None:
    """Count a finished cycle on the process-wide metrics."""
    METRICS.observe_run(report, seconds)


def observe_counts(source: str, counts: SourceCounts) -> None:
    """Add a write-back delta for one source on the process-wide metrics."""
    METRICS.observe_counts(source, counts)


def observe_webhook(outcome: str) -> None:
    METRICS.observe_webhook(outcome)


def set_balance(n: int) -> None:
    METRICS.set_balance(n)
