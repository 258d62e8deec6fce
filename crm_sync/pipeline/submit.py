"""Select, plan and submit for one source: the only stages that spend money.

Each contact's request item is checked against the provider's input rules before it is planned
(`enrichment/input_rules.py`): an item the API would refuse gets `invalid_input` and no slot.

The order of writes is what makes a crash harmless:
    stop flag and lease checked                      -> failpoint between_batches_after_stop
    plan_batch (contacts claimed, credits reserved)  -> failpoint after_plan
    wait for a rate-limiter slot (honours the stop)  -> failpoint waiting_for_limiter_slot
    mark_sending, inside the slot                    -> failpoint after_mark_sending
    POST /contact/enrich/bulk                        -> failpoint after_submit
    mark_submitted(enrichment_id)                    -> failpoint after_mark_submitted
A process that dies between mark_sending and mark_submitted leaves a `sending` batch; the next
holder of the source lease turns it into `in_doubt`, which is never resent automatically. A
batch is `sending` only once its slot is granted, so one that dies waiting is still `planned`
and is simply planned again. A batch the API refused before any work (429 or 503 after the
retries, connection refused, stop requested) is released with no cooldown; one it refused as
invalid is split until the offending items are isolated, and the rest is sent in this run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from connectors.base import Contact, Selection
from crm_sync.config import SourceConfig
from crm_sync.enrichment.input_rules import InputRules, remembered_key, still_strict
from crm_sync.enrichment.prices import worst_case_cost
from crm_sync.pipeline.budget import Budget
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.lease import DEFAULT_LEASE_TTL, source_lease_name
from crm_sync.pipeline.report import DryRunItem, SourceCounts, SourceReport
from crm_sync.pipeline.send import SourceStopped, send_planned_batch, submit_batch
from crm_sync.rules.policies import build_request, fields_to_ask
from crm_sync.store.records import PlannedContact


@dataclass
class Scan:
    """Where a bounded scan (`max_scan_per_run`) starts and how it ended."""

    start: str | None = None
    last_seen: str | None = None
    complete: bool = False  # the connector had nothing more: the next scan starts over
    limited: bool = False  # stopped at max_scan_per_run: the next scan resumes after last_seen


@dataclass(frozen=True)
class Candidate:
    contact: Contact
    planned: PlannedContact
    cost: int


def submit_source(
    ctx: Context,
    source: SourceConfig,
    report: SourceReport,
    budget: Budget,
    *,
    run_id: str,
    dry_run: bool,
    dry_run_items: list[DryRunItem],
    deadline: datetime | None,
) -> None:
    """Find this source's candidates and submit them in batches within the budget."""
    rules = ctx.rules
    if rules.linkedin_alone and still_strict(
        ctx.store.scan_cursor(remembered_key(rules.provider)), ctx.clock.now()
    ):
        rules.tighten()  # an earlier run learned it: no refused POST to learn it again
    bounded = source.max_scan_per_run is not None
    scan = Scan(start=ctx.store.scan_cursor(source.name) if bounded else None)
    selection = replace(
        ctx.connectors[source.name].selection(),
        after_id=scan.start,
        page_size=source.max_scan_per_run,  # connectors clamp it to what their API allows
    )
    batch: list[Candidate] = []
    last_taken = scan.start
    for candidate in _eligible(ctx, source, selection, report, deadline, scan=scan):
        if not budget.take(candidate.cost):
            report.counts.deferred += 1
            if budget.exhausted:
                report.message = report.message or f"budget reached ({budget.describe()})"
                break
            continue
        if dry_run:
            dry_run_items.append(_dry_run_item(source.name, candidate))
            continue
        batch.append(candidate)
        if len(batch) >= ctx.config.run.batch_size:
            if not submit_batch(
                ctx, source, [c.planned for c in batch], report, budget, run_id=run_id
            ):
                batch = []
                break
            last_taken, batch = batch[-1].contact.id, []
    if (
        batch
        and not dry_run
        and submit_batch(ctx, source, [c.planned for c in batch], report, budget, run_id=run_id)
    ):
        last_taken = batch[-1].contact.id
    if bounded and not dry_run:
        ctx.store.set_scan_cursor(source.name, _next_start(scan, last_taken))


def _next_start(scan: Scan, last_taken: str | None) -> str | None:
    """Where the next bounded scan starts: over, after the limit, or after the last sent."""
    if scan.complete:
        return None
    if scan.limited:
        return scan.last_seen
    return last_taken  # stopped by the budget or the deadline: resume at what was not sent


def _eligible(
    ctx: Context,
    source: SourceConfig,
    selection: Selection,
    report: SourceReport,
    deadline: datetime | None,
    *,
    scan: Scan,
) -> Iterator[Candidate]:
    """Candidates that pass identity, cooldown and in-flight checks, page by page."""
    counts = report.counts
    rules = ctx.rules
    limit = source.max_scan_per_run
    for page in ctx.connectors[source.name].iter_candidates(selection):
        if ctx.stopping.is_set() or (deadline is not None and ctx.clock.now() >= deadline):
            report.message = report.message or "stopped before the end of the backlog"
            return
        if limit is not None and counts.scanned >= limit:
            scan.limited = True
            report.message = report.message or f"max_scan_per_run ({limit}) reached"
            return
        counts.scanned += len(page)
        scan.last_seen = page[-1].id if page else scan.last_seen
        ctx.progress.advance(source.name, "scanned", len(page))
        excluded = ctx.store.excluded_contacts(
            source.name,
            [c.id for c in page],
            found_cooldown=timedelta(days=source.cooldown.found_days),
            not_found_cooldown=timedelta(days=source.cooldown.not_found_days),
        )
        for contact in page:
            planned = plan_contact(
                rules,
                source.name,
                contact,
                selection.wanted,
                excluded=excluded.get(contact.id),
                counts=counts,
            )
            if planned is not None:
                yield Candidate(contact, planned, worst_case_cost(planned.fields_asked))
    scan.complete = True


def plan_contact(
    rules: InputRules,
    source: str,
    contact: Contact,
    wanted: frozenset[str],
    *,
    excluded: str | None,
    counts: SourceCounts,
) -> PlannedContact | None:
    """The contact's request, or None (counted why): in cooldown or in flight (`excluded`),
    nothing missing, or an item the API would refuse. Both lanes decide with this one function."""
    fields = fields_to_ask(contact, wanted)
    reason = excluded if excluded is not None else (None if fields else "nothing_missing")
    if reason is not None:
        counts.skipped[reason] += 1
        return None
    item = build_request(contact, fields, source).wire()
    invalid = rules.problem(item)
    if invalid is not None:  # the API would refuse it (and the whole POST with it)
        counts.invalid_input += 1
        counts.reject(f"invalid_input:{invalid}")
        return None
    return PlannedContact(contact.id, fields, item)


def _dry_run_item(source: str, candidate: Candidate) -> DryRunItem:
    contact = candidate.contact
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p) or contact.id
    return DryRunItem(source, contact.id, name, candidate.planned.fields_asked, candidate.cost)


#: The default source lease TTL (`state.lease_ttl_seconds` sets the one in force).
SOURCE_LEASE_TTL = DEFAULT_LEASE_TTL

__all__ = [
    "SOURCE_LEASE_TTL",
    "Candidate",
    "Scan",
    "SourceStopped",
    "plan_contact",
    "send_planned_batch",
    "source_lease_name",
    "submit_source",
]
