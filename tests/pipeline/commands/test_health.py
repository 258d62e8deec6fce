"""The daemon's health answers stay true and fast: hung cycles, hung databases, stalled bodies."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from crm_sync.daemon.service import Daemon
from crm_sync.daemon.webapp import Hooks, build_app
from crm_sync.http_server import BackgroundServer
from crm_sync.outputs.metrics import Metrics
from crm_sync.pipeline.context import Context
from crm_sync.store.engine import Timeouts
from crm_sync.store.store import Store
from tests.conftest import PG_URL
from tests.daemon.conftest import make_config
from tests.pipeline.commands.proxy import FreezingProxy, SilentServer
from tests.support.clock import FakeClock
from tests.support.daemon_app import IdleClient

NEVER = IntervalTrigger(hours=24)
FAST = Timeouts(connect_seconds=1, statement_seconds=5)


def _until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, trust_env=False) as client:
        yield client


def test_healthz_fails_while_a_cycle_hangs_and_recovers_after(
    tmp_path: Path, http: httpx.Client
) -> None:
    """Cycles every 0.2 s; one hangs: /healthz turns 503 after 2 missed cycles, 200 once it ends."""
    config = make_config(tmp_path, schedule={"health_missed_cycles": 2})
    store = Store.open(config.state.url)
    release = threading.Event()
    entered = threading.Event()

    def hanging_cycle(_: Context) -> None:
        entered.set()
        release.wait(30)

    ctx = Context(config=config, store=store, client=IdleClient(), connectors={})
    daemon = Daemon(
        ctx,
        metrics=Metrics(),
        cycle=hanging_cycle,
        scheduler_options={
            "cycle_trigger_override": IntervalTrigger(seconds=0.2),
            "poll_trigger_override": NEVER,
        },
        health_slack_seconds=0,
    )
    daemon.start()
    base = f"http://127.0.0.1:{daemon.port}"
    try:
        assert entered.wait(10)
        assert http.get(f"{base}/healthz").status_code == 200  # just started: not yet stale
        _until(lambda: http.get(f"{base}/healthz").status_code == 503)
        details = http.get(f"{base}/healthz").json()
        assert details["healthy"] is False
        assert details["last_cycle_started"] is not None
        assert details["last_cycle_finished"] is None
        release.set()
        _until(lambda: http.get(f"{base}/healthz").status_code == 200)
        text = http.get(f"{base}/metrics").text
        names = {f.name for f in text_string_to_metric_families(text)}
        assert "crm_sync_seconds_since_last_cycle" in names
    finally:
        release.set()
        daemon.request_stop()
        daemon.shutdown()
        store.close()


def test_a_long_cycle_that_keeps_progressing_stays_healthy(
    tmp_path: Path, http: httpx.Client
) -> None:
    """A cycle 10 schedules long that reports progress is not restarted; once it stops
    progressing, /healthz turns 503 after the missed cycles."""
    config = make_config(tmp_path, schedule={"health_missed_cycles": 2})
    store = Store.open(config.state.url)
    progressing = threading.Event()
    progressing.set()
    release = threading.Event()
    steps = [0]

    def long_cycle(ctx: Context) -> None:
        while progressing.is_set():
            ctx.progress.advance("hs", "scanned", 1)
            steps[0] += 1
            time.sleep(0.05)
        release.wait(30)

    ctx = Context(config=config, store=store, client=IdleClient(), connectors={})
    daemon = Daemon(
        ctx,
        metrics=Metrics(),
        cycle=long_cycle,
        scheduler_options={
            "cycle_trigger_override": IntervalTrigger(seconds=0.2),
            "poll_trigger_override": NEVER,
        },
        health_slack_seconds=0,
    )
    daemon.start()
    base = f"http://127.0.0.1:{daemon.port}"
    try:
        _until(lambda: steps[0] >= 1)
        seen: list[int] = []
        while steps[0] < 40:  # about 2 s: 10 schedules of 0.2 s
            seen.append(http.get(f"{base}/healthz").status_code)
            time.sleep(0.05)
        assert seen
        assert set(seen) == {200}
        progressing.clear()
        _until(lambda: http.get(f"{base}/healthz").status_code == 503)
        assert http.get(f"{base}/healthz").json()["last_progress"] is not None
    finally:
        progressing.clear()
        release.set()
        daemon.request_stop()
        daemon.shutdown()
        store.close()


def test_daemon_exports_last_success_from_the_stored_history(
    tmp_path: Path, http: httpx.Client
) -> None:
    """A restarted daemon knows the last success and each source's failures in a row."""
    config = make_config(tmp_path)
    store = Store.open(config.state.url)
    ok = {"exit_code": 0, "sources": [{"name": "hs", "status": "ok", "exit_code": 0}]}
    bad = {"exit_code": 1, "sources": [{"name": "hs", "status": "failed", "exit_code": 1}]}
    for run_id, report in (("r1", ok), ("r2", bad), ("r3", bad)):
        store.start_run(run_id, "test")
        store.finish_run(run_id, "ok", report)
    succeeded = store.recent_runs()[-1].finished_at
    assert succeeded is not None
    ctx = Context(config=config, store=store, client=IdleClient(), connectors={})
    metrics = Metrics()
    daemon = Daemon(
        ctx,
        metrics=metrics,
        scheduler_options={
            "cycle_trigger_override": NEVER,
            "poll_trigger_override": NEVER,
            "run_first_cycle_now": False,
        },
    )
    daemon.start()
    try:
        text = http.get(f"http://127.0.0.1:{daemon.port}/metrics").text
    finally:
        daemon.request_stop()
        daemon.shutdown()
        store.close()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    last = samples[("crm_sync_last_success_timestamp_seconds", ())]
    assert last == pytest.approx(succeeded.replace(tzinfo=succeeded.tzinfo or UTC).timestamp())
    assert samples[("crm_sync_source_consecutive_failures", (("source", "hs"),))] == 2
    assert samples[("crm_sync_in_doubt_batches", ())] == 0
    assert ("crm_sync_seconds_since_last_cycle", ()) in samples


