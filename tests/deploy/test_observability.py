"""Alert rules, monitors and the Grafana dashboard agree with the metrics the code exports.

`promtool` (Debian's `prometheus` package; `.ci/run` installs it) checks the rules and runs their
unit tests; without it the test is skipped, unless CI is set, where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from crm_sync.config import parse_config
from crm_sync.daemon.health import CycleCollector, CycleHealth
from crm_sync.outputs.fresh_metrics import fresh_metrics
from crm_sync.outputs.history import RunHealth, SourceHealth
from crm_sync.outputs.metrics import Metrics
from crm_sync.outputs.pushgateway import run_registry
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.report import RunReport, SourceCounts, SourceReport
from crm_sync.store.records import PlannedContact
from crm_sync.store.store import Store
from tests.deploy.test_kustomize import container, pod_spec, resource
from tests.support.daemon_app import IdleClient, seed_submitted_batch

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "crm-sync-dashboard.json"
METRIC_NAME = re.compile(r"\bcrm_sync_[a-z0-9_]+\b")


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: install Debian's `prometheus` package (.ci/run does)")
        pytest.skip("promtool not installed (set CI to make this fail)")
    return found


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _rule_groups() -> list[dict[str, Any]]:
    (rule,) = _docs(PROMETHEUS / "prometheusrule.yaml")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def _rules_file(tmp_path: Path) -> Path:
    """The PrometheusRule's groups as a plain Prometheus rule file, beside the rule tests."""
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": _rule_groups()}), encoding="utf-8")
    shutil.copy(PROMETHEUS / "rules.test.yaml", tmp_path / "rules.test.yaml")
    return path


def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    promtool = _promtool()
    rules = _rules_file(tmp_path)
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in _rule_groups())} rules found" in result.stdout


def test_promtool_unit_tests_fire_each_alert(tmp_path: Path) -> None:
    """rules.test.yaml feeds series and expects each alert (in doubt, no success, reserve,
    failing source, bad signatures, stalled daemon) to fire, or not, at the right time."""
    promtool = _promtool()
    _rules_file(tmp_path)
    result = subprocess.run(
        [promtool, "test", "rules", "rules.test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_kustomization_renders_the_rule_and_the_monitors() -> None:
    """`kubectl apply -k deploy/prometheus` (as the README says) applies the rule and monitors."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is needed to render deploy/prometheus")
        pytest.skip("kubectl not installed (set CI to make this fail)")
    result = subprocess.run(
        [kubectl, "kustomize", str(PROMETHEUS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(result.stdout) if d)
    assert kinds == ["PrometheusRule", "ServiceMonitor", "ServiceMonitor"]


def test_the_asked_alerts_exist() -> None:
    alerts = {r["alert"]: r for g in _rule_groups() for r in g["rules"]}
    assert {
        "CrmSyncBatchInDoubt",
        "CrmSyncNoSuccessfulRun",
        "CrmSyncCreditsBelowReserve",
        "CrmSyncSourceFailing",
        "CrmSyncWebhookSignatureFailures",
    } <= set(alerts)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name


def _exported() -> set[str]:
    """Every sample name the daemon's /metrics and a `--once` push can carry."""
    config = parse_config({"enrichment": {"api_key": "k-0123456789"}}, env={})
    store = Store.open("sqlite://")
    try:
        seed_submitted_batch(store, source="hs", enrichment_id="e-1", record_ids=["a"])

        class Stats:
            def snapshot(self) -> dict[str, dict[str, int]]:
                return {"calls": {"bulk": 1}, "rate_limited": {"bulk": 1}}

        class Client(IdleClient):
            stats = Stats()  # type: ignore[assignment]

        ctx = Context(config=config, store=store, client=Client(), connectors={})
        metrics = Metrics()
        health = CycleHealth(lambda: None, 3)
        metrics.bind_context(ctx, CycleCollector(health))
        fresh_metrics(metrics).bind(ctx)  # the fresh lane's histogram and open-batch gauges
        store.open_batches.join(
            source="hs",
            owner="me",
            run_id="fresh",
            contacts=[PlannedContact("b", ("contact.phones",), {})],
            created={},
            capacity=100,
        )
        counts = SourceCounts(submitted=2, emails_written=1, not_found=1, credits_spent=1)
        counts.skipped = Counter({"cooldown": 1})
        now = datetime.now(UTC)
        report = RunReport("r", now - timedelta(seconds=5), now, balance=10, exit_code=0)
        report.sources.append(SourceReport("hs", "hubspot", counts))
        metrics.observe_run(report, 5.0)
        run_health = RunHealth(now, {"hs": SourceHealth(now, 0)})
        metrics.observe_health(run_health)
        metrics.observe_webhook("bad_signature")
        metrics.observe_scheduler_event("cycle", "missed")
        texts = [
            metrics.render().decode(),
            generate_latest(
                run_registry(config, report, 5.0, run_health, store.batches_by_state())
            ).decode(),
        ]
    finally:
        store.close()
    return {
        sample.name
        for text in texts
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    exported = _exported()
    queried = {name for expr in _dashboard_exprs() for name in METRIC_NAME.findall(expr)}
    assert len(queried) >= 12
    assert queried - exported == set(), f"not exported: {sorted(queried - exported)}"


def test_every_metric_the_alerts_read_is_exported() -> None:
    exported = _exported()
    read = {
        name for g in _rule_groups() for r in g["rules"] for name in METRIC_NAME.findall(r["expr"])
    }
    assert read - exported == set(), f"not exported: {sorted(read - exported)}"


def test_a_wrong_metric_name_would_be_caught() -> None:
    """The name check is not vacuous: a typo'd name is not among the exported ones."""
    exported = _exported()
    assert "crm_sync_contacts_total" in exported
    assert "crm_sync_contact_total" not in exported


def test_dashboard_covers_what_an_operator_asks() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    titles = {p["title"] for p in dashboard["panels"]}
    for wanted in (
        "Contacts enriched per day",
        "Fill rate",
        "Credits per day",
        "API calls",
        "Batches by state",
        "Run durations",
    ):
        assert wanted in titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["templating"]["list"][0]["type"] == "datasource"


def test_monitors_select_the_daemon_and_its_metrics_port() -> None:
    service = resource("Service")
    daemon_monitor, pushgateway_monitor = _docs(PROMETHEUS / "servicemonitor.yaml")
    assert daemon_monitor["kind"] == "ServiceMonitor"
    assert daemon_monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )
    (endpoint,) = daemon_monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert pushgateway_monitor["spec"]["endpoints"][0]["honorLabels"] is True
    (pod_monitor,) = _docs(PROMETHEUS / "podmonitor.yaml")
    labels = resource("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (pod_endpoint,) = pod_monitor["spec"]["podMetricsEndpoints"]
    assert pod_endpoint["port"] in {p["name"] for p in container("Deployment")["ports"]}
    assert pod_spec("Deployment")["containers"]
