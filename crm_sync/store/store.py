"""The Store: the durable source of truth of every batch, contact claim, run and lease.

Each public method is one transaction. State changes are conditional UPDATEs that name the state
they expect, so a process may die at any line and the next one (or another replica on the same
PostgreSQL database) carries on without paying twice or losing a paid result. The SQL lives in
small modules by concern (planning, transitions, in_doubt, collecting, replaying, reports,
run_history); each operation is written once there, as a function of a connection and `now`,
and this class lists it (`operation.py`), bound to an engine and a clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.logs import register_secret
from crm_sync.store import (
    collecting,
    in_doubt,
    planning,
    replaying,
    reports,
    rows,
    transitions,
)
from crm_sync.store import run_history as runs
from crm_sync.store.contact_results import ContactResults
from crm_sync.store.engine import (
    Timeouts,
    Transactor,
    build_engine,
    is_memory_sqlite,
    normalise_url,
)
from crm_sync.store.open_batches import OpenBatchStore
from crm_sync.store.operation import Work, lookup, read, write
from crm_sync.store.schema import migrate


class Store:
    """Batches, the contact ledger, runs and leases on SQLite or PostgreSQL."""

    def __init__(self, transactor: Transactor, clock: Clock = SYSTEM_CLOCK) -> None:
        self._tx = transactor
        self.clock = clock

    @classmethod
    def open(
        cls, url: str, *, clock: Clock = SYSTEM_CLOCK, timeouts: Timeouts | None = None
    ) -> Store:
        """Connect to `url` (sqlite:///path or postgresql://...); create or migrate the schema."""
        url = normalise_url(url)
        register_secret(make_url(url).password)
        # Lock waits and deadlock retries are against other processes: the engine waits on the
        # real clock (SYSTEM_CLOCK) even when a test fakes the store's `now`.
        engine = build_engine(url, timeouts)
        store = cls(Transactor(engine, serialise=is_memory_sqlite(url)), clock)
        try:
            store._tx.run(migrate)
        except BaseException:
            engine.dispose()
            raise
        return store

    def close(self) -> None:
        """Close every pooled connection."""
        self._tx.engine.dispose()

    @property
    def open_batches(self) -> OpenBatchStore:
        """The fresh lane's open batches (`open_batches.py`)."""
        return OpenBatchStore(self._write, self._read)

    @property
    def contact_results(self) -> ContactResults:
        """Per-contact results of v2 `contact_finished` webhooks."""
        return ContactResults(self._write, self._read)

    @property
    def backend(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self._tx.engine.dialect.name

    def _now(self) -> datetime:
        now = self.clock.now()
        if now.tzinfo is None:
            raise ValueError("the store clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    def _write(self, work: Work) -> Any:
        return self._tx.run(lambda conn: work(conn, self._now()))

    def _read(self, work: Work) -> Any:
        return self._tx.run(lambda conn: work(conn, self._now()), write=False)

    def ping(self) -> bool:
        """True if the database answers (for /readyz); never raises."""
        try:
            return bool(self._read(lambda c, _now: c.execute(text("SELECT 1")).scalar() == 1))
        except SQLAlchemyError:
            return False

    # runs
    start_run = write(reports.start_run)
    finish_run = write(reports.finish_run)
    finish_running_run = write(runs.finish_running)
    abandon_dead_runs = write(runs.abandon_dead_runs)
    recent_runs = lookup(reports.recent_runs)
    run_history = lookup(runs.run_history)

    # selection and planning
    excluded_contacts = read(planning.excluded_contacts)
    plan_batch = write(planning.plan_batch)
    planned_batches = lookup(reports.planned_batches)

    # submitting
    mark_sending = write(transitions.mark_sending)
    mark_submitted = write(collecting.mark_submitted)
    mark_failed = write(transitions.mark_failed)
    release_unsent = write(transitions.release_unsent)
    split_batch = write(transitions.split_batch)
    release_planned = write(transitions.release_planned)

    # in_doubt: in after a lost answer or a crash, out after a while or by hand
    mark_in_doubt = write(in_doubt.mark_in_doubt)
    recover_stale_sending = write(in_doubt.recover_stale_sending)
    release_in_doubt = write(in_doubt.release_in_doubt)
    find_batch_ids = lookup(in_doubt.find_batch_ids)
    resolve_sent = write(in_doubt.resolve_sent)
    resolve_not_sent = write(in_doubt.resolve_not_sent)

    # collecting
    store_result = write(collecting.store_result)
    claim_due_polls = write(collecting.claim_due_polls)
    schedule_poll = write(collecting.schedule_poll)
    submitted_batches = lookup(reports.submitted_batches)
    record_read_failure = write(collecting.record_read_failure)
    mark_unreadable = write(transitions.mark_unreadable)

    # results that came before their batch's id (kept), attached when a batch carries it
    kept_result_count = read(collecting.count_early)
    attach_early_result = write(collecting.attach_early)
    early_results = lookup(collecting.load_early)
    prune_early_results = write(collecting.prune_early)

    def attach_known_early_results(self) -> list[tuple[str, str]]:
        """Hand kept results to the batches that now carry their ids: [(id, outcome)].

        One read when there is nothing to do; the write transaction only when there is.
        """
        known: list[str] = self._read(collecting.known_early_ids)
        if not known:
            return []

        def attach(conn: Connection, now: datetime) -> list[tuple[str, str]]:
            done = [(i, collecting.attach_early(conn, now, i)) for i in known]
            return [(i, outcome) for i, outcome in done if outcome is not None]

        result: list[tuple[str, str]] = self._write(attach)
        return result

    # writing back, held results and replay
    claim_received = write(collecting.claim_received)
    record_outcomes = write(transitions.record_outcomes)
    mark_written = write(transitions.mark_written)
    hold_batch = write(replaying.hold_batch)
    held_batches = lookup(replaying.held_batches)
    claim_for_replay = write(replaying.claim_for_replay)
    replayable_batches = lookup(replaying.replayable_batches)
    rejected_in_written = lookup(replaying.rejected_in_written)
    record_replayed = write(replaying.record_replayed)

    # bounded scans
    scan_cursor = lookup(reports.scan_cursor)
    set_scan_cursor = write(reports.set_scan_cursor)

    # leases and claims
    acquire_lease = write(reports.acquire_lease)
    release_lease = write(reports.release_lease)
    lease_holder = read(reports.lease_holder)
    steal_lease = write(reports.steal_lease)
    claim_owners = lookup(collecting.claim_owners)
    release_claims = write(collecting.release_claims)

    # budgets, reports and lookups
    credits_committed = lookup(reports.credits_committed)
    credits_in_flight = lookup(reports.credits_in_flight)
    credits_by_source_and_day = read(reports.credits_by_source_and_day)
    spend_by_source_and_day = read(runs.spend_by_source_and_day)
    batches_by_state = lookup(reports.batches_by_state)
    outcomes_by_source = lookup(reports.outcomes_by_source)
    in_doubt_batches = lookup(reports.in_doubt_batches)
    get_batch = lookup(reports.get_batch)
    batch_by_enrichment_id = lookup(reports.batch_by_enrichment_id)
    webhook_events = lookup(rows.load_webhook_events)
    ledger_row = lookup(rows.load_ledger_row)
