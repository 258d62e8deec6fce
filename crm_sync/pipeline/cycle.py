"""One cycle: credit check, then select/plan/submit per source, then collect and write back.

`crm-sync --once` runs `run_cycle(wait=True)`: it keeps collecting until every batch it knows of
is written or the deadline passes. The daemon runs `run_cycle(wait=False)` on its schedule and
`collect_and_write` on a short interval and whenever a webhook lands: the same code, only the
"when" differs.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from crm_sync import errors
from crm_sync.config import SourceConfig
from crm_sync.exit_codes import EXIT_AUTH, EXIT_CONFIG, EXIT_CREDITS, EXIT_OK, EXIT_PARTIAL
from crm_sync.logs import get_logger
from crm_sync.pipeline.budget import Budget
from crm_sync.pipeline.collect import poll_due
from crm_sync.pipeline.context import Context, owner_is_dead
from crm_sync.pipeline.report import RunReport, SourceCounts, SourceReport
from crm_sync.pipeline.submit import (
    SOURCE_LEASE_TTL,
    SourceStopped,
    source_lease_name,
    submit_source,
)
from crm_sync.pipeline.writeback import write_back_received

IDLE_WAIT_CAP_SECONDS = 5.0
WRITE_PAGE = 20


def run_cycle(
    ctx: Context,
    *,
    dry_run: bool = False,
    deadline_seconds: float | None = None,
    wait: bool = True,
) -> RunReport:
    """Run every stage once for every enabled source and return the report."""
    started = ctx.clock()
    run_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    deadline = started + timedelta(seconds=deadline_seconds) if deadline_seconds else None
    report = RunReport(run_id=run_id, started_at=started, dry_run=dry_run)
    log = get_logger(run_id=run_id)
    if not dry_run:
        ctx.store.start_run(run_id, ctx.owner)
        _recover(ctx)
    report.balance = ctx.client.credits()
    log.info("run_started", balance=report.balance, sources=len(ctx.config.sources))
    for source in ctx.config.sources:
        if not source.enabled:
            continue
        source_report = SourceReport(source.name, source.connector)
        report.sources.append(source_report)
        _run_source(ctx, source, source_report, report, deadline)
    if not dry_run:
        counts = {s.name: s.counts for s in report.sources}
        collect_until = ctx.clock() + timedelta(seconds=ctx.config.run.collect_deadline_seconds)
        if deadline is not None:
            collect_until = min(collect_until, deadline)
        collect_and_write(ctx, counts, deadline=collect_until, wait=wait)
        report_held(report)
        states = ctx.store.batches_by_state()
        report.pending_batches = states.get("submitted", 0) + states.get("received", 0)
    report.finished_at = ctx.clock()
    report.exit_code = exit_code_for(report)
    if not dry_run:
        ctx.store.finish_run(run_id, _status_name(report.exit_code), report.as_dict())
    log.info("run_finished", exit_code=report.exit_code, pending_batches=report.pending_batches)
    return report


def _run_source(
    ctx: Context,
    source: SourceConfig,
    source_report: SourceReport,
    report: RunReport,
    deadline: datetime | None,
) -> None:
    log = get_logger(source=source.name, run_id=report.run_id)
    min_balance = ctx.config.run.min_balance
    if report.balance is not None and report.balance < min_balance:
        message = f"balance {report.balance} is below min_balance {min_balance}"
        source_report.stop("skipped", message, EXIT_CREDITS)
        log.warning("source_skipped_low_balance", balance=report.balance, min_balance=min_balance)
        return
    lease = source_lease_name(source.name)
    if not report.dry_run and not take_source_lease(ctx, lease):
        source_report.stop("skipped", "another process holds this source's lease", EXIT_OK)
        return
    try:
        if not report.dry_run:
            _recover_source(ctx, source.name, source_report)
        if not fields_ok(ctx, source, source_report):
            return
        budget = source_budget(ctx, source, report.balance or 0)
        cap = ctx.config.run.max_contacts_per_run
        if cap is not None:
            taken = sum(s.counts.submitted for s in report.sources) + len(report.dry_run_items)
            budget.contacts_left = cap - taken
        submit_source(
            ctx,
            source,
            source_report,
            budget,
            run_id=report.run_id,
            dry_run=report.dry_run,
            dry_run_items=report.dry_run_items,
            deadline=deadline,
        )
    except SourceStopped as exc:
        source_report.stop("failed", str(exc), EXIT_PARTIAL)
        log.error("source_stopped", reason=str(exc))
    except errors.AuthError as exc:
        source_report.stop("failed", f"authentication refused: {exc}", EXIT_AUTH)
        log.error("source_auth_failed", error=str(exc))
        if isinstance(exc, errors.EnrichmentAuthError):
            raise
    except (errors.QuotaExhausted, errors.RetriableError, errors.FatalError) as exc:
        source_report.stop("failed", str(exc), EXIT_PARTIAL)
        log.error("source_failed", error=str(exc))
    finally:
        if not report.dry_run:
            ctx.store.release_lease(lease, ctx.owner)


def fields_ok(ctx: Context, source: SourceConfig, source_report: SourceReport) -> bool:
    """Every mapped field exists and is writable, checked before any credit is spent.

    A missing field would make every paid result unwritable: the source stops (exit 2).
    """
    problems = ctx.connectors[source.name].check_fields()
    if problems:
        message = "mapped CRM fields are wrong, nothing sent: " + "; ".join(problems)
        source_report.stop("failed", message, EXIT_CONFIG)
        get_logger(source=source.name).error("source_fields_refused", problems=problems)
    return not problems


def report_held(report: RunReport) -> None:
    """A source whose results were held by a field refusal fails the run with exit 2."""
    for source in report.sources:
        held = source.counts.held_for_config
        if held and source.exit_code < EXIT_CONFIG:
            source.stop(
                "failed",
                f"{held} paid results held unwritten: the CRM refused a mapped field; "
                "fix `fields`, then run `crm-sync replay`",
                EXIT_CONFIG,
            )


def take_source_lease(ctx: Context, name: str) -> bool:
    """Take the lease, or take it over from a holder on this host whose process is gone."""
    if ctx.store.acquire_lease(name, ctx.owner, SOURCE_LEASE_TTL):
        return True
    holder = ctx.store.lease_holder(name)
    if holder and owner_is_dead(holder):
        return ctx.store.steal_lease(name, holder, ctx.owner, SOURCE_LEASE_TTL)
    return False


def _recover(ctx: Context) -> None:
    """Free what dead processes on this host held, and release long-standing in_doubt batches."""
    for owner in ctx.store.claim_owners():
        if owner != ctx.owner and owner_is_dead(owner):
            ctx.store.release_claims(owner)
    hours = ctx.config.state.in_doubt_release_hours
    for batch_id in ctx.store.release_in_doubt(timedelta(hours=hours)):
        get_logger(batch=batch_id).warning("in_doubt_released", after_hours=hours)


def _recover_source(ctx: Context, source: str, source_report: SourceReport) -> None:
    """With the lease held, what an earlier holder left half-done is ours to settle.

    `sending`: the POST may have gone out, so the batch becomes in_doubt (never resent).
    `planned`: nothing was sent, so the contacts are freed and planned again in this run.
    """
    stale = ctx.store.recover_stale_sending(source=source, exclude_owner=ctx.owner)
    source_report.counts.in_doubt += _contacts_in(ctx, stale)
    for batch in ctx.store.planned_batches(source):
        if batch.owner != ctx.owner and ctx.store.release_planned(batch.id):
            get_logger(source=source, batch=batch.id).warning("unsent_batch_released")


def _contacts_in(ctx: Context, batch_ids: list[str]) -> int:
    total = 0
    for batch_id in batch_ids:
        batch = ctx.store.get_batch(batch_id)
        total += len(batch.contacts) if batch else 0
        get_logger(batch=batch_id).error("batch_in_doubt", reason="found in sending after a crash")
    return total


def source_budget(ctx: Context, source: SourceConfig, balance: int) -> Budget:
    """Ceilings: balance minus reserve and in-flight reservations; per-run; per-day."""
    now = ctx.clock()
    run = ctx.config.run
    ceilings = {"balance": balance - run.reserve - ctx.store.credits_in_flight()}
    if source.budget.per_run is not None:
        ceilings["per_run"] = source.budget.per_run
    if source.budget.per_day is not None:
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        ceilings["per_day"] = source.budget.per_day - ctx.store.credits_committed(
            source.name, day_start
        )
    return Budget(ceilings)


def collect_and_write(
    ctx: Context,
    counts: dict[str, SourceCounts],
    *,
    deadline: datetime | None = None,
    wait: bool = False,
) -> None:
    """Poll what is due and write what is received; with `wait`, until nothing is pending."""
    while True:
        _write_all_received(ctx, counts)
        poll_due(ctx)
        _write_all_received(ctx, counts)
        if not wait or ctx.stopping.is_set():
            return
        pending = ctx.store.submitted_batches()
        if not pending:
            return
        now = ctx.clock()
        if deadline is not None and now >= deadline:
            return
        next_due = min((b.next_poll_at for b in pending if b.next_poll_at), default=now)
        pause = (next_due - now).total_seconds()
        if deadline is not None:
            pause = min(pause, (deadline - now).total_seconds())
        ctx.sleep(min(max(pause, 0.05), IDLE_WAIT_CAP_SECONDS))


def _write_all_received(ctx: Context, counts: dict[str, SourceCounts]) -> None:
    """Write received batches a page at a time until a page comes back short.

    One page alone (the claim limit) left the rest `received` when a poll stored more results
    than that: `--once` then finished with paid results not written back.
    """
    while write_back_received(ctx, counts, limit=WRITE_PAGE) == WRITE_PAGE:
        if ctx.stopping.is_set():
            return


def exit_code_for(report: RunReport) -> int:
    """The most severe source: 4 no credits, 3 credentials refused, 1 partly failed or in_doubt."""
    codes = [s.exit_code for s in report.sources]
    codes += [EXIT_PARTIAL for s in report.sources if s.counts.in_doubt]
    return max(codes, default=EXIT_OK)


def _status_name(code: int) -> str:
    return {0: "ok", 1: "partial", 3: "auth_refused", 4: "no_credits"}.get(code, "failed")
