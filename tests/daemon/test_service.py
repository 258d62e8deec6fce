"""The daemon in-process: webhook to CRM write-back, lock between jobs, graceful stop."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from apscheduler.triggers.interval import IntervalTrigger

from crm_sync.daemon.service import Daemon
from crm_sync.http_server import BackgroundServer
from crm_sync.outputs.metrics import Metrics
from crm_sync.pipeline.context import Context
from crm_sync.sandbox.hubspot import HubSpotEmulator
from crm_sync.sandbox.people import Person
from crm_sync.store.store import Store
from crm_sync.wiring import connector_for
from tests.daemon.conftest import API_KEY, make_config
from tests.support.daemon_app import IdleClient, result_payload, seed_submitted_batch, signed

NEVER = IntervalTrigger(hours=24)
QUIET: dict[str, Any] = {
    "cycle_trigger_override": NEVER,
    "poll_trigger_override": NEVER,
    "run_first_cycle_now": False,
}


def _people(n: int) -> list[Person]:
    return [
        Person(
            index=i,
            first_name=f"First{i}",
            last_name=f"Last{i}",
            company="Acme Analytics",
            domain="acme-analytics.com",
            linkedin_url=None,
            email=None,
            phone=None,
            opted_out=False,
        )
        for i in range(n)
    ]


@pytest.fixture
def hubspot() -> Iterator[tuple[HubSpotEmulator, BackgroundServer]]:
    """A HubSpot emulator with three contacts that have no email, on a loopback socket."""
    emulator = HubSpotEmulator(people=_people(3))
    with BackgroundServer(emulator.app) as server:
        yield emulator, server


def _hubspot_source(server: BackgroundServer, emulator: HubSpotEmulator) -> dict[str, Any]:
    return {
        "name": "hs",
        "connector": "hubspot",
        "settings": {"access_token": emulator.token, "base_url": server.url},
        "fields": {"email": "email", "phone": "phone"},
    }


def _wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_webhook_six_times_writes_each_contact_once(
    tmp_path: Path, hubspot: tuple[HubSpotEmulator, BackgroundServer]
) -> None:
    """Six deliveries (two concurrent) store once and the worker writes each contact once."""
    emulator, server = hubspot
    config = make_config(tmp_path, sources=[_hubspot_source(server, emulator)])
    store = Store.open(config.state.url)
    connector = connector_for(config.sources[0])
    ctx = Context(config=config, store=store, client=IdleClient(), connectors={"hs": connector})
    ids = sorted(emulator.records)
    batch = seed_submitted_batch(store, source="hs", enrichment_id="e-1", record_ids=ids)
    daemon = Daemon(ctx, metrics=Metrics(), scheduler_options=QUIET, cycle=lambda _c: None)
    daemon.start()
    try:
        url = f"http://127.0.0.1:{daemon.port}/webhooks/enrichment"
        names = {r: (p.get("firstname"), p.get("lastname")) for r, p in emulator.records.items()}
        payload = result_payload("e-1", ids, source="hs", names=names)
        raw, headers = signed(payload, API_KEY)
        with httpx.Client(timeout=10, trust_env=False) as http:
            with ThreadPoolExecutor(max_workers=2) as pool:
                codes = list(
                    pool.map(lambda _: http.post(url, content=raw, headers=headers), [0, 1])
                )
            codes += [http.post(url, content=raw, headers=headers) for _ in range(4)]
            assert [r.status_code for r in codes] == [200] * 6
            assert _wait_for(lambda: _state(store, batch.id) == "written")
    finally:
        daemon.request_stop("test")
        assert daemon.wait()
        connector.close()
        store.close()
    writes = Counter(w.record_id for w in emulator.writes)
    assert writes == Counter(dict.fromkeys(ids, 1))
    assert {emulator.records[rid]["email"] for rid in ids} == {f"{rid}@example.com" for rid in ids}


def _state(store: Store, batch_id: str) -> str | None:
    batch = store.get_batch(batch_id)
    return batch.state if batch else None


def test_poll_job_is_skipped_while_a_cycle_runs_and_stop_waits_for_it(ctx: Context) -> None:
    """The poll job does not run beside a cycle; stopping waits for the cycle to finish."""
    release = threading.Event()
    in_cycle = threading.Event()
    seen: list[str] = []

    def cycle(c: Context) -> None:
        in_cycle.set()
        release.wait(5)
        seen.append("stopping" if c.stopping.is_set() else "not stopping")

    daemon = Daemon(
        ctx,
        metrics=Metrics(),
        scheduler_options={**QUIET, "run_first_cycle_now": True},
        cycle=cycle,
    )
    collected: list[int] = []
    daemon._collect = lambda: collected.append(1)  # type: ignore[method-assign]
    daemon.start()
    assert in_cycle.wait(5)
    daemon.poll_job()
    assert collected == []
    daemon.request_stop("test")
    daemon.request_stop("test again")  # a second request is harmless
    threading.Timer(0.2, release.set).start()
    assert daemon.wait()
    assert seen == ["stopping"]
    daemon.poll_job()
    assert collected == []


def test_stop_reports_unclean_when_work_outlives_the_grace(
    tmp_path: Path, metrics: Metrics
) -> None:
    """A cycle stuck past shutdown_grace_seconds makes wait() return False instead of hanging."""
    config = make_config(tmp_path, schedule={"shutdown_grace_seconds": 0.2})
    store = Store.open(config.state.url)
    ctx = Context(config=config, store=store, client=IdleClient(), connectors={})
    release = threading.Event()
    started = threading.Event()

    def cycle(_c: Context) -> None:
        started.set()
        release.wait(5)

    daemon = Daemon(
        ctx, metrics=metrics, scheduler_options={**QUIET, "run_first_cycle_now": True}, cycle=cycle
    )
    daemon.start()
    try:
        assert started.wait(5)
        daemon.signals.put("SIGTERM")
        assert daemon.wait() is False
    finally:
        release.set()
        store.close()
