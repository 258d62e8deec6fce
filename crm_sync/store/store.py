"""The Store: the durable source of truth of every batch, contact claim, run and lease.

Each public method is one transaction. State changes are conditional UPDATEs that name the state
they expect, so a process may die at any line and the next one (or another replica on the same
PostgreSQL database) carries on without paying twice or losing a paid result. The SQL lives in
small modules by concern (planning, transitions, collecting, reports); this class binds them to
an engine and a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.logs import register_secret
from crm_sync.store import collecting, planning, reports, transitions
from crm_sync.store.contact_results import ContactResults
from crm_sync.store.engine import (
    Timeouts,
    Transactor,
    build_engine,
    is_memory_sqlite,
    normalise_url,
)
from crm_sync.store.open_batches import OpenBatchStore
from crm_sync.store.operator import OperatorQueries
from crm_sync.store.records import (
    Batch,
    ContactOutcome,
    LedgerRow,
    PlannedContact,
    RunRow,
    WebhookEvent,
)
from crm_sync.store.replaying import WriteBackQueries
from crm_sync.store.results_api import ResultMethods
from crm_sync.store.rows import load_batches, load_ledger_row, load_webhook_events
from crm_sync.store.schema import batches, migrate
from crm_sync.store.states import BatchState


class Store(OperatorQueries, ResultMethods, WriteBackQueries):
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

    @property
    def open_batches(self) -> OpenBatchStore:
        """The fresh lane's open batches (`open_batches.py`)."""
        return OpenBatchStore(self._write, self._read)

    def close(self) -> None:
        """Close every pooled connection."""
        self._tx.engine.dispose()

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

    def _write(self, work: Callable[[Connection, datetime], Any]) -> Any:
        return self._tx.run(lambda conn: work(conn, self._now()))

    def _read(self, work: Callable[[Connection, datetime], Any]) -> Any:
        return self._tx.run(lambda conn: work(conn, self._now()), write=False)

    # runs
    def start_run(self, run_id: str, owner: str) -> None:
        """Record the start of a run."""
        self._write(lambda c, now: reports.start_run(c, now, run_id, owner))

    def finish_run(self, run_id: str, status: str, report: dict[str, Any]) -> None:
        """Record the end of a run with its report."""
        self._write(lambda c, now: reports.finish_run(c, now, run_id, status, report))

    def recent_runs(self, limit: int = 10) -> list[RunRow]:
        """The newest runs first."""
        result: list[RunRow] = self._read(lambda c, _now: reports.recent_runs(c, limit))
        return result

    # selection and planning
    def excluded_contacts(
        self,
        source: str,
        record_ids: Sequence[str],
        *,
        found_cooldown: timedelta,
        not_found_cooldown: timedelta,
    ) -> dict[str, str]:
        """Record id -> "in_flight" | "cooldown" for the ids that must not be planned now."""
        result: dict[str, str] = self._read(
            lambda c, now: planning.excluded_contacts(
                c,
                now,
                source,
                record_ids,
                found_cooldown=found_cooldown,
                not_found_cooldown=not_found_cooldown,
            )
        )
        return result

    def plan_batch(
        self,
        *,
        source: str,
        run_id: str,
        owner: str,
        name: str,
        contacts: Sequence[PlannedContact],
        reserved_credits_for: Callable[[Sequence[PlannedContact]], int],
    ) -> Batch | None:
        """A planned batch of the contacts this call could claim; None if none was free."""
        result: Batch | None = self._write(
            lambda c, now: planning.plan_batch(
                c,
                now,
                source=source,
                run_id=run_id,
                owner=owner,
                name=name,
                contacts=contacts,
                reserved_credits_for=reserved_credits_for,
            )
        )
        return result

    def planned_batches(self, source: str | None = None) -> list[Batch]:
        """Batches planned but not yet sending (left by a stopped run), with contacts."""
        where = batches.c.state == BatchState.PLANNED
        if source is not None:
            where = where & (batches.c.source == source)
        result: list[Batch] = self._read(lambda c, _now: load_batches(c, where))
        return result

    # submitting
    def mark_sending(self, batch_id: str, owner: str) -> bool:
        """planned -> sending, taken by `owner`: only the caller that gets True may POST."""
        return bool(
            self._write(
                lambda c, now: transitions.transition(
                    c, now, batch_id, (BatchState.PLANNED,), BatchState.SENDING, owner=owner
                )
            )
        )

    def mark_submitted(self, batch_id: str, enrichment_id: str, *, next_poll_at: datetime) -> bool:
        """sending -> submitted with the API's id (also from in_doubt: a late answer is kept).

        A result kept for that id (its webhook came before the POST's answer) is attached in
        the same transaction: the batch goes straight on to `received`.
        """

        def work(conn: Connection, now: datetime) -> bool:
            moved = transitions.mark_submitted(conn, now, batch_id, enrichment_id, next_poll_at)
            if moved:
                collecting.attach_early(conn, now, enrichment_id)
            return moved

        return bool(self._write(work))

    def mark_failed(self, batch_id: str, error: str) -> bool:
        """planned|sending -> failed (refused before any work); its contacts are freed."""
        return bool(self._write(lambda c, now: transitions.mark_failed(c, now, batch_id, error)))

    def release_unsent(self, batch_id: str, reason: str) -> bool:
        """planned|sending -> failed "not sent" (the API never worked on it); no cooldown."""
        return bool(
            self._write(lambda c, now: transitions.release_unsent(c, now, batch_id, reason))
        )

    def split_batch(
        self,
        batch_id: str,
        *,
        groups: Sequence[Sequence[str]],
        names: Sequence[str],
        rejected: Mapping[str, str],
        error: str,
        cost: Callable[[Sequence[str]], int],
    ) -> list[Batch] | None:
        """A batch the API refused as invalid -> failed, its contacts in new planned batches
        (`groups`) or `invalid_input` (`rejected`: record id -> reason); None if it moved on."""
        result: list[Batch] | None = self._write(
            lambda c, now: transitions.split_batch(
                c,
                now,
                batch_id,
                groups=groups,
                names=names,
                rejected=rejected,
                error=error,
                cost=cost,
            )
        )
        return result

    def mark_in_doubt(self, batch_id: str, error: str) -> bool:
        """sending -> in_doubt (the POST may have been executed); contacts stay in flight."""
        return bool(
            self._write(
                lambda c, now: transitions.transition(
                    c, now, batch_id, (BatchState.SENDING,), BatchState.IN_DOUBT, error=error
                )
            )
        )

    def recover_stale_sending(
        self,
        *,
        owner: str | None = None,
        older_than: timedelta | None = None,
        source: str | None = None,
        exclude_owner: str | None = None,
    ) -> list[str]:
        """sending batches left by a dead process -> in_doubt; their ids.

        Those sent by `owner` or stuck longer than `older_than`; or, with `exclude_owner`
        alone, all not sent by it (its caller holds the source lease); `source` narrows.
        """
        result: list[str] = self._write(
            lambda c, now: transitions.recover_stale_sending(
                c,
                now,
                owner=owner,
                older_than=older_than,
                source=source,
                exclude_owner=exclude_owner,
            )
        )
        return result

    def release_in_doubt(self, older_than: timedelta) -> list[str]:
        """in_doubt batches older than `older_than` -> released, contacts freed; their ids."""
        result: list[str] = self._write(
            lambda c, now: transitions.release_in_doubt(c, now, older_than)
        )
        return result

    def release_planned(self, batch_id: str) -> bool:
        """planned -> failed "not sent" (deadline, shutdown); contacts freed, cooldown undone."""
        return bool(self._write(lambda c, now: transitions.release_planned(c, now, batch_id)))

    # collecting
    def store_result(
        self,
        enrichment_id: str,
        raw_body: str,
        status: str,
        *,
        source_kind: str,
        credits_spent: int | None,
        keep_unknown: bool = False,
    ) -> str:
        """Keep a terminal result once: "stored", "duplicate", "unknown" (or "kept")."""
        result: str = self._write(
            lambda c, now: collecting.store_result(
                c,
                now,
                enrichment_id,
                raw_body,
                status,
                source_kind=source_kind,
                credits_spent=credits_spent,
                keep_unknown=keep_unknown,
            )
        )
        return result

    def claim_due_polls(self, *, owner: str, limit: int, lease: timedelta) -> list[Batch]:
        """Submitted batches due for a poll, claimed for `owner` until `lease` runs out."""
        result: list[Batch] = self._write(
            lambda c, now: collecting.claim_due_polls(c, now, owner=owner, limit=limit, lease=lease)
        )
        return result

    def schedule_poll(self, batch_id: str, *, owner: str, next_poll_at: datetime) -> bool:
        """Count one more poll, set the next one and drop `owner`'s claim."""
        return bool(
            self._write(
                lambda c, now: collecting.schedule_poll(
                    c, now, batch_id, owner=owner, next_poll_at=next_poll_at
                )
            )
        )

    def submitted_batches(self, source: str | None = None) -> list[Batch]:
        """Batches waiting for their result (without contacts), oldest first."""
        where = batches.c.state == BatchState.SUBMITTED
        if source is not None:
            where = where & (batches.c.source == source)
        result: list[Batch] = self._read(
            lambda c, _now: load_batches(c, where, with_contacts=False)
        )
        return result

    # writing back
    def claim_received(
        self, *, owner: str, limit: int, lease: timedelta, source: str | None = None
    ) -> list[Batch]:
        """Received batches claimed for write-back by `owner`, with their contacts."""
        result: list[Batch] = self._write(
            lambda c, now: collecting.claim_received(
                c, now, owner=owner, limit=limit, lease=lease, source=source
            )
        )
        return result

    def record_outcomes(self, batch_id: str, outcomes: Sequence[ContactOutcome]) -> None:
        """Record what write-back did per contact and free those contacts (idempotent)."""
        self._write(lambda c, now: transitions.record_outcomes(c, now, batch_id, outcomes))

    def mark_written(self, batch_id: str, *, owner: str) -> bool:
        """received -> written by the claim holder."""
        return bool(self._write(lambda c, now: transitions.mark_written(c, now, batch_id, owner)))

    # bounded scans
    def scan_cursor(self, source: str) -> str | None:
        """Where this source's next bounded scan starts (None: from the beginning)."""
        after: str | None = self._read(lambda c, _now: reports.scan_cursor(c, source))
        return after

    def set_scan_cursor(self, source: str, after_id: str | None) -> None:
        """Remember where a bounded scan stopped; None wraps around to the beginning."""
        self._write(lambda c, now: reports.set_scan_cursor(c, now, source, after_id))

    # leases
    def acquire_lease(self, name: str, owner: str, ttl: timedelta) -> bool:
        """Take (or renew) the lease `name` for `ttl`; False if another owner holds it."""
        return bool(self._write(lambda c, now: reports.acquire_lease(c, now, name, owner, ttl)))

    def release_lease(self, name: str, owner: str) -> None:
        """Give up the lease `name` if `owner` holds it."""
        self._write(lambda c, _now: reports.release_lease(c, name, owner))

    def lease_holder(self, name: str) -> str | None:
        """Who holds the lease `name` now (None if free or expired)."""
        result: str | None = self._read(lambda c, now: reports.lease_holder(c, now, name))
        return result

    def steal_lease(self, name: str, holder: str, owner: str, ttl: timedelta) -> bool:
        """Take over `holder`'s lease (the caller knows it is dead); False if it changed hands."""
        return bool(
            self._write(
                lambda c, now: reports.steal_lease(
                    c, now, name, holder=holder, owner=owner, ttl=ttl
                )
            )
        )

    def claim_owners(self) -> list[str]:
        """Owners named on batch claims, to find those of dead processes."""
        result: list[str] = self._read(lambda c, _now: collecting.claim_owners(c))
        return result

    def release_claims(self, owner: str) -> int:
        """Drop every poll or write-back claim of `owner` (known dead); the number dropped."""
        return int(self._write(lambda c, now: collecting.release_claims(c, now, owner)))

    # budgets, reports and lookups
    def credits_committed(self, source: str, since: datetime) -> int:
        """Credits spent or still reserved by `source` since `since`."""
        return int(self._read(lambda c, _now: reports.credits_committed(c, source, since)))

    def credits_in_flight(self) -> int:
        """Credits reserved by planned, sending, submitted and in_doubt batches, all sources."""
        return int(self._read(lambda c, _now: reports.credits_in_flight(c)))

    def batches_by_state(self) -> dict[str, int]:
        """Batch count per state."""
        result: dict[str, int] = self._read(lambda c, _now: reports.batches_by_state(c))
        return result

    def in_doubt_batches(self) -> list[Batch]:
        """Batches that may have been paid for without an id, with contacts, oldest first."""
        result: list[Batch] = self._read(
            lambda c, _now: load_batches(c, batches.c.state == BatchState.IN_DOUBT)
        )
        return result

    def credits_by_source_and_day(self, days: int = 14) -> list[tuple[str, date, int]]:
        """(source, UTC day, credits) over the last `days` days, oldest first."""
        result: list[tuple[str, date, int]] = self._read(
            lambda c, now: reports.credits_by_source_and_day(c, now, days)
        )
        return result

    def ping(self) -> bool:
        """True if the database answers (for /readyz); never raises."""
        try:
            return bool(self._read(lambda c, _now: c.execute(text("SELECT 1")).scalar() == 1))
        except SQLAlchemyError:
            return False

    def get_batch(self, batch_id: str) -> Batch | None:
        """One batch with its contacts."""
        found: list[Batch] = self._read(lambda c, _now: load_batches(c, batches.c.id == batch_id))
        return found[0] if found else None

    def batch_by_enrichment_id(self, enrichment_id: str) -> Batch | None:
        """The batch the API knows as `enrichment_id`, with its contacts."""
        found: list[Batch] = self._read(
            lambda c, _now: load_batches(c, batches.c.enrichment_id == enrichment_id)
        )
        return found[0] if found else None

    def webhook_events(self, enrichment_id: str) -> list[WebhookEvent]:
        """The webhook deliveries received for `enrichment_id`, oldest first (the audit trail)."""
        result: list[WebhookEvent] = self._read(
            lambda c, _now: load_webhook_events(c, enrichment_id)
        )
        return result

    def ledger_row(self, source: str, record_id: str) -> LedgerRow | None:
        """The ledger entry of one record."""
        result: LedgerRow | None = self._read(lambda c, _now: load_ledger_row(c, source, record_id))
        return result
