"""Every batch transition succeeds only from the state it expects, and exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest

from crm_sync.store import STATES, Batch, ContactOutcome, Store
from tests.unit.store.conftest import FakeClock, contacts, plan

LEASE = timedelta(minutes=5)


PATHS: dict[str, tuple[str, ...]] = {
    "planned": (),
    "failed": ("fail",),
    "sending": ("send",),
    "in_doubt": ("send", "doubt"),
    "released": ("send", "doubt", "release"),
    "submitted": ("send", "submit"),
    "received": ("send", "submit", "receive"),
    "written": ("send", "submit", "receive", "write"),
}


def batch_in(store: Store, clock: FakeClock, state: str) -> Batch:
    """A fresh batch (own source, own enrichment id) brought to `state` by the public API."""
    source = f"src-{uuid.uuid4().hex[:8]}"
    if state == "open":  # the fresh lane's open batch: no transition above may move it
        store.open_batches.join(
            source=source,
            owner="me",
            run_id="fresh",
            contacts=contacts("r-1"),
            created={},
            capacity=100,
        )
        found = store.open_batches.get(source)
        assert found is not None
        return found
    batch = plan(store, "r-1", source=source)
    eid = f"e-{batch.id}"

    def write_back() -> bool:
        claimed = store.claim_received(owner="writer", limit=1, lease=LEASE, source=source)
        return [b.id for b in claimed] == [batch.id] and store.mark_written(
            batch.id, owner="writer"
        )

    steps: dict[str, Callable[[], bool]] = {
        "fail": lambda: store.mark_failed(batch.id, "400 bad request"),
        "send": lambda: store.mark_sending(batch.id, "replica-a"),
        "doubt": lambda: store.mark_in_doubt(batch.id, "timeout"),
        "release": lambda: batch.id in store.release_in_doubt(timedelta(0)),
        "submit": lambda: store.mark_submitted(batch.id, eid, next_poll_at=clock.now()),
        "receive": lambda: (
            store.store_result(eid, "{}", "FINISHED", source_kind="poll", credits_spent=1)
            == "stored"
        ),
        "write": write_back,
    }
    for step in PATHS[state]:
        assert steps[step](), step
    got = store.get_batch(batch.id)
    assert got is not None
    assert got.state == state
    return got


Move = Callable[[Store, FakeClock, Batch], bool]

MOVES: dict[str, tuple[Move, set[str]]] = {
    "mark_sending": (lambda s, c, b: s.mark_sending(b.id, "replica-b"), {"planned"}),
    "mark_submitted": (
        lambda s, c, b: s.mark_submitted(b.id, f"late-{b.id}", next_poll_at=c.now()),
        {"sending", "in_doubt"},
    ),
    "mark_failed": (lambda s, c, b: s.mark_failed(b.id, "refused"), {"planned", "sending"}),
    "mark_in_doubt": (lambda s, c, b: s.mark_in_doubt(b.id, "timeout"), {"sending"}),
    "release_planned": (lambda s, c, b: s.release_planned(b.id), {"planned"}),
    "store_result": (
        lambda s, c, b: (
            s.store_result(f"e-{b.id}", "{}", "FINISHED", source_kind="webhook", credits_spent=None)
            == "stored"
        ),
        {"submitted"},
    ),
}


@pytest.mark.parametrize("move", sorted(MOVES))
def test_transition_only_from_expected_states(store: Store, clock: FakeClock, move: str) -> None:
    """The move succeeds from its expected states, fails from all others, and never twice."""
    apply, allowed = MOVES[move]
    for state in STATES:
        batch = batch_in(store, clock, state)
        assert apply(store, clock, batch) is (state in allowed), state
        assert apply(store, clock, batch) is False, state


def test_mark_written_needs_the_claim(store: Store, clock: FakeClock) -> None:
    """Only the replica holding the write-back claim may mark a received batch written."""
    batch = batch_in(store, clock, "received")
    assert not store.mark_written(batch.id, owner="writer")
    store.claim_received(owner="writer", limit=5, lease=LEASE)
    assert not store.mark_written(batch.id, owner="someone-else")
    assert store.mark_written(batch.id, owner="writer")
    written = store.get_batch(batch.id)
    assert written is not None
    assert (written.state, written.written_at, written.claim_owner) == (
        "written",
        clock.now(),
        None,
    )


def test_mark_written_frees_contacts_without_outcome(store: Store, clock: FakeClock) -> None:
    """Contacts the result did not mention are not left in flight forever."""
    batch = plan(store, "c1", "c2")
    store.mark_sending(batch.id, "replica-a")
    store.mark_submitted(batch.id, "e-1", next_poll_at=clock.now())
    store.store_result("e-1", "{}", "FINISHED", source_kind="poll", credits_spent=1)
    store.claim_received(owner="w", limit=1, lease=LEASE)
    store.record_outcomes(batch.id, [ContactOutcome("c1", "written", {"email": "a@b.c"}, True)])
    assert store.mark_written(batch.id, owner="w")
    c1, c2 = store.ledger_row("hubspot", "c1"), store.ledger_row("hubspot", "c2")
    assert c1 is not None
    assert c2 is not None
    assert (c1.outcome, c1.in_flight_batch_id) == ("written", None)
    assert (c2.outcome, c2.in_flight_batch_id) == ("no_result", None)


def test_transitions_stamp_time_and_owner(store: Store, clock: FakeClock) -> None:
    """State changes record when they happened, who sent, and the submission details."""
    batch = plan(store, "c1")
    clock.advance(minutes=1)
    assert store.mark_sending(batch.id, "replica-b")
    poll_at = clock.advance(minutes=1) + timedelta(seconds=30)
    assert store.mark_submitted(batch.id, "e-1", next_poll_at=poll_at)
    got = store.get_batch(batch.id)
    assert got is not None
    assert got.owner == "replica-b"
    assert (got.state, got.enrichment_id, got.next_poll_at) == ("submitted", "e-1", poll_at)
    assert got.submitted_at == got.state_changed_at == clock.now()
    assert got.created_at == clock.now() - timedelta(minutes=2)


def test_unknown_batch_moves_nowhere(store: Store) -> None:
    """A transition on an id the store does not know reports failure instead of raising."""
    assert store.mark_sending("nope", "replica-a") is False
    assert store.mark_failed("nope", "x") is False
    assert store.get_batch("nope") is None
