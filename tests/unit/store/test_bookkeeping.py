"""Leases, runs, budgets and reports."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from crm_sync.store import Store
from tests.unit.store.conftest import START, FakeClock, plan, received

TTL = timedelta(minutes=1)


def test_lease_is_exclusive_renewable_and_expires(store: Store, clock: FakeClock) -> None:
    """One owner at a time; renewing extends it; once expired anyone may take it."""
    assert store.acquire_lease("source:hubspot", "a", TTL)
    assert not store.acquire_lease("source:hubspot", "b", TTL)
    assert store.acquire_lease("source:salesforce", "b", TTL)
    clock.advance(seconds=50)
    assert store.acquire_lease("source:hubspot", "a", TTL)
    clock.advance(seconds=50)
    assert not store.acquire_lease("source:hubspot", "b", TTL)
    clock.advance(seconds=11)
    assert store.acquire_lease("source:hubspot", "b", TTL)
    assert not store.acquire_lease("source:hubspot", "a", TTL)


def test_release_lease_only_by_its_owner(store: Store) -> None:
    """Releasing someone else's lease does nothing; releasing one's own frees it."""
    assert store.acquire_lease("l", "a", TTL)
    store.release_lease("l", "b")
    assert not store.acquire_lease("l", "b", TTL)
    store.release_lease("l", "a")
    assert store.acquire_lease("l", "b", TTL)


def test_concurrent_lease_has_one_winner(store: Store) -> None:
    """Eight replicas racing for a free lease: exactly one gets it."""
    barrier = threading.Barrier(8)
    wins: list[bool] = []

    def race(i: int) -> None:
        barrier.wait()
        wins.append(store.acquire_lease("source:hubspot", f"r{i}", TTL))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(wins) == {True: 1, False: 7}


def test_credits_committed(store: Store, clock: FakeClock) -> None:
    """Reserved credits count until the spend is known; failed and released batches do not count."""
    plan(store, "p1", "p2", credits=lambda cs: 20)
    received(store, clock, "r1", eid="e-1")  # reserved 1, spent 1
    failed = plan(store, "f1", credits=lambda cs: 100)
    store.mark_failed(failed.id, "400")
    doubtful = plan(store, "d1", credits=lambda cs: 50)
    store.mark_sending(doubtful.id, "replica-a")
    store.mark_in_doubt(doubtful.id, "timeout")
    plan(store, "s1", source="salesforce", credits=lambda cs: 1000)
    assert store.credits_committed("hubspot", START) == 20 + 1 + 50
    store.release_in_doubt(timedelta(0))
    assert store.credits_committed("hubspot", START) == 21
    assert store.credits_committed("hubspot", START + timedelta(seconds=1)) == 0
    assert store.credits_committed("salesforce", START) == 1000


def test_spent_credits_replace_the_reservation(store: Store, clock: FakeClock) -> None:
    """A received batch counts what it actually spent, not the worst case reserved."""
    batch = plan(store, "c1", credits=lambda cs: 11)
    store.mark_sending(batch.id, "replica-a")
    store.mark_submitted(batch.id, "e-1", next_poll_at=clock.now())
    store.store_result("e-1", "{}", "FINISHED", source_kind="poll", credits_spent=1)
    assert store.credits_committed("hubspot", START) == 1


def test_credits_by_source_and_day_and_states(store: Store, clock: FakeClock) -> None:
    """Daily credit totals per source cover the window asked for; states are counted."""
    plan(store, "a1", credits=lambda cs: 5)
    clock.advance(days=1)
    plan(store, "a2", credits=lambda cs: 7)
    plan(store, "b1", source="salesforce", credits=lambda cs: 3)
    day0, day1 = START.date(), START.date() + timedelta(days=1)
    assert store.credits_by_source_and_day(days=14) == [
        ("hubspot", day0, 5),
        ("hubspot", day1, 7),
        ("salesforce", day1, 3),
    ]
    assert store.credits_by_source_and_day(days=1) == [
        ("hubspot", day1, 7),
        ("salesforce", day1, 3),
    ]
    assert store.batches_by_state() == {"planned": 3}


def test_runs_are_recorded_newest_first(store: Store, clock: FakeClock) -> None:
    """A run's start, end, status and report come back, newest run first."""
    store.start_run("run-1", "replica-a")
    clock.advance(minutes=5)
    store.finish_run("run-1", "ok", {"planned": 3, "sources": ["hubspot"]})
    store.start_run("run-2", "replica-b")
    first, second = store.recent_runs()[1], store.recent_runs()[0]
    assert (second.id, second.status, second.finished_at, second.report) == (
        "run-2",
        "running",
        None,
        None,
    )
    assert (first.owner, first.started_at, first.finished_at, first.status) == (
        "replica-a",
        START,
        clock.now(),
        "ok",
    )
    assert first.report == {"planned": 3, "sources": ["hubspot"]}
    assert [r.id for r in store.recent_runs(limit=1)] == ["run-2"]


def test_lease_holder_and_steal(store: Store, clock: FakeClock) -> None:
    """The live holder is visible; a lease can be taken over only from the named holder."""
    assert store.lease_holder("l") is None
    store.acquire_lease("l", "host:1:a", TTL)
    assert store.lease_holder("l") == "host:1:a"
    assert not store.steal_lease("l", holder="someone-else", owner="host:2:b", ttl=TTL)
    assert store.steal_lease("l", holder="host:1:a", owner="host:2:b", ttl=TTL)
    assert not store.steal_lease("l", holder="host:1:a", owner="host:3:c", ttl=TTL)
    assert store.lease_holder("l") == "host:2:b"
    clock.advance(minutes=2)
    assert store.lease_holder("l") is None


def test_credits_in_flight(store: Store, clock: FakeClock) -> None:
    """Reservations count until a result (or a failure, or a release) settles them."""
    plan(store, "p1", credits=lambda cs: 10)
    plan(store, "s1", source="salesforce", credits=lambda cs: 5)
    received(store, clock, "r1", eid="e-1")
    failed = plan(store, "f1", credits=lambda cs: 100)
    store.mark_failed(failed.id, "400")
    assert store.credits_in_flight() == 15
