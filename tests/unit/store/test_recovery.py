"""Crash recovery: stale sending batches become in_doubt, and in_doubt is released only late."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm_sync.store import Store
from tests.unit.store.conftest import FakeClock, plan


def _sending(store: Store, record_id: str, owner: str) -> str:
    batch = plan(store, record_id, owner=owner)
    assert store.mark_sending(batch.id, owner)
    return batch.id


def test_recover_own_sending_batches(store: Store, clock: FakeClock) -> None:
    """A restarted process turns only its own sending batches into in_doubt."""
    mine = _sending(store, "c1", "replica-a")
    theirs = _sending(store, "c2", "replica-b")
    planned = plan(store, "c3", owner="replica-a")
    assert store.recover_stale_sending(owner="replica-a") == [mine]
    assert store.recover_stale_sending(owner="replica-a") == []
    states = {b: store.get_batch(b) for b in (mine, theirs, planned.id)}
    assert {b: s.state for b, s in states.items() if s} == {
        mine: "in_doubt",
        theirs: "sending",
        planned.id: "planned",
    }
    doubtful = states[mine]
    assert doubtful is not None
    assert doubtful.error is not None
    assert "may have reached" in doubtful.error


def test_recover_sending_of_a_dead_replica_by_age(store: Store, clock: FakeClock) -> None:
    """Another replica's sending batch becomes in_doubt only once it is older than the limit."""
    old = _sending(store, "c1", "replica-b")
    clock.advance(minutes=10)
    fresh = _sending(store, "c2", "replica-b")
    assert store.recover_stale_sending(older_than=timedelta(minutes=5)) == [old]
    clock.advance(minutes=5)
    assert store.recover_stale_sending(older_than=timedelta(minutes=5)) == [fresh]


def test_recover_needs_a_criterion(store: Store) -> None:
    """Recovering every sending batch by accident is refused."""
    with pytest.raises(ValueError, match="needs owner"):
        store.recover_stale_sending()


def test_in_doubt_keeps_contacts_until_released(store: Store, clock: FakeClock) -> None:
    """in_doubt contacts stay in flight; after the release time they are freed but keep cooldown."""
    batch = plan(store, "c1", "c2")
    store.mark_sending(batch.id, "replica-a")
    assert store.mark_in_doubt(batch.id, "read timeout")
    assert [(b.id, len(b.contacts)) for b in store.in_doubt_batches()] == [(batch.id, 2)]
    assert plan(store, "c1", "c3").contacts[0].record_id == "c3"
    clock.advance(hours=71)
    assert store.release_in_doubt(timedelta(hours=72)) == []
    clock.advance(hours=1)
    assert store.release_in_doubt(timedelta(hours=72)) == [batch.id]
    assert store.in_doubt_batches() == []
    row = store.ledger_row("hubspot", "c1")
    assert row is not None
    assert (row.in_flight_batch_id, row.outcome, row.last_attempt_at) == (
        None,
        "in_doubt_released",
        clock.now() - timedelta(hours=72),
    )
    excluded = store.excluded_contacts(
        "hubspot", ["c1"], found_cooldown=timedelta(days=90), not_found_cooldown=timedelta(days=30)
    )
    assert excluded == {"c1": "cooldown"}
    released = store.get_batch(batch.id)
    assert released is not None
    assert (released.state, {c.outcome for c in released.contacts}) == (
        "released",
        {"in_doubt_released"},
    )


def test_late_answer_rescues_an_in_doubt_batch(store: Store, clock: FakeClock) -> None:
    """If the POST's answer arrives after the batch was marked in_doubt, its id is kept."""
    batch_id = _sending(store, "c1", "replica-a")
    store.recover_stale_sending(owner="replica-a")
    assert store.mark_submitted(batch_id, "e-late", next_poll_at=clock.now())
    got = store.batch_by_enrichment_id("e-late")
    assert got is not None
    assert (got.id, got.state, got.error) == (batch_id, "submitted", None)


def test_recover_sending_of_previous_lease_holders(store: Store) -> None:
    """The new holder of a source's lease turns every other sender's batch of it into in_doubt."""
    gone = _sending(store, "c1", "host:1:old")
    mine = _sending(store, "c2", "host:2:new")
    other_source = plan(store, "c3", source="salesforce", owner="host:1:old")
    store.mark_sending(other_source.id, "host:1:old")
    assert store.recover_stale_sending(source="hubspot", exclude_owner="host:2:new") == [gone]
    assert store.recover_stale_sending(source="hubspot", exclude_owner="host:2:new") == []
    states = [store.get_batch(b) for b in (gone, mine, other_source.id)]
    assert [s.state if s else None for s in states] == ["in_doubt", "sending", "sending"]
