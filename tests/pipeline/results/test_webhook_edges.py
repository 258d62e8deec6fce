"""Webhooks at the edges, through the real daemon (receiver, scheduler, write-back worker).

- A webhook that beats the POST's answer is kept and attached: written without any poll.
- A signed webhook with a readable envelope and a bad item is acknowledged at once (200).
- A webhook whose envelope is unreadable gets 4xx and changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crm_sync.config import parse_config
from crm_sync.daemon.service import Daemon
from crm_sync.outputs.metrics import Metrics
from crm_sync.sandbox.world import SandboxWorld
from crm_sync.store.store import Store
from crm_sync.wiring import open_context
from tests.pipeline.results.conftest import RUN, only, sent_ids
from tests.support.processes import (
    assert_every_found_value_written,
    free_port,
    submitted_once,
    wait_for,
)

RESULT_GET_PATH = "/contact/enrich/bulk/"


def daemon_config(world: SandboxWorld, tmp_path: Path, poll_after: float) -> dict[str, Any]:
    """A daemon on the world's HubSpot source whose webhook URL is its own listen address."""
    port = free_port()
    return world.config_dict(
        f"sqlite:///{tmp_path / 'state.sqlite3'}",
        sources=[world.hubspot_source()],
        run=RUN,
        webhook={
            "listen": f"127.0.0.1:{port}",
            "public_url": f"http://127.0.0.1:{port}/webhooks/enrichment",
            "poll_after_seconds": poll_after,
        },
        schedule={
            "interval_minutes": 60,
            "poll_interval_seconds": 0.2,
            "shutdown_grace_seconds": 5,
        },
    )


def run_daemon_until(world: SandboxWorld, raw: dict[str, Any], done: Any, timeout: float) -> None:
    """Run the in-process daemon until `done(store)` holds (or fail after `timeout`)."""
    config = parse_config(raw, env={})
    with open_context(config, webhook=True) as ctx:
        daemon = Daemon(ctx, metrics=Metrics())
        daemon.start()
        try:
            wait_for(lambda: done(ctx.store), timeout, "the daemon to settle the batches")
        finally:
            daemon.request_stop("test")
            assert daemon.wait(), "in-flight work did not finish within the grace"


def _all_written(world: SandboxWorld) -> Any:
    def check(store: Store) -> bool:
        jobs = world.enrichment.job_ids()
        states = store.batches_by_state()
        return len(jobs) >= 3 and only(states, "written", len(jobs))

    return check


def test_a_webhook_before_the_posts_answer_is_kept_and_written_without_polling(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """Every webhook lands while its batch is `sending`; each result is still written, no GET."""
    world.enrichment.styles.slow_post_answer = True
    raw = daemon_config(world, tmp_path, poll_after=600)

    run_daemon_until(world, raw, _all_written(world), timeout=30)

    store = Store.open(raw["state"]["url"])
    try:
        batches = [store.batch_by_enrichment_id(j) for j in world.enrichment.job_ids()]
        kept = store.early_results(attached=True)
        events = [e.outcome for j in world.enrichment.job_ids() for e in store.webhook_events(j)]
        unattached = store.early_results()
    finally:
        store.close()
    assert all(b is not None and b.result_source == "webhook" for b in batches)
    assert {k.enrichment_id for k in kept} == set(world.enrichment.job_ids())
    assert set(events) == {"kept"}
    assert unattached == []
    first_attempts = [a for a in world.enrichment.webhook_attempts if a.attempt == 1]
    assert {a.status for a in first_attempts} == {200}
    assert [c for c in world.enrichment.calls if RESULT_GET_PATH in c.path] == []
    submitted_once(world)
    assert assert_every_found_value_written(world) > 10


def test_a_signed_webhook_with_a_bad_item_is_acknowledged_and_the_rest_written(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """One malformed item per result: every delivery answered 200 once, the others written."""
    world.enrichment.styles.malformed_item = True
    raw = daemon_config(world, tmp_path, poll_after=600)

    run_daemon_until(world, raw, _all_written(world), timeout=30)

    attempts = world.enrichment.webhook_attempts
    assert [a.status for a in attempts] == [200] * len(world.enrichment.job_ids())
    bad = {ids[0] for ids in sent_ids(world).values()}
    store = Store.open(raw["state"]["url"])
    try:
        outcomes = {rid: store.ledger_row("hubspot", rid) for rid in bad}
    finally:
        store.close()
    assert all(r is not None and r.outcome == "malformed" for r in outcomes.values())
    assert assert_every_found_value_written(world, exclude=bad) > 10


def test_an_unreadable_webhook_is_refused_and_changes_nothing(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """`datas` not a list: every delivery gets 400 and the store neither keeps nor receives it."""
    world.enrichment.styles.unreadable_result = True
    world.enrichment.webhook_policy = type(world.enrichment.webhook_policy)(0.05, 2)
    raw = daemon_config(world, tmp_path, poll_after=600)

    def refused_everywhere(store: Store) -> bool:
        jobs = world.enrichment.job_ids()
        tried = [a for a in world.enrichment.webhook_attempts if a.attempt == 3]
        return len(jobs) >= 3 and len(tried) == len(jobs)

    run_daemon_until(world, raw, refused_everywhere, timeout=30)

    assert {a.status for a in world.enrichment.webhook_attempts} == {400}
    store = Store.open(raw["state"]["url"])
    try:
        states = store.batches_by_state()
        kept = store.early_results(attached=None)
        events = [e for j in world.enrichment.job_ids() for e in store.webhook_events(j)]
    finally:
        store.close()
    assert only(states, "submitted", len(world.enrichment.job_ids())), states
    assert kept == []
    assert events == []


def test_a_post_answered_too_late_is_in_doubt_and_its_kept_webhook_is_written(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """The client gives up on a slow POST (in_doubt); the webhook it beat is adopted, no GET."""
    world.enrichment.styles.slow_post_seconds = 2.0
    raw = daemon_config(world, tmp_path, poll_after=600)
    raw["enrichment"]["timeout_seconds"] = 0.5

    def adopted(store: Store) -> bool:
        jobs = world.enrichment.job_ids()
        if len(jobs) != 1:
            return False
        batch = store.batch_by_enrichment_id(jobs[0])
        return batch is not None and batch.state == "written"

    run_daemon_until(world, raw, adopted, timeout=30)

    [job] = world.enrichment.job_ids()  # the source stopped after the in-doubt POST
    store = Store.open(raw["state"]["url"])
    try:
        batch = store.batch_by_enrichment_id(job)
        assert batch is not None
        assert batch.result_source == "webhook"
        assert only(store.batches_by_state(), "written", 1)
        assert store.early_results() == []
        for rid in sent_ids(world)[job]:
            row = store.ledger_row("hubspot", rid)
            assert row is not None
            assert row.in_flight_batch_id is None
    finally:
        store.close()
    assert [a.status for a in world.enrichment.webhook_attempts] == [200]
    assert [c for c in world.enrichment.calls if RESULT_GET_PATH in c.path] == []
    assert assert_every_found_value_written(world) > 3
