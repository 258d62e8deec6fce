"""Fixtures: one store per test on each backend (a fresh SQLite file, a fresh PostgreSQL schema)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from crm_sync.store import Batch, PlannedContact, Store
from tests.support.clock import START, FakeClock

__all__ = ["START", "FakeClock", "contacts", "plan", "received", "submitted"]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for an empty store on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.sqlite3'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def clock() -> FakeClock:
    """The injected clock shared by the store and the test."""
    return FakeClock()


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[Store]:
    """An open store on an empty database."""
    opened = Store.open(store_url, clock=clock)
    yield opened
    opened.close()


def contacts(*record_ids: str, fields: Sequence[str] = ("contact.emails",)) -> list[PlannedContact]:
    """Planned contacts with the given ids and a small request item each."""
    return [
        PlannedContact(record_id=r, fields_asked=tuple(fields), request={"custom": {"crm_id": r}})
        for r in record_ids
    ]


def one_credit_each(planned: Sequence[PlannedContact]) -> int:
    """A reservation rule that is easy to check: one credit per contact."""
    return len(planned)


def plan(
    store: Store,
    *record_ids: str,
    source: str = "hubspot",
    owner: str = "replica-a",
    credits: Callable[[Sequence[PlannedContact]], int] = one_credit_each,
) -> Batch:
    """Plan a batch of `record_ids` and insist that it was created."""
    batch = store.plan_batch(
        source=source,
        run_id="run-1",
        owner=owner,
        name="batch",
        contacts=contacts(*record_ids),
        reserved_credits_for=credits,
    )
    assert batch is not None
    return batch


def submitted(store: Store, clock: FakeClock, *record_ids: str, eid: str = "e-1") -> Batch:
    """A batch moved through planned and sending to submitted, due for a poll now."""
    batch = plan(store, *record_ids)
    assert store.mark_sending(batch.id, "replica-a")
    assert store.mark_submitted(batch.id, eid, next_poll_at=clock.now())
    return batch


def received(store: Store, clock: FakeClock, *record_ids: str, eid: str = "e-1") -> Batch:
    """A batch whose result is stored, ready for write-back."""
    batch = submitted(store, clock, *record_ids, eid=eid)
    outcome = store.store_result(eid, '{"ok":1}', "FINISHED", source_kind="poll", credits_spent=1)
    assert outcome == "stored"
    return batch
