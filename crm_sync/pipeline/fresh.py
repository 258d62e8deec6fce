"""The fresh lane: an incremental scan per source feeding an open batch sent within N seconds.

Every `schedule.fresh_scan_seconds` the lane asks each source's connector for candidates changed
since its cursor (less `fresh_overlap_seconds` for clock skew and index lag). Those that pass the
same checks as the full scan (in flight, cooldown, identity, something missing) join the source's
open batch in the store. The batch is sealed and sent when it holds `run.batch_size` contacts or
its oldest has waited `run.max_batch_wait_seconds` (counted from its CRM creation date, or from
when a scan first saw it if it was created before the scan's window), but never sooner than that
many seconds after the end of the lane's previous POST for the source: a steady trickle of new
contacts costs at most one call a period, and the backlog keeps the rest of the API's calls.

Sealing applies the full scan's money rules at that moment: the balance (read at most once every
five periods, as the full scan reads it once per run) less what is in flight, `min_balance`
is honoured, and the contacts are taken in join order while they fit the budget (balance less
reserve less credits in flight, `per_day`, and `per_run` and `max_contacts_per_run` per fresh
batch; while a full cycle of this process submits the source, that cycle's own budget, shared).
Those that do not fit are given back with no cooldown. Sending is the full scan's own
`send_planned_batch`, so in_doubt, refusals and the failpoints behave the same. A contact
crm-sync has just enriched is modified by our write, so the scan sees it again: the ledger's
cooldown (or its in-flight claim) keeps it out, exactly as in the full scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from connectors.base import INCREMENTAL_SCAN, Change, Connector
from crm_sync import errors
from crm_sync.config import SourceConfig
from crm_sync.enrichment.prices import worst_case_cost
from crm_sync.logs import get_logger
from crm_sync.pipeline.budget import Budget
from crm_sync.pipeline.collect import poll_due
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.cycle import source_budget
from crm_sync.pipeline.lease import claim_lease
from crm_sync.pipeline.report import SourceCounts, SourceReport
from crm_sync.pipeline.shared_budget import budget_in_use
from crm_sync.pipeline.submit import (
    SOURCE_LEASE_TTL,
    SourceStopped,
    plan_contact,
    send_planned_batch,
    source_lease_name,
)
from crm_sync.pipeline.writeback import write_back_batch
from crm_sync.store.open_batches import CURSOR_PREFIX
from crm_sync.store.records import PlannedContact

WRITE_BACK_PER_TICK = 5
BALANCE_PERIODS = 5  # the balance is re-read after this many lane periods


def can_scan_incrementally(connector: Connector) -> bool:
    """True when the connector declares the incremental scan (else: full scans only)."""
    return INCREMENTAL_SCAN in connector.capabilities


@dataclass
class LaneState:
    """What the lane remembers per source between ticks (the store holds the rest)."""

    next_scan: datetime | None = None
    last_post: datetime | None = None
    post_loaded: bool = False


@dataclass
class FreshLane:
    """The lane of every enabled source able to scan incrementally; `tick` does what is due."""

    ctx: Context
    states: dict[str, LaneState] = field(default_factory=dict)
    posts: list[tuple[str, datetime]] = field(default_factory=list)  # (source, when): for tests
    balance: tuple[datetime, int] | None = None  # (read at, credits)

    def sources(self) -> list[SourceConfig]:
        return [
            s
            for s in self.ctx.config.sources
            if s.enabled and can_scan_incrementally(self.ctx.connectors[s.name])
        ]

    def tick(self) -> dict[str, SourceCounts]:
        """Scan what is due, send what is due, write back received fresh batches."""
        counts: dict[str, SourceCounts] = {}
        for source in self.sources():
            if self.ctx.stopping.is_set():
                break
            report = SourceReport(source.name, source.connector)
            try:
                self._source_tick(source, report)
            except (errors.CrmSyncError, SourceStopped) as exc:
                get_logger(source=source.name, lane="fresh").error(
                    "fresh_lane_failed", error=str(exc)
                )
            counts[source.name] = report.counts
        write_back_fresh(self.ctx, counts)
        return counts

    def _source_tick(self, source: SourceConfig, report: SourceReport) -> None:
        state = self.states.setdefault(source.name, LaneState())
        now = self.ctx.clock.now()
        if state.next_scan is None or now >= state.next_scan:
            state.next_scan = now + timedelta(seconds=self.ctx.config.schedule.fresh_scan_seconds)
            with self._lease(source) as held:
                if held:
                    scan_source(self.ctx, source, report)
        self._maybe_send(source, state, report)

    @contextmanager
    def _lease(self, source: SourceConfig) -> Iterator[bool]:
        """The source lease for one scan or send (one submitter per source), then given up.

        If this process's full cycle holds it meanwhile, it renews it before its next batch.
        """
        name = source_lease_name(source.name)
        held = self.ctx.store.acquire_lease(name, self.ctx.owner, SOURCE_LEASE_TTL)
        try:
            yield held
        finally:
            if held:
                self.ctx.store.release_lease(name, self.ctx.owner)

    def _balance(self) -> int:
        """The credit balance, re-read when older than BALANCE_PERIODS periods of the lane."""
        now = self.ctx.clock.now()
        schedule, run = self.ctx.config.schedule, self.ctx.config.run
        period = max(schedule.fresh_scan_seconds, run.max_batch_wait_seconds)
        if self.balance is None or now - self.balance[0] > timedelta(
            seconds=period * BALANCE_PERIODS
        ):
            self.balance = (now, self.ctx.client.credits())
        return self.balance[1]

    def _maybe_send(self, source: SourceConfig, state: LaneState, report: SourceReport) -> None:
        store = self.ctx.store.open_batches
        batch = store.get(source.name)
        if batch is None or not batch.contacts:
            return
        now = self.ctx.clock.now()
        run = self.ctx.config.run
        wait = timedelta(seconds=run.max_batch_wait_seconds)
        if not state.post_loaded:
            state.last_post, state.post_loaded = store.last_post(source.name), True
        if state.last_post is not None and now < state.last_post + wait:
            return
        oldest = store.oldest_waiting(batch.id) or batch.created_at
        if len(batch.contacts) < run.batch_size and now < oldest + wait:
            return
        with self._lease(source) as held:
            if not held:
                return
            try:
                send_open_batch(self.ctx, source, batch.id, report, balance=self._balance())
            finally:
                # Counted from the end of the POST: the next one reaches the API at least a
                # whole period after this one did, whatever the network did in between.
                state.last_post = self.ctx.clock.now()
                self.posts.append((source.name, state.last_post))
                if len(batch.contacts) >= run.batch_size:
                    state.next_scan = None  # a full batch left contacts behind: scan again now


def scan_source(ctx: Context, source: SourceConfig, report: SourceReport) -> int:
    """One incremental scan into the open batch; the number of contacts that joined."""
    store = ctx.store
    connector = ctx.connectors[source.name]
    schedule, run = ctx.config.schedule, ctx.config.run
    now = ctx.clock.now()
    key = CURSOR_PREFIX + source.name
    raw = store.scan_cursor(key)
    cursor = datetime.fromisoformat(raw) if raw else None
    overlap = timedelta(seconds=schedule.fresh_overlap_seconds)
    since = (cursor or now - timedelta(seconds=schedule.fresh_scan_seconds)) - overlap
    batch = store.open_batches.get(source.name)
    room = run.batch_size - (len(batch.contacts) if batch else 0)
    newest, joined = cursor, 0
    selection = replace(connector.selection(), page_size=None)
    for page in connector.iter_changed(selection, since):
        if ctx.stopping.is_set() or room <= 0:
            break
        report.counts.scanned += len(page)
        planned, created, stop_at = _eligible(ctx, source, page, report, since=since, now=now)
        taken = planned[:room]
        if len(planned) > room:  # full: the next scan starts again at the first left out
            stop_at = next(c.modified_at for c in page if c.contact.id == planned[room].record_id)
        if taken:
            ids = store.open_batches.join(
                source=source.name,
                owner=ctx.owner,
                run_id=f"fresh-{now:%Y%m%d}",
                contacts=taken,
                created=created,
                capacity=run.batch_size,
            )
            joined += len(ids)
            report.counts.skipped["in_flight"] += len(taken) - len(ids)
            room -= len(taken)
        newest = stop_at if newest is None else max(newest, stop_at)
        if len(planned) > len(taken):
            break
    if newest is not None and newest != cursor:
        store.set_scan_cursor(key, newest.isoformat())
    if joined:
        get_logger(source=source.name, lane="fresh").info(
            "fresh_contacts_joined", contacts=joined, open_room=room
        )
    return joined


def _eligible(
    ctx: Context,
    source: SourceConfig,
    page: list[Change],
    report: SourceReport,
    *,
    since: datetime,
    now: datetime,
) -> tuple[list[PlannedContact], dict[str, datetime], datetime]:
    """The page's contacts that pass the full scan's checks, their start times, newest change."""
    excluded = ctx.store.excluded_contacts(
        source.name,
        [c.contact.id for c in page],
        found_cooldown=timedelta(days=source.cooldown.found_days),
        not_found_cooldown=timedelta(days=source.cooldown.not_found_days),
    )
    wanted = ctx.connectors[source.name].selection().wanted
    planned: list[PlannedContact] = []
    created: dict[str, datetime] = {}
    for change in page:
        contact = change.contact
        item = plan_contact(
            ctx.rules,
            source.name,
            contact,
            wanted,
            excluded=excluded.get(contact.id),
            counts=report.counts,
        )
        if item is None:
            continue
        planned.append(item)
        born = change.created_at
        created[contact.id] = born if born is not None and since <= born <= now else now
    return planned, created, max(c.modified_at for c in page)


def send_open_batch(
    ctx: Context, source: SourceConfig, batch_id: str, report: SourceReport, *, balance: int
) -> bool:
    """Seal the open batch under the full scan's money rules and send it; True if it was sent."""
    log = get_logger(source=source.name, lane="fresh", batch=batch_id)
    store = ctx.store.open_batches
    batch = store.get(source.name)
    if batch is None or batch.id != batch_id:
        return False
    run = ctx.config.run
    problems = ctx.connectors[source.name].check_fields()  # as the full scan, before spending
    if problems:
        store.drop(batch_id, "not sent: mapped CRM fields are wrong: " + "; ".join(problems))
        log.error("fresh_batch_dropped_fields_refused", problems=problems)
        return False
    if balance < run.min_balance:
        store.drop(batch_id, f"not sent: balance {balance} below min_balance {run.min_balance}")
        log.warning("fresh_batch_dropped_low_balance", balance=balance)
        return False
    budget: Budget | None = budget_in_use(ctx, source.name)  # a full cycle is submitting
    if budget is None:
        budget = source_budget(ctx, source, balance)
        budget.contacts_left = run.max_contacts_per_run
    keep: list[str] = []
    reserved = 0
    for contact in batch.contacts:
        cost = worst_case_cost(contact.fields_asked)
        if budget.take(cost):
            keep.append(contact.record_id)
            reserved += cost
        else:
            report.counts.deferred += 1
    now = ctx.clock.now()
    # As the full scan names its batches: the id finds the batch on the provider's dashboard.
    name = (
        f"crm-sync {source.name} {now:%Y-%m-%d %H:%M} fresh batch {batch_id} ({len(keep)} contacts)"
    )
    sealed = store.seal(batch_id, keep=keep, reserved_credits=reserved, name=name, owner=ctx.owner)
    if sealed is None:
        budget.give_back(reserved)
        log.warning("fresh_batch_not_sent", reason=f"budget reached ({budget.describe()})")
        return False
    send_planned_batch(ctx, source, sealed, report, run_id=sealed.run_id, name=name, now=now)
    log.info("fresh_batch_sent", contacts=len(keep), deferred=report.counts.deferred)
    return True


def write_back_fresh(ctx: Context, counts: dict[str, SourceCounts]) -> int:
    """Poll due fresh batches and write back received ones now, without waiting for a long
    full cycle (which holds the daemon's work lock, so its poll job waits too)."""
    poll_due(ctx, counts, limit=WRITE_BACK_PER_TICK, claim=ctx.store.open_batches.claim_due_polls)
    done = 0
    if not ctx.store.open_batches.any_received():
        return done
    for batch in ctx.store.open_batches.claim_received(
        owner=ctx.owner, limit=WRITE_BACK_PER_TICK, lease=claim_lease(ctx)
    ):
        write_back_batch(ctx, batch, counts.setdefault(batch.source, SourceCounts()))
        done += 1
    return done
