"""Results are stored once, and poll or write-back work is never handed to two owners."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest

from crm_sync.store import Batch, ContactOutcome, Store
from tests.unit.store.conftest import FakeClock, plan, received, submitted

LEASE = timedelta(minutes=2)


def _in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run `work(i)` in `count` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def test_store_result_once(store: Store, clock: FakeClock) -> None:
    """The first terminal result is stored verbatim; repeats are duplicates; strangers unknown."""
    batch = submitted(store, clock, "c1")
    body = '{"status":"FINISHED","name":"Zoë ☎"}'
    clock.advance(minutes=3)
    assert (
        store.store_result("e-1", body, "FINISHED", source_kind="webhook", credits_spent=11)
        == "stored"
    )
    assert (
        store.store_result("e-1", "{}", "FINISHED", source_kind="poll", credits_spent=99)
        == "duplicate"
    )
    assert (
        store.store_result("e-x", "{}", "FINISHED", source_kind="webhook", credits_spent=1)
        == "unknown"
    )
    got = store.get_batch(batch.id)
    assert got is not None
    assert (got.state, got.raw_result, got.result_status, got.result_source) == (
        "received",
        body,
        "FINISHED",
        "webhook",
    )
    assert (got.credits_spent, got.received_at) == (11, clock.now())
    assert store.batch_by_enrichment_id("e-1") == got


def test_webhook_deliveries_are_audited(store: Store, clock: FakeClock) -> None:
    """Each webhook delivery leaves an event with what the store made of it; polls do not."""
    submitted(store, clock, "c1")
    store.store_result("e-1", "a", "FINISHED", source_kind="webhook", credits_spent=None)
    clock.advance(seconds=1)
    store.store_result("e-1", "a", "FINISHED", source_kind="webhook", credits_spent=None)
    store.store_result("e-1", "a", "FINISHED", source_kind="poll", credits_spent=None)
    store.store_result("e-9", "b", "FINISHED", source_kind="webhook", credits_spent=None)
    assert [e.outcome for e in store.webhook_events("e-1")] == ["stored", "duplicate"]
    assert [e.outcome for e in store.webhook_events("e-9")] == ["unknown"]
    assert store.webhook_events("e-1")[0].body_sha1 == "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"
    got = store.batch_by_enrichment_id("e-1")
    assert got is not None
    assert got.credits_spent is None


def test_concurrent_duplicate_results(store: Store, clock: FakeClock) -> None:
    """The same result arriving eight times at once is stored by exactly one caller."""
    submitted(store, clock, "c1")
    answers: list[str] = []
    _in_threads(
        8,
        lambda i: answers.append(
            store.store_result("e-1", "{}", "FINISHED", source_kind="webhook", credits_spent=1)
        ),
    )
    assert Counter(answers) == {"stored": 1, "duplicate": 7}


def test_claim_due_polls_respects_due_time_and_leases(store: Store, clock: FakeClock) -> None:
    """Only due batches are claimed; a live claim blocks others until it lapses."""
    due = submitted(store, clock, "c1", eid="e-1")
    later = plan(store, "c2")
    store.mark_sending(later.id, "replica-a")
    store.mark_submitted(later.id, "e-2", next_poll_at=clock.now() + timedelta(minutes=10))
    claimed = store.claim_due_polls(owner="a", limit=10, lease=LEASE)
    assert [(b.id, b.claim_owner, b.claim_until) for b in claimed] == [
        (due.id, "a", clock.now() + LEASE)
    ]
    assert [c.record_id for c in claimed[0].contacts] == ["c1"]
    assert store.claim_due_polls(owner="b", limit=10, lease=LEASE) == []
    clock.advance(minutes=3)
    assert [b.id for b in store.claim_due_polls(owner="b", limit=10, lease=LEASE)] == [due.id]
    assert not store.schedule_poll(due.id, owner="a", next_poll_at=clock.now())


def test_schedule_poll_counts_and_releases(store: Store, clock: FakeClock) -> None:
    """A poll that found no result counts an attempt, moves the due time and drops the claim."""
    batch = submitted(store, clock, "c1")
    store.claim_due_polls(owner="a", limit=1, lease=LEASE)
    next_at = clock.now() + timedelta(minutes=1)
    assert store.schedule_poll(batch.id, owner="a", next_poll_at=next_at)
    got = store.get_batch(batch.id)
    assert got is not None
    assert (got.poll_attempts, got.next_poll_at, got.claim_owner, got.state) == (
        1,
        next_at,
        None,
        "submitted",
    )
    assert store.claim_due_polls(owner="b", limit=1, lease=LEASE) == []
    clock.advance(minutes=1)
    assert [b.id for b in store.claim_due_polls(owner="b", limit=1, lease=LEASE)] == [batch.id]


def test_concurrent_poll_claims_are_exclusive(store: Store, clock: FakeClock) -> None:
    """Eight replicas claiming due polls together never receive the same batch."""
    ids = {submitted(store, clock, f"c{i}", eid=f"e-{i}").id for i in range(20)}
    got: list[Batch] = []

    def claimer(i: int) -> None:
        while batch_list := store.claim_due_polls(owner=f"r{i}", limit=3, lease=LEASE):
            got.extend(batch_list)

    _in_threads(8, claimer)
    assert Counter(b.id for b in got) == dict.fromkeys(ids, 1)


def test_concurrent_write_back_claims_are_exclusive(store: Store, clock: FakeClock) -> None:
    """Eight replicas claiming received batches together never receive the same batch."""
    ids = {received(store, clock, f"c{i}", eid=f"e-{i}").id for i in range(20)}
    got: list[Batch] = []

    def claimer(i: int) -> None:
        while batch_list := store.claim_received(owner=f"r{i}", limit=3, lease=LEASE):
            got.extend(batch_list)

    _in_threads(8, claimer)
    assert Counter(b.id for b in got) == dict.fromkeys(ids, 1)
    assert all(b.claim_owner is not None and b.raw_result == '{"ok":1}' for b in got)


def test_claim_received_by_source_and_lease(store: Store, clock: FakeClock) -> None:
    """Write-back claims filter by source, carry contacts, and lapse with their lease."""
    batch = received(store, clock, "c1", "c2")
    assert store.claim_received(owner="a", limit=5, lease=LEASE, source="salesforce") == []
    claimed = store.claim_received(owner="a", limit=5, lease=LEASE, source="hubspot")
    assert [c.record_id for c in claimed[0].contacts] == ["c1", "c2"]
    assert store.claim_received(owner="b", limit=5, lease=LEASE) == []
    clock.advance(minutes=2)
    assert [b.id for b in store.claim_received(owner="b", limit=5, lease=LEASE)] == [batch.id]
    assert not store.mark_written(batch.id, owner="a")
    assert store.mark_written(batch.id, owner="b")


def test_record_outcomes_is_idempotent(store: Store, clock: FakeClock) -> None:
    """Recording the same outcomes twice changes nothing and never touches a later claim."""
    batch = received(store, clock, "c1", "c2")
    outcomes = [
        ContactOutcome("c1", "written", {"email": "a@b.c"}, True),
        ContactOutcome("c2", "not_found", {}, False),
    ]
    store.record_outcomes(batch.id, outcomes)
    first = store.ledger_row("hubspot", "c1")
    clock.advance(days=200)
    later = plan(store, "c2")
    store.record_outcomes(batch.id, outcomes)
    assert store.ledger_row("hubspot", "c1") == first
    assert first is not None
    assert (first.outcome, first.values_written, first.found) == (
        "written",
        {"email": "a@b.c"},
        True,
    )
    c2 = store.ledger_row("hubspot", "c2")
    assert c2 is not None
    assert c2.in_flight_batch_id == later.id
    got = store.get_batch(batch.id)
    assert got is not None
    assert [(c.outcome, c.values_written) for c in got.contacts] == [
        ("written", {"email": "a@b.c"}),
        ("not_found", {}),
    ]


def test_record_outcomes_for_unknown_batch(store: Store) -> None:
    """Outcomes for a batch the store does not know are a programming error, not a no-op."""
    with pytest.raises(LookupError):
        store.record_outcomes("nope", [ContactOutcome("c1", "written", {}, True)])


def test_submitted_batches_by_source(store: Store, clock: FakeClock) -> None:
    """The list of batches waiting for results can be narrowed to one source."""
    batch = submitted(store, clock, "c1")
    plan(store, "c2")
    assert [b.id for b in store.submitted_batches()] == [batch.id]
    assert [b.id for b in store.submitted_batches("hubspot")] == [batch.id]
    assert store.submitted_batches("salesforce") == []


def test_release_claims_of_a_dead_owner(store: Store, clock: FakeClock) -> None:
    """Claims of an owner known to be dead are dropped so others can take the work at once."""
    polled = submitted(store, clock, "c1", eid="e-1")
    written = received(store, clock, "c2", eid="e-2")
    store.claim_due_polls(owner="dead", limit=5, lease=LEASE)
    store.claim_received(owner="dead", limit=5, lease=LEASE)
    assert store.claim_owners() == ["dead"]
    assert store.release_claims("alive") == 0
    assert store.release_claims("dead") == 2
    assert store.claim_owners() == []
    assert [b.id for b in store.claim_due_polls(owner="b", limit=5, lease=LEASE)] == [polled.id]
    assert [b.id for b in store.claim_received(owner="b", limit=5, lease=LEASE)] == [written.id]
