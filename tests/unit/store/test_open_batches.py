"""The open batch in the store, on both backends: join, seal, drop, and its schema step."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import create_engine

from crm_sync.store import Store
from crm_sync.store.engine import normalise_url
from crm_sync.store.schema import MIGRATIONS, fresh_contacts, schema_version
from tests.unit.store.conftest import START, FakeClock, contacts


def _join(store: Store, *ids: str, capacity: int = 100) -> list[str]:
    return store.open_batches.join(
        source="hs",
        owner="me",
        run_id="fresh-1",
        contacts=contacts(*ids),
        created=dict.fromkeys(ids, START),
        capacity=capacity,
    )


def test_joined_contacts_are_in_flight_and_the_batch_holds_at_most_its_capacity(
    store: Store, clock: FakeClock
) -> None:
    """The full scan sees open-batch contacts as in flight; a join beyond capacity is cut."""
    assert _join(store, "a", "b", capacity=3) == ["a", "b"]
    clock.advance(seconds=5)
    assert _join(store, "c", "d", capacity=3) == ["c"]
    batch = store.open_batches.get("hs")
    assert batch is not None
    assert [c.record_id for c in batch.contacts] == ["a", "b", "c"]
    assert store.open_batches.oldest_waiting(batch.id) == START
    excluded = store.excluded_contacts(
        "hs", ["a", "d"], found_cooldown=timedelta(0), not_found_cooldown=timedelta(0)
    )
    assert excluded == {"a": "in_flight"}
    [info] = store.open_batches.all_open()
    assert (info.source, info.contacts, info.oldest_since) == ("hs", 3, START)


def test_seal_keeps_what_fits_and_gives_the_rest_back_without_cooldown(
    store: Store, clock: FakeClock
) -> None:
    """open -> planned with the kept contacts and their credits; the others are free again."""
    _join(store, "a", "b")
    batch = store.open_batches.get("hs")
    assert batch is not None
    sealed = store.open_batches.seal(
        batch.id, keep=["a"], reserved_credits=10, name="fresh", owner="me"
    )
    assert sealed is not None
    assert (sealed.state, sealed.reserved_credits) == ("planned", 10)
    assert [c.record_id for c in sealed.contacts] == ["a"]
    freed = store.ledger_row("hs", "b")
    assert freed is not None
    assert freed.in_flight_batch_id is None
    assert freed.last_attempt_at is None
    assert store.open_batches.get("hs") is None
    assert store.credits_in_flight() == 10


def test_drop_frees_every_contact(store: Store) -> None:
    """A dropped open batch is failed and its contacts are free with no attempt recorded."""
    _join(store, "a")
    batch = store.open_batches.get("hs")
    assert batch is not None
    assert store.open_batches.drop(batch.id, "not sent: off")
    row = store.ledger_row("hs", "a")
    assert row is not None
    assert row.in_flight_batch_id is None
    assert row.attempts == 0
    assert store.batches_by_state().get("failed") == 1


def test_a_version_2_store_gains_the_fresh_contacts_table(store_url: str, clock: FakeClock) -> None:
    """Schema step 3 adds fresh_contacts to a store made by steps 1 and 2."""
    engine = create_engine(normalise_url(store_url))
    with engine.begin() as conn:
        MIGRATIONS[0](conn)
        MIGRATIONS[1](conn)
        fresh_contacts.drop(conn)  # steps 1 and 2 as first shipped had no such table
        schema_version.create(conn, checkfirst=True)
        conn.execute(schema_version.insert().values(version=2))
    engine.dispose()
    store = Store.open(store_url, clock=clock)
    try:
        assert _join(store, "a") == ["a"]
    finally:
        store.close()
