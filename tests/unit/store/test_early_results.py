"""Kept results (a verified result whose id no batch carries yet) and unreadable results."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from crm_sync.commands.status import collect_status
from crm_sync.store import Store
from crm_sync.store.schema import early_results
from tests.unit.store.conftest import FakeClock, plan, submitted


def _keep(store: Store, eid: str, body: str = '{"id":"x"}') -> str:
    return store.store_result(
        eid, body, "FINISHED", source_kind="webhook", credits_spent=7, keep_unknown=True
    )


def test_a_kept_result_is_attached_when_the_posts_answer_is_recorded(
    store: Store, clock: FakeClock
) -> None:
    """Kept before mark_submitted, the result moves the batch straight on to `received`."""
    batch = plan(store, "c1", "c2")
    assert store.mark_sending(batch.id, "replica-a")
    assert _keep(store, "e-1", '{"early":true}') == "kept"
    assert _keep(store, "e-1", '{"early":true}') == "duplicate"
    assert sorted(e.outcome for e in store.webhook_events("e-1")) == ["duplicate", "kept"]
    clock.advance(seconds=2)
    assert store.mark_submitted(batch.id, "e-1", next_poll_at=clock.now() + timedelta(hours=1))
    got = store.get_batch(batch.id)
    assert got is not None
    assert (got.state, got.raw_result, got.result_source) == (
        "received",
        '{"early":true}',
        "webhook",
    )
    assert got.credits_spent == 7
    assert store.early_results() == []
    [attached] = store.early_results(attached=True)
    assert (attached.attached_batch_id, attached.attached_at) == (batch.id, clock.now())


def test_a_result_kept_in_a_race_is_attached_by_the_sweep(store: Store, clock: FakeClock) -> None:
    """A kept row the POST's transaction did not see is attached on the next collect pass."""
    batch = submitted(store, clock, "c1", eid="e-1")
    assert _keep(store, "e-other") == "kept"
    # As if the result had been kept while mark_submitted ran: unattached, id now known.
    store._tx.run(
        lambda conn: conn.execute(
            update(early_results)
            .where(early_results.c.enrichment_id == "e-other")
            .values(enrichment_id="e-1")
        )
    )
    assert store.kept_result_count() == 1
    assert store.attach_known_early_results() == [("e-1", "stored")]
    assert store.get_batch(batch.id).state == "received"  # type: ignore[union-attr]
    assert store.kept_result_count() == 0
    assert store.attach_known_early_results() == []


def test_unclaimed_kept_results_are_shown_then_pruned(store: Store, clock: FakeClock) -> None:
    """`status` lists what nothing claimed; pruning forgets only what is older than the limit."""
    assert _keep(store, "e-old") == "kept"
    clock.advance(days=60)
    assert _keep(store, "e-new") == "kept"
    shown = collect_status(store)["kept_results"]
    assert [k["enrichment_id"] for k in shown] == ["e-old", "e-new"]
    clock.advance(days=31)
    assert store.prune_early_results(timedelta(days=90)) == ["e-old"]
    assert [k.enrichment_id for k in store.early_results()] == ["e-new"]


def test_unreadable_results_are_counted_then_the_batch_fails(
    store: Store, clock: FakeClock
) -> None:
    """Each unreadable poll is counted by its claim holder; giving up frees credits and contacts."""
    batch = submitted(store, clock, "c1", "c2")
    [claimed] = store.claim_due_polls(owner="me", limit=5, lease=timedelta(minutes=2))
    later = clock.now() + timedelta(seconds=30)
    assert (
        store.record_read_failure(claimed.id, owner="other", error="x", next_poll_at=later) is None
    )
    assert store.record_read_failure(claimed.id, owner="me", error="bad", next_poll_at=later) == 1
    assert store.credits_in_flight() == 2
    assert store.mark_unreadable(batch.id, "could not be read after 2 attempts")
    got = store.get_batch(batch.id)
    assert got is not None
    assert (got.state, got.read_failures, got.error) == (
        "failed",
        1,
        "could not be read after 2 attempts",
    )
    assert store.credits_in_flight() == 0
    row = store.ledger_row("hubspot", "c1")
    assert row is not None
    assert (row.outcome, row.detail, row.in_flight_batch_id) == (
        "malformed",
        "could not be read after 2 attempts",
        None,
    )
    assert not store.mark_unreadable(batch.id, "again")
