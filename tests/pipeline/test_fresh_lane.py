"""The fresh lane against the emulators: open batch, max wait, one POST a period, money rules.

Times are scaled down (scan every 0.2 s, wait 0.6 s) so the behaviour shows in seconds; the
rules compare durations with each other, so scaling keeps them honest.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import Salesforce

from connectors.salesforce import SalesforceSettings, build_session
from crm_sync.config import Config, parse_config
from crm_sync.daemon.fresh_lane import FreshLaneThread
from crm_sync.outputs.metrics import Metrics
from crm_sync.pipeline.budget import Budget
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.cycle import collect_and_write, run_cycle
from crm_sync.pipeline.fresh import FreshLane, scan_source
from crm_sync.pipeline.report import SourceReport
from crm_sync.pipeline.shared_budget import running_budget
from crm_sync.sandbox.salesforce.data import make_id
from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from crm_sync.wiring import open_context
from tests.support.fresh import create_contact, email_only_name, hubspot_client
from tests.support.processes import wait_for

WAIT = 0.6


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    """A small HubSpot portal (its seeded contacts are old: no incremental scan finds them)."""
    options = WorldOptions(hubspot_contacts=20, salesforce_contacts=0, completion_delay=0.05)
    with SandboxWorld(options) as started:
        yield started


def _config(world: SandboxWorld, tmp_path: Path, **run: Any) -> Config:
    raw = world.config_dict(
        f"sqlite:///{tmp_path / 'state.sqlite3'}",
        sources=[world.hubspot_source()],
        schedule={"fresh_scan_seconds": 0.2, "fresh_overlap_seconds": 5},
        run={
            "max_batch_wait_seconds": WAIT,
            "poll_initial_seconds": 0.1,
            "poll_max_seconds": 0.3,
            **run,
        },
    )
    return parse_config(raw, env={})


def _tick_until(lane: FreshLane, done: Any, timeout: float, what: str) -> None:
    def step() -> bool:
        lane.tick()
        collect_and_write(lane.ctx, {})
        return bool(done())

    wait_for(step, timeout, what)


def _created_at(world: SandboxWorld, record_id: str) -> datetime:
    text = world.hubspot.records[record_id]["createdate"] or ""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _outcomes(ctx: Context, ids: list[str]) -> dict[str, str | None]:
    rows = {i: ctx.store.ledger_row("hubspot", i) for i in ids}
    return {i: (r.outcome if r and r.in_flight_batch_id is None else None) for i, r in rows.items()}


def test_new_contacts_wait_in_the_open_batch_then_go_after_max_wait(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """Joined at the scan; nothing sent before the oldest waited max_batch_wait_seconds since
    its creation."""
    config = _config(world, tmp_path)
    client = hubspot_client(world)
    ids = [create_contact(client, f"Newcomer{i}", "Person") for i in range(3)]
    with open_context(config) as ctx:
        lane = FreshLane(ctx)
        lane.tick()
        batch = ctx.store.open_batches.get("hubspot")
        assert batch is not None
        assert {c.record_id for c in batch.contacts} == set(ids)
        assert not world.enrichment.submissions_per_contact()
        _tick_until(lane, lambda: lane.posts, 5, "the open batch sent")
        created = min(_created_at(world, i) for i in ids)
        assert lane.posts[0][1] - created >= timedelta(seconds=WAIT)
        assert set(world.enrichment.submissions_per_contact()) == set(ids)
        sent = ctx.store.batch_by_enrichment_id(world.enrichment.job_ids()[0])
        assert sent is not None
        assert f" fresh batch {sent.id} (3 contacts)" in sent.name  # found on the dashboard
        _tick_until(lane, lambda: all(_outcomes(ctx, ids).values()), 10, "results written")


def test_a_full_batch_goes_at_once_and_the_next_waits_a_period(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """batch_size reached: sent now; the rest joins a new open batch, sent a period later."""
    config = _config(world, tmp_path, batch_size=5)
    client = hubspot_client(world)
    ids = [create_contact(client, f"Burst{i}", "Person") for i in range(7)]
    with open_context(config) as ctx:
        lane = FreshLane(ctx)
        lane.tick()
        assert len(lane.posts) == 1  # five joined: full, and no earlier POST to space from
        assert len(world.enrichment.submissions_per_contact()) == 5
        _tick_until(lane, lambda: len(lane.posts) == 2, 5, "the second batch sent")
        assert lane.posts[1][1] - lane.posts[0][1] >= timedelta(seconds=WAIT)
        submitted = world.enrichment.submissions_per_contact()
        assert set(submitted) == set(ids)
        assert max(submitted.values()) == 1


def test_a_contact_crm_sync_just_enriched_is_not_selected_again(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """Our write moves lastmodifieddate, the scan sees the record again; the cooldown skips it."""
    config = _config(world, tmp_path)
    first, last = email_only_name()
    record_id = create_contact(hubspot_client(world), first, last)
    created = world.hubspot.records[record_id]
    with open_context(config) as ctx:
        lane = FreshLane(ctx)
        _tick_until(lane, lambda: _outcomes(ctx, [record_id])[record_id], 10, "written")
        after = world.hubspot.records[record_id]
        assert after["email"]
        assert not after.get("phone")  # still a gap, so the incremental scan matches it
        assert (after["lastmodifieddate"] or "") > (created["lastmodifieddate"] or "")
        connector = ctx.connectors["hubspot"]
        since = ctx.clock.now() - timedelta(seconds=30)
        seen = [
            c.contact.id for p in connector.iter_changed(connector.selection(), since) for c in p
        ]
        assert record_id in seen
        time.sleep(0.25)
        counts = lane.tick()["hubspot"]
        assert counts.skipped["cooldown"] >= 1
        assert ctx.store.open_batches.get("hubspot") is None
    assert world.enrichment.submissions_per_contact()[record_id] == 1


def test_the_credit_reserve_applies_and_unsent_contacts_get_no_cooldown(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """A reserve above the balance: the batch is dropped at sealing, contacts freed untouched."""
    config = _config(world, tmp_path, reserve=10_000_000)
    record_id = create_contact(hubspot_client(world), "Reserve", "Keeper")
    with open_context(config) as ctx:
        lane = FreshLane(ctx)
        _tick_until(lane, lambda: lane.posts, 5, "the sealing attempt")
        assert not world.enrichment.submissions_per_contact()
        row = ctx.store.ledger_row("hubspot", record_id)
        assert row is not None
        assert row.in_flight_batch_id is None
        assert row.last_attempt_at is None  # never asked: no cooldown started
        assert ctx.store.open_batches.get("hubspot") is None


def test_an_open_batch_survives_a_restart_and_is_given_back_when_the_lane_is_off(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """The open batch is in the store: a new process sees it; with the lane off it is freed."""
    config = _config(world, tmp_path)
    record_id = create_contact(hubspot_client(world), "Crash", "Survivor")
    with open_context(config) as ctx:
        FreshLane(ctx).tick()
    with open_context(config) as ctx:
        batch = ctx.store.open_batches.get("hubspot")
        assert batch is not None
        assert [c.record_id for c in batch.contacts] == [record_id]
        schedule = config.schedule.model_copy(update={"fresh_scan_seconds": 0})
        off = replace(ctx, config=config.model_copy(update={"schedule": schedule}))
        thread = FreshLaneThread(off, Metrics())
        thread.start()
        thread.stop()
        assert ctx.store.open_batches.get("hubspot") is None
        row = ctx.store.ledger_row("hubspot", record_id)
        assert row is not None
        assert row.in_flight_batch_id is None


def test_metrics_show_open_batches_and_the_latency_histogram(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """/metrics: the open batch and its oldest contact's age, then the fresh lane's latency."""
    config = _config(world, tmp_path)
    record_id = create_contact(hubspot_client(world), "Metric", "Watcher")
    metrics = Metrics()
    with open_context(config) as ctx:
        thread = FreshLaneThread(ctx, metrics)
        lane = thread.lane
        lane.tick()
        text = metrics.render().decode()
        assert 'crm_sync_open_batches{source="hubspot"} 1.0' in text
        oldest = next(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith('crm_sync_open_batch_oldest_seconds{source="hubspot"}')
        )
        assert oldest > 0
        _tick_until(lane, lambda: _outcomes(ctx, [record_id])[record_id], 10, "written")
        thread.observe_settled()
        text = metrics.render().decode()
        assert 'crm_sync_open_batches{source="hubspot"} 0.0' in text
        count = 'crm_sync_contact_latency_seconds_count{lane="fresh",source="hubspot"} 1.0'
        assert count in text
        thread.stop()


def test_a_run_after_the_daemon_is_gone_gives_back_its_stale_open_batch(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """An open batch far older than max_batch_wait_seconds is freed and the full scan sends it."""
    config = _config(world, tmp_path, max_batch_wait_seconds=0.05)
    record_id = create_contact(hubspot_client(world), "Left", "Behind")
    with open_context(config) as ctx:  # a daemon scanned, then died before sending
        report = SourceReport("hubspot", "hubspot")
        assert scan_source(ctx, config.sources[0], report) == 1
        assert ctx.store.open_batches.get("hubspot") is not None
    time.sleep(0.6)  # ten waits: no running fresh lane keeps an open batch that long
    with open_context(config) as ctx:
        run_cycle(ctx, deadline_seconds=20)
        assert ctx.store.open_batches.get("hubspot") is None
    assert world.enrichment.submissions_per_contact()[record_id] == 1


def test_salesforce_contacts_join_the_open_batch_by_system_modstamp(tmp_path: Path) -> None:
    """A Contact created through the REST API is found by `SystemModstamp >` the cursor."""
    options = WorldOptions(hubspot_contacts=0, salesforce_contacts=10, completion_delay=0.05)
    with SandboxWorld(options) as world:
        raw = world.config_dict(
            f"sqlite:///{tmp_path / 'state.sqlite3'}",
            sources=[world.salesforce_source()],
            schedule={"fresh_scan_seconds": 0.2, "fresh_overlap_seconds": 5},
            run={"max_batch_wait_seconds": 30},
        )
        settings = SalesforceSettings.model_validate(
            {"instance_url": world.servers["salesforce"].url, "session_id": "x"}
        )
        sf = Salesforce(
            instance_url=world.servers["salesforce"].url,
            session_id=world.salesforce.session_id,
            session=build_session(settings),
        )
        account = make_id("Account", 0)
        created = sf.Contact.create({"FirstName": "Ada", "LastName": "Byron", "AccountId": account})
        with open_context(parse_config(raw, env={})) as ctx:
            FreshLane(ctx).tick()
            batch = ctx.store.open_batches.get("salesforce")
            assert batch is not None
            assert [c.record_id for c in batch.contacts] == [created["id"]]


def test_a_mapped_field_deleted_stops_the_lane_before_it_spends(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """The lane checks the mapped fields before each POST, as the full scan does: a property
    deleted since start sends nothing, and the contacts are given back with no cooldown."""
    config = _config(world, tmp_path)
    ids = [create_contact(hubspot_client(world), f"Fieldless{i}", "Person") for i in range(2)]
    with open_context(config) as ctx:
        lane = FreshLane(ctx)
        lane.tick()
        assert ctx.store.open_batches.get("hubspot") is not None
        world.hubspot.store.known.discard("phone")  # an admin deletes the mapped property
        time.sleep(WAIT + 0.1)
        lane.tick()
        assert not world.enrichment.submissions_per_contact()
        rows = [ctx.store.ledger_row("hubspot", i) for i in ids]
    assert all(
        r is None or (r.in_flight_batch_id is None and r.last_attempt_at is None) for r in rows
    )


def test_a_fresh_batch_draws_from_the_budget_of_a_full_cycle_running_meanwhile(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """While a cycle submits the source, the fresh lane takes from that cycle's own budget."""
    config = _config(world, tmp_path)
    first = create_contact(hubspot_client(world), "Budget", "First")
    second = create_contact(hubspot_client(world), "Budget", "Second")
    with open_context(config) as ctx:
        lane = FreshLane(ctx)
        cycle_budget = Budget({"per_run": 11 + 5})  # one contact's email and phone fit, not two
        with running_budget(ctx, "hubspot", cycle_budget) as shared:
            _tick_until(lane, lambda: lane.posts, 5, "the sealing")
            assert shared.reserved == 11
            assert not shared.take(11)  # the cycle sees what the fresh lane took
        submitted = world.enrichment.submissions_per_contact()
        assert len({first, second} & set(submitted)) == 1
        left_out = second if first in submitted else first
        row = ctx.store.ledger_row("hubspot", left_out)
        assert row is not None
        assert row.in_flight_batch_id is None
        assert row.last_attempt_at is None


