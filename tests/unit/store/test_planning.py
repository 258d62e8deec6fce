"""Planning claims a contact for one batch at most; selection skips in-flight and cooling ids."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import timedelta

from crm_sync.store import Batch, ContactOutcome, PlannedContact, Store
from tests.unit.store.conftest import FakeClock, contacts, plan

DAY = timedelta(days=1)


def _excluded(
    store: Store, *ids: str, found_days: float = 90, not_found_days: float = 30
) -> dict[str, str]:
    return store.excluded_contacts(
        "hubspot",
        list(ids),
        found_cooldown=timedelta(days=found_days),
        not_found_cooldown=timedelta(days=not_found_days),
    )


def test_plan_records_batch_contacts_and_ledger(store: Store, clock: FakeClock) -> None:
    """A planned batch holds its contacts and their requests, and the ledger claims them."""
    planned = [PlannedContact("c1", ("contact.phones",), {"firstname": "Ada"})]
    batch = store.plan_batch(
        source="hubspot",
        run_id="run-9",
        owner="replica-a",
        name="hubspot-1",
        contacts=planned,
        reserved_credits_for=lambda cs: 10 * len(cs),
    )
    assert batch is not None
    assert (batch.state, batch.run_id, batch.name, batch.reserved_credits) == (
        "planned",
        "run-9",
        "hubspot-1",
        10,
    )
    assert [(c.record_id, c.fields_asked, c.request) for c in batch.contacts] == [
        ("c1", ("contact.phones",), {"firstname": "Ada"})
    ]
    row = store.ledger_row("hubspot", "c1")
    assert row is not None
    assert (row.in_flight_batch_id, row.last_attempt_at, row.fields_asked, row.attempts) == (
        batch.id,
        clock.now(),
        ("contact.phones",),
        1,
    )
    assert store.get_batch(batch.id) == batch


def test_contact_in_flight_is_left_out(store: Store) -> None:
    """A second plan skips contacts already in flight and reserves credits only for the rest."""
    first = plan(store, "c1", "c2")
    second = plan(store, "c2", "c3", credits=lambda cs: 7 * len(cs))
    assert [c.record_id for c in second.contacts] == ["c3"]
    assert second.reserved_credits == 7
    ledger = store.ledger_row("hubspot", "c2")
    assert ledger is not None
    assert ledger.in_flight_batch_id == first.id


def test_nothing_claimable_creates_no_batch(store: Store) -> None:
    """When every contact is in flight, plan_batch returns None and stores no batch."""
    plan(store, "c1")
    again = store.plan_batch(
        source="hubspot",
        run_id="r",
        owner="o",
        name="n",
        contacts=contacts("c1"),
        reserved_credits_for=len,
    )
    assert again is None
    assert store.batches_by_state() == {"planned": 1}


def test_duplicate_ids_and_other_sources(store: Store) -> None:
    """A record listed twice is claimed once; the same id in another source is another contact."""
    batch = plan(store, "c1", "c1", "c2")
    assert [c.record_id for c in batch.contacts] == ["c1", "c2"]
    assert batch.reserved_credits == 2
    other = plan(store, "c1", source="salesforce")
    assert [c.record_id for c in other.contacts] == ["c1"]


def test_freed_contact_can_be_claimed_again(store: Store, clock: FakeClock) -> None:
    """Once its outcome is recorded a contact can be planned again, and attempts count up."""
    batch = plan(store, "c1")
    store.record_outcomes(batch.id, [ContactOutcome("c1", "not_found", {}, False)])
    clock.advance(days=40)
    again = plan(store, "c1")
    row = store.ledger_row("hubspot", "c1")
    assert row is not None
    assert (row.in_flight_batch_id, row.attempts, row.last_attempt_at) == (again.id, 2, clock.now())


def test_concurrent_planners_claim_each_contact_once(store: Store) -> None:
    """Eight threads planning overlapping contacts at once never put one contact in two batches."""
    pool = [f"c{i:03d}" for i in range(120)]
    barrier = threading.Barrier(8)
    made: list[Batch] = []
    errors: list[BaseException] = []

    def planner(seed: int) -> None:
        mine = random.Random(seed).sample(pool, 70)
        barrier.wait()
        try:
            for start in range(0, len(mine), 35):
                batch = store.plan_batch(
                    source="hubspot",
                    run_id=f"run-{seed}",
                    owner=f"replica-{seed}",
                    name="b",
                    contacts=contacts(*mine[start : start + 35]),
                    reserved_credits_for=len,
                )
                if batch is not None:
                    made.append(batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=planner, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    claims = Counter(c.record_id for b in made for c in b.contacts)
    assert max(claims.values()) == 1
    assert sum(b.reserved_credits for b in made) == len(claims)
    for b in made:
        for c in b.contacts:
            row = store.ledger_row("hubspot", c.record_id)
            assert row is not None
            assert row.in_flight_batch_id == b.id


def test_excluded_in_flight_and_cooldowns(store: Store, clock: FakeClock) -> None:
    """In-flight ids are excluded; finished ones wait out the cooldown of their found flag."""
    found = plan(store, "found")
    missing = plan(store, "missing")
    store.record_outcomes(found.id, [ContactOutcome("found", "written", {"email": "a@b.c"}, True)])
    store.record_outcomes(missing.id, [ContactOutcome("missing", "not_found", {}, False)])
    plan(store, "busy")
    ids = ("found", "missing", "busy", "never")
    assert _excluded(store, *ids) == {
        "found": "cooldown",
        "missing": "cooldown",
        "busy": "in_flight",
    }
    clock.advance(days=31)
    assert _excluded(store, *ids) == {"found": "cooldown", "busy": "in_flight"}
    clock.advance(days=60)
    assert _excluded(store, *ids) == {"busy": "in_flight"}


def test_excluded_handles_many_ids(store: Store) -> None:
    """Large id lists are answered in chunks without losing any id."""
    plan(store, "c0007", "c1999")
    ids = [f"c{i:04d}" for i in range(2500)]
    assert _excluded(store, *ids) == {"c0007": "in_flight", "c1999": "in_flight"}


def test_release_planned_undoes_the_cooldown(store: Store, clock: FakeClock) -> None:
    """A batch never sent frees its contacts as if they had not been asked."""
    earlier = plan(store, "c1")
    store.record_outcomes(earlier.id, [ContactOutcome("c1", "not_found", {}, False)])
    clock.advance(days=31)
    batch = plan(store, "c1", "c2")
    assert store.release_planned(batch.id)
    got = store.get_batch(batch.id)
    assert got is not None
    assert (got.state, got.error) == ("failed", "not sent")
    assert {c.outcome for c in got.contacts} == {"not_sent"}
    assert _excluded(store, "c1", "c2") == {}
    row = store.ledger_row("hubspot", "c1")
    assert row is not None
    assert (row.last_attempt_at, row.attempts, row.outcome) == (
        clock.now() - timedelta(days=31),
        1,
        "not_found",
    )


def test_mark_failed_frees_contacts_but_keeps_cooldown(store: Store) -> None:
    """A refused POST frees its contacts (outcome api_rejected) without retrying them at once."""
    batch = plan(store, "c1")
    store.mark_sending(batch.id, "replica-a")
    assert store.mark_failed(batch.id, "400 validation")
    row = store.ledger_row("hubspot", "c1")
    assert row is not None
    assert (row.in_flight_batch_id, row.outcome) == (None, "api_rejected")
    assert _excluded(store, "c1") == {"c1": "cooldown"}
    failed = store.get_batch(batch.id)
    assert failed is not None
    assert failed.error == "400 validation"
