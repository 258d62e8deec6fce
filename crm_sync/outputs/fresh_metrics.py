"""Metrics of the fresh lane: latency from creation to write, and the open batches.

`crm_sync_contact_latency_seconds{source,lane}`: seconds from a contact's CRM creation (or the
first time the incremental scan saw it) to the write-back of its batch, for the fresh lane; from
planning to write-back for the full scan (which does not read creation dates).
`crm_sync_open_batches{source}` and `crm_sync_open_batch_oldest_seconds{source}` are read from
the store at scrape time. They live on the same registry as `crm_sync.outputs.metrics`,
registered once per `Metrics` instance.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from crm_sync.logs import get_logger
from crm_sync.outputs.metrics import PREFIX, Metrics

if TYPE_CHECKING:
    from crm_sync.pipeline.context import Context
    from crm_sync.store.open_batches import SettledContact

LATENCY_BUCKETS = (15, 30, 60, 90, 120, 150, 180, 300, 600, 900, 1800, 3600, 21600, 86400)


class FreshMetrics:
    """The fresh lane's histogram and open-batch gauges on one `Metrics` registry."""

    def __init__(self, metrics: Metrics) -> None:
        self.registry = metrics.registry
        self.latency = Histogram(
            f"{PREFIX}_contact_latency_seconds",
            "Seconds from a contact's creation (or first sight) to its write-back, by lane",
            ["source", "lane"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._collector: Collector | None = None
        self._lock = threading.Lock()

    def observe_settled(self, settled: Iterable[SettledContact]) -> None:
        for contact in settled:
            seconds = max(0.0, (contact.written_at - contact.start).total_seconds())
            self.latency.labels(source=contact.source, lane=contact.lane).observe(seconds)

    def bind(self, ctx: Context) -> Callable[[], None]:
        """Read open batches from `ctx.store` at scrape time; returns an unbind."""
        collector = OpenBatchCollector(ctx)
        with self._lock:
            if self._collector is not None:
                self.registry.unregister(self._collector)
            self._collector = collector
            self.registry.register(collector)

        def unbind() -> None:
            with self._lock:
                if self._collector is collector:
                    self.registry.unregister(collector)
                    self._collector = None

        return unbind


class OpenBatchCollector(Collector):
    """Open batches per source and the age of their oldest contact."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        count = GaugeMetricFamily(
            f"{PREFIX}_open_batches", "Open batches of the fresh lane", labels=["source"]
        )
        oldest = GaugeMetricFamily(
            f"{PREFIX}_open_batch_oldest_seconds",
            "Seconds the oldest contact of the open batch has waited",
            labels=["source"],
        )
        try:
            infos = self._ctx.store.open_batches.all_open()
        except Exception as exc:  # a scrape must never fail because the store is down
            get_logger(component="metrics").warning(
                "metrics_store_unavailable", error=type(exc).__name__
            )
            infos = []
        now: datetime = self._ctx.clock.now()
        per_source: dict[str, int] = {s.name: 0 for s in self._ctx.config.sources}
        ages: dict[str, float] = dict.fromkeys(per_source, 0.0)
        for info in infos:
            per_source[info.source] = per_source.get(info.source, 0) + 1
            if info.oldest_since is not None:
                age = (now - info.oldest_since).total_seconds()
                ages[info.source] = max(ages.get(info.source, 0.0), age)
        for source, n in sorted(per_source.items()):
            count.add_metric([source], n)
            oldest.add_metric([source], ages.get(source, 0.0))
        yield count
        yield oldest


_instances: weakref.WeakKeyDictionary[Metrics, FreshMetrics] = weakref.WeakKeyDictionary()
_instances_lock = threading.Lock()


def fresh_metrics(metrics: Metrics) -> FreshMetrics:
    """The FreshMetrics of `metrics` (created and registered on first use)."""
    with _instances_lock:
        found = _instances.get(metrics)
        if found is None:
            found = _instances[metrics] = FreshMetrics(metrics)
        return found
