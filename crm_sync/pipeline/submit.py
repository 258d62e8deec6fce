"""Select, plan and submit for one source: the only stages that spend money.

The order of writes is what makes a crash harmless:
    plan_batch (contacts claimed, credits reserved)  -> failpoint after_plan
    mark_sending                                     -> failpoint after_mark_sending
    POST /contact/enrich/bulk                        -> failpoint after_submit
    mark_submitted(enrichment_id)                    -> failpoint after_mark_submitted
A process that dies between mark_sending and mark_submitted leaves a `sending` batch; the next
holder of the source lease turns it into `in_doubt`, which is never resent automatically.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from connectors.base import Contact, Selection
from crm_sync import errors
from crm_sync.config import SourceConfig
from crm_sync.enrichment.models import BulkRequest, ContactRequest
from crm_sync.failpoints import failpoint
from crm_sync.logs import get_logger
from crm_sync.pipeline.budget import Budget
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.report import DryRunItem, SourceReport
from crm_sync.policies import build_request, fields_to_ask, identity_problem, worst_case_cost
from crm_sync.store.records import Batch, PlannedContact


class SourceStopped(Exception):
    """Stop submitting for this source (the message says why); other sources go on."""


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


SOURCE_LEASE_TTL = timedelta(minutes=10)


def source_lease_name(source: str) -> str:
    return f"source:{source}"


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
    log = get_logger(source=source.name, run_id=run_id)
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
            _submit_batch(ctx, source, batch, report, run_id=run_id, log=log)
            last_taken, batch = batch[-1].contact.id, []
    if batch and not dry_run:
        _submit_batch(ctx, source, batch, report, run_id=run_id, log=log)
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
    limit = source.max_scan_per_run
    for page in ctx.connectors[source.name].iter_candidates(selection):
        if ctx.stopping.is_set() or (deadline is not None and ctx.clock() >= deadline):
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
            reason = excluded.get(contact.id) or identity_problem(contact)
            fields = fields_to_ask(contact, selection.wanted)
            if reason is None and not fields:
                reason = "nothing_missing"
            if reason is not None:
                counts.skipped[reason] += 1
                continue
            request = build_request(contact, fields, source.name)
            yield Candidate(
                contact,
                PlannedContact(contact.id, fields, request.wire()),
                worst_case_cost(fields),
            )
    scan.complete = True


def _dry_run_item(source: str, candidate: Candidate) -> DryRunItem:
    contact = candidate.contact
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p) or contact.id
    return DryRunItem(source, contact.id, name, candidate.planned.fields_asked, candidate.cost)


def _submit_batch(
    ctx: Context,
    source: SourceConfig,
    candidates: list[Candidate],
    report: SourceReport,
    *,
    run_id: str,
    log: object,
) -> None:
    store = ctx.store
    # Renew before every batch: a replica that lost the lease (paused too long) must stop here.
    if not store.acquire_lease(source_lease_name(source.name), ctx.owner, SOURCE_LEASE_TTL):
        raise SourceStopped("lost this source's lease to another process; stopping submission")
    now = ctx.clock()
    # The provider's dashboard shows this name: the batch id finds the batch when in doubt.
    name = f"crm-sync {source.name} {now:%Y-%m-%d %H:%M} batch {{batch_id}} ({{contacts}} contacts)"
    batch = store.plan_batch(
        source=source.name,
        run_id=run_id,
        owner=ctx.owner,
        name=name,
        contacts=[c.planned for c in candidates],
        reserved_credits_for=lambda planned: sum(worst_case_cost(p.fields_asked) for p in planned),
    )
    if batch is None:  # another process claimed them all between select and plan
        report.counts.skipped["in_flight"] += len(candidates)
        return
    failpoint("after_plan")
    send_planned_batch(ctx, source, batch, report, run_id=run_id, name=name, now=now)


def send_planned_batch(
    ctx: Context,
    source: SourceConfig,
    batch: Batch,
    report: SourceReport,
    *,
    run_id: str,
    name: str,
    now: datetime,
) -> None:
    """planned -> sending -> POST -> submitted: the one way any lane sends a batch."""
    store = ctx.store
    if not store.mark_sending(batch.id, ctx.owner):
        return
    failpoint("after_mark_sending")
    request = BulkRequest(
        name=batch.name,
        webhook_url=ctx.webhook_url,
        datas=[ContactRequest.model_validate(c.request) for c in batch.contacts],
    )
    enrichment_id = _post(ctx, batch.id, request, report, len(batch.contacts))
    failpoint("after_submit")
    store.mark_submitted(batch.id, enrichment_id, next_poll_at=first_poll_at(ctx, now))
    failpoint("after_mark_submitted")
    report.counts.submitted += len(batch.contacts)
    ctx.progress.advance(source.name, "submitted", len(batch.contacts))
    get_logger(source=source.name, run_id=run_id).info(
        "batch_submitted", batch=batch.id, enrichment_id=enrichment_id, contacts=len(batch.contacts)
    )


def _post(ctx: Context, batch_id: str, request: BulkRequest, report: SourceReport, n: int) -> str:
    """POST the batch; every failure leaves the batch in a state that cannot cause a resend."""
    store = ctx.store
    try:
        return ctx.client.submit(request)
    except errors.OutcomeUnknown as exc:
        store.mark_in_doubt(batch_id, str(exc))
        report.counts.in_doubt += n
        raise SourceStopped(
            f"submission outcome unknown, batch {batch_id} is in_doubt: {exc}"
        ) from None
    except errors.ValidationError as exc:
        store.mark_failed(batch_id, f"refused by the API: {exc.code or exc}")
        report.counts.skipped["api_rejected"] += n
        raise SourceStopped(f"the enrichment API refused a batch ({exc.code or exc})") from None
    except (errors.RetriableError, errors.FatalError) as exc:
        store.mark_failed(batch_id, f"not sent: {exc}")
        raise SourceStopped(f"enrichment API unavailable: {exc}") from None
    except (errors.AuthError, errors.InsufficientCredits) as exc:
        store.mark_failed(batch_id, f"not sent: {type(exc).__name__}")
        raise


def first_poll_at(ctx: Context, now: datetime) -> datetime:
    """With a webhook, poll only as a fallback; without, poll soon."""
    if ctx.webhook_url:
        return now + timedelta(seconds=ctx.config.webhook.poll_after_seconds)
    return now + timedelta(seconds=ctx.config.run.poll_initial_seconds)