def _proxied(url: str, port: int) -> str:
    return url.replace("127.0.0.1:5432", f"127.0.0.1:{port}", 1)


def test_readyz_answers_503_within_seconds_when_the_database_hangs(
    tmp_path: Path, pg_schema_url: str, http: httpx.Client
) -> None:
    """PostgreSQL behind a proxy that stops answering: /readyz is 503 after its 1 s deadline
    (not after TCP gives up), stays 503 while hung, /metrics still answers, and /readyz is 200
    again once the database answers."""
    config = make_config(tmp_path, webhook={"readyz_timeout_seconds": 1})
    with FreezingProxy(("127.0.0.1", 5432)) as proxy:
        store = Store.open(_proxied(pg_schema_url, proxy.port), timeouts=FAST)
        ctx = Context(config=config, store=store, client=IdleClient(), connectors={})
        hooks = Hooks(ready=lambda: True, on_stored=lambda: None)
        metrics = Metrics()
        metrics.bind_context(ctx)
        server = BackgroundServer(build_app(ctx, metrics, hooks), "127.0.0.1", 0)
        server.start()
        base = f"http://127.0.0.1:{server.port}"
        try:
            assert http.get(f"{base}/readyz").status_code == 200
            proxy.freeze()
            for _ in range(2):
                started = time.monotonic()
                answer = http.get(f"{base}/readyz")
                assert answer.status_code == 503
                assert answer.json() == {"store": False, "scheduler": True}
                assert time.monotonic() - started < 5
                # A scrape does not hang either: the store's families are left out.
                started = time.monotonic()
                scrape = http.get(f"{base}/metrics")
                assert scrape.status_code == 200
                assert time.monotonic() - started < 5
                families = {f.name: f for f in text_string_to_metric_families(scrape.text)}
                assert families["crm_sync_batches"].samples == []
                assert families["crm_sync_in_doubt_batches"].samples == []
            proxy.thaw()
            _until(lambda: http.get(f"{base}/readyz").status_code == 200)
        finally:
            server.stop()
            proxy.thaw()
            store.close()


def test_opening_a_store_that_never_answers_fails_at_the_connect_timeout(
    pg_available: bool,
) -> None:
    """A server that accepts and never answers: Store.open raises instead of hanging (130 s)."""
    with SilentServer() as silent:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{silent.port}/postgres"
        started = time.monotonic()
        with pytest.raises(OperationalError):
            Store.open(url, timeouts=FAST)
        assert time.monotonic() - started < 10


def test_statement_timeout_ends_a_statement_stuck_on_a_lock(pg_schema_url: str) -> None:
    """Another session holds a lock on `runs`: the store's read fails after statement_timeout."""
    store = Store.open(pg_schema_url, timeouts=Timeouts(connect_seconds=2, statement_seconds=0.5))
    schema = pg_schema_url.rsplit("search_path%3D", 1)[1]
    dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(dsn) as holder:
            holder.execute(f'LOCK TABLE "{schema}".runs IN ACCESS EXCLUSIVE MODE')
            with pytest.raises(OperationalError, match="statement timeout"):
                store.recent_runs()
            holder.rollback()
        assert store.recent_runs() == []
    finally:
        store.close()


def test_sqlite_waits_for_a_lock_only_as_long_as_the_busy_timeout(tmp_path: Path) -> None:
    """A writer holds the SQLite file: a store write gives up after statement_timeout_seconds."""
    path = tmp_path / "state.sqlite3"
    store = Store.open(f"sqlite:///{path}", timeouts=Timeouts(statement_seconds=0.3))
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="locked"):
            store.start_run("r1", "test")
        holder.execute("ROLLBACK")
        store.start_run("r1", "test")
    finally:
        holder.close()
        store.close()


def test_a_stalled_webhook_body_is_cut_off_with_408(tmp_path: Path) -> None:
    """Headers and part of a body, then silence: 408 after body_timeout_seconds, then close."""
    config = make_config(tmp_path, webhook={"body_timeout_seconds": 0.5})
    store = Store.open(config.state.url)
    ctx = Context(config=config, store=store, client=IdleClient(), connectors={})
    metrics = Metrics()
    hooks = Hooks(ready=lambda: True, on_stored=lambda: None)
    server = BackgroundServer(build_app(ctx, metrics, hooks), "127.0.0.1", 0)
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"POST /webhooks/enrichment HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                b'{"id": "e-1", "status"'
            )
            received = b""
            while True:  # the server answers, then closes: recv returns b""
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        assert received.startswith(b"HTTP/1.1 408 ")
        assert (
            metrics.registry.get_sample_value("crm_sync_webhooks_total", {"outcome": "timeout"})
            == 1
        )
    finally:
        server.stop()
        store.close()


def test_health_deadline_follows_an_irregular_cron(tmp_path: Path) -> None:
    """Weekdays at 09:00: on a Friday evening, 2 missed cycles means Tuesday 09:00, not Saturday."""
    from crm_sync.daemon.health import CycleHealth
    from crm_sync.daemon.scheduler import cycle_trigger

    config = make_config(tmp_path, schedule={"cron": "0 9 * * 1-5"})
    friday = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    health = CycleHealth(
        lambda: cycle_trigger(config.schedule), 2, slack_seconds=0, clock=FakeClock(friday)
    )
    assert health.deadline() == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert health.check()[0] is True