def test_without_webhooks_the_lane_polls_and_writes_its_own_batches(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """No webhook and no collect job: the lane's own ticks poll its batch and write it back."""
    config = _config(world, tmp_path)
    record_id = create_contact(hubspot_client(world), "Polled", "Bylane")
    with open_context(config) as ctx:
        lane = FreshLane(ctx)
        wait_for(
            lambda: (lane.tick(), _outcomes(ctx, [record_id])[record_id])[1],
            10,
            "written by the lane alone",
        )
    assert world.enrichment.submissions_per_contact()[record_id] == 1


def test_a_fresh_item_the_api_would_refuse_never_reaches_it(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """The lane applies the provider's input table as the full scan does: once LinkedIn alone is
    known to be refused, a LinkedIn-only newcomer is `invalid_input`, and no POST is refused."""
    config = _config(world, tmp_path)
    client = hubspot_client(world)
    good = create_contact(client, "Complete", "Person")
    bad = create_contact(
        client, "Nolast", "", hs_linkedin_url="https://www.linkedin.com/in/nolast-x"
    )
    with open_context(config) as ctx:
        ctx.rules.tighten()  # as remembered from an earlier refusal (or with DeepEnrich)
        lane = FreshLane(ctx)
        lane.tick()
        _tick_until(lane, lambda: lane.posts, 5, "the open batch sent")
        refused = [c for c in world.enrichment.calls if c.method == "POST" and c.status == 400]
        assert not refused, "a refused POST was sent"
        assert set(world.enrichment.submissions_per_contact()) == {good}
        assert bad not in world.enrichment.submissions_per_contact()
