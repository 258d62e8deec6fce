"""The metrics registry: pipeline observations, scrape-time collectors, the text format."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from crm_sync.config import Config
from crm_sync.outputs.metrics import Metrics
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.report import RunReport, SourceCounts, SourceReport
from crm_sync.store.store import Store
from tests.daemon.conftest import API_KEY
from tests.support.daemon_app import IdleClient, seed_submitted_batch

FAMILIES = {
    "crm_sync_runs",
    "crm_sync_run_duration_seconds",
    "crm_sync_contacts",
    "crm_sync_credits_spent",
    "crm_sync_balance_credits",
    "crm_sync_api_calls",
    "crm_sync_api_rate_limited",
    "crm_sync_batches",
    "crm_sync_webhooks",
    "crm_sync_scheduler_events",
}


class _Stats:
    def snapshot(self) -> dict[str, dict[str, int]]:
        return {"calls": {"bulk": 3, "credits": 2}, "rate_limited": {"bulk": 1}, "retries": {}}


class _Client(IdleClient):
    stats = _Stats()  # type: ignore[assignment]


class _Calls:
    counts = {"search": 4, "rate_limited": 2}


class _Connector:
    calls = _Calls()


class _BrokenStore:
    def batches_by_state(self) -> dict[str, int]:
        raise OSError("database is gone")


def _report() -> RunReport:
    counts = SourceCounts(submitted=5, emails_written=3, phones_written=1, credits_spent=13)
    counts.skipped = Counter({"cooldown": 2})
    report = RunReport(run_id="r", started_at=datetime.now(UTC), balance=900, exit_code=1)
    report.sources.append(SourceReport("hs", "hubspot", counts))
    return report


def _families(metrics: Metrics) -> dict[str, Any]:
    text = metrics.render().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_every_family_is_exposed_and_parses(config: Config, store: Store) -> None:
    """The exposition carries every family the issue asks for, parsed by prometheus-client."""
    metrics = Metrics()
    seed_submitted_batch(store, source="hs", enrichment_id="e-1", record_ids=["a", "b"])
    ctx = Context(config=config, store=store, client=_Client(), connectors={"hs": _Connector()})  # type: ignore[dict-item]
    metrics.bind_context(ctx)
    metrics.observe_run(_report(), 2.5)
    metrics.observe_scheduler_event("cycle", "skipped")
    families = _families(metrics)
    assert set(families) >= FAMILIES
    batches = {s.labels["state"]: s.value for s in families["crm_sync_batches"].samples}
    assert batches == {"submitted": 1}
    calls = {
        (s.labels["service"], s.labels["kind"]): s.value
        for s in families["crm_sync_api_calls"].samples
    }
    assert calls == {("enrichment", "bulk"): 3, ("enrichment", "credits"): 2, ("hs", "search"): 4}
    limited = {s.labels["service"]: s.value for s in families["crm_sync_api_rate_limited"].samples}
    assert limited == {"enrichment": 1, "hs": 2}
    assert API_KEY not in metrics.render().decode()


def test_run_and_counts_are_added(metrics: Metrics) -> None:
    """observe_run counts outcome, balance and per-source contacts; observe_counts adds deltas."""
    metrics.observe_run(_report(), 1.0)
    metrics.observe_counts("hs", SourceCounts(emails_written=2, credits_spent=2))
    value = metrics.registry.get_sample_value
    assert value("crm_sync_runs_total", {"outcome": "failed"}) == 1
    assert value("crm_sync_balance_credits") == 900
    assert value("crm_sync_contacts_total", {"source": "hs", "outcome": "emails_written"}) == 5
    assert value("crm_sync_contacts_total", {"source": "hs", "outcome": "skipped_cooldown"}) == 2
    assert value("crm_sync_credits_spent_total", {"source": "hs"}) == 15
    assert value("crm_sync_run_duration_seconds_count") == 1


def test_scrape_survives_a_broken_store(config: Config) -> None:
    """A store that raises gives an empty batches family, not a failed scrape."""
    metrics = Metrics()
    ctx = Context(config=config, store=_BrokenStore(), client=IdleClient(), connectors={})  # type: ignore[arg-type]
    metrics.bind_context(ctx)
    families = _families(metrics)
    assert families["crm_sync_batches"].samples == []


def test_unbind_removes_the_context_collectors(config: Config, store: Store) -> None:
    """After unbind, the context's collectors are no longer scraped."""
    metrics = Metrics()
    ctx = Context(config=config, store=store, client=IdleClient(), connectors={})
    unbind = metrics.bind_context(ctx)
    assert "crm_sync_batches" in _families(metrics)
    unbind()
    assert "crm_sync_batches" not in _families(metrics)
