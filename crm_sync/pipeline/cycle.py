"""One cycle: credit check, then select/plan/submit per source, then collect and write back.

`crm-sync --once` runs `run_cycle(wait=True)`: it keeps collecting until every batch it knows of
is written or the deadline passes. The daemon runs `run_cycle(wait=False)` on its schedule and
`collect_and_write` on a short interval and whenever a webhook lands: the same code, only the
"when" differs.
"""

from __future__ import annotations

import uuid
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

import structlog

from crm_sync import errors
from crm_sync.config import SourceConfig
from crm_sync.exit_codes import (
    EXIT_AUTH,
    EXIT_CREDITS,
    EXIT_FAILED,
    EXIT_IN_DOUBT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    RUN_STATUS,
    most_severe,
)
from crm_sync.failures import classify, code_for
from crm_sync.logs import get_logger
from crm_sync.pipeline.budget import Budget
from crm_sync.pipeline.collect import attach_early_results, poll_due
from crm_sync.pipeline.contact_events import write_back_contact_results
from crm_sync.pipeline.context import Context, owner_is_dead
from crm_sync.pipeline.field_guard import fields_ok, report_held
from crm_sync.pipeline.lease import LeaseHeartbeat, lease_ttl, source_lease_name, take_source_lease
from crm_sync.pipeline.report import RunReport, SourceCounts, SourceReport
from crm_sync.pipeline.run_record import RunRecord
from crm_sync.pipeline.shared_budget import running_budget
from crm_sync.pipeline.submit import SourceStopped, submit_source
from crm_sync.pipeline.writeback import write_back_received
from crm_sync.store.states import BatchState

IDLE_WAIT_CAP_SECONDS = 5.0
STALE_OPEN_BATCH_WAITS = 10  # an open batch older than this many max_batch_wait_seconds
WRITE_PAGE = 20


def run_cycle(
    ctx: Context,
    *,
    dry_run: bool = False,
    deadline_seconds: float | None = None,
    wait: bool = True,
) -> RunReport:
    """Run every stage once for every enabled source and return the report.

    The run is recorded `running` and always ends recorded: with its exit code's status, or,
    when an exception ends it (store down, API unreachable at the credit check), with the
    failure's status and reason before the exception goes on to the caller.
    """
    started = ctx.clock.now()
    run_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    report = RunReport(run_id=run_id, started_at=started, dry_run=dry_run)
    with structlog.contextvars.bound_contextvars(run_id=run_id):
        if dry_run:
            _cycle_body(ctx, report, deadline_seconds, wait)
            _settle(report, ctx)
            return report
        with RunRecord(ctx, run_id) as record:
            record.report = report
            try:
                _recover(ctx)
                _cycle_body(ctx, report, deadline_seconds, wait)
                report.in_doubt = in_doubt_summary(ctx.store)
            except Exception as exc:
                failure = classify(exc, state_url=ctx.config.state.url)
                report.reason = failure.message
                with suppress(Exception):  # the alarm outranks the failure, if the store answers
                    report.in_doubt = in_doubt_summary(ctx.store)
                _settle(report, ctx, failure.exit_code)
                _record_end(record, report)
                raise errors.RunFailed(
                    failure.message, exit_code=report.exit_code, report=report
                ) from exc
            _settle(report, ctx)
            _record_end(record, report)
    return report


def _cycle_body(
    ctx: Context, report: RunReport, deadline_seconds: float | None, wait: bool
) -> None:
    deadline = report.started_at + timedelta(seconds=deadline_seconds) if deadline_seconds else None
    report.balance = credit_check(ctx)
    log = get_logger()
    log.info("run_started", balance=report.balance, sources=len(ctx.config.sources))
    for source in ctx.config.sources:
        if not source.enabled:
            continue
        source_report = SourceReport(source.name, source.connector)
        report.sources.append(source_report)
        with structlog.contextvars.bound_contextvars(source=source.name):
            _run_source(ctx, source, source_report, report, deadline)
    if not report.dry_run:
        counts = {s.name: s.counts for s in report.sources}
        collect_until = ctx.clock.now() + timedelta(seconds=ctx.config.run.collect_deadline_seconds)
        if deadline is not None:
            collect_until = min(collect_until, deadline)
        collect_and_write(ctx, counts, deadline=collect_until, wait=wait)
        report_held(report)
        states = ctx.store.batches_by_state()
        report.pending_batches = states.get(BatchState.SUBMITTED, 0) + states.get(
            BatchState.RECEIVED, 0
        )


def credit_check(ctx: Context) -> int:
    """The balance; a failure says which URL and which key to look at."""
    url = ctx.config.enrichment.resolved_base_url
    try:
        return int(ctx.client.credits())
    except errors.NotFoundError:
        raise errors.ConfigError(
            f"enrichment.base_url: {url} answered 404 to the credit check (GET account/credits); "
            "fix enrichment.base_url, or remove it to use the provider's own URL"
        ) from None
    except errors.RetriableError as exc:
        raise errors.RetriableError(
            f"credit check at {url} failed: {exc}", status=exc.status, code=exc.code
        ) from None
    except errors.EnrichmentAuthError as exc:
        raise errors.EnrichmentAuthError(
            f"enrichment.api_key: {exc}", service=exc.service, code=exc.code
        ) from None


def _settle(report: RunReport, ctx: Context, failure_code: int | None = None) -> None:
    """Exit code, end time, and the one `run_summary` log line of the run."""
    report.interrupted = report.interrupted or ctx.stopping.is_set()
    report.finished_at = ctx.clock.now()
    code = exit_code_for(report)
    report.exit_code = code if failure_code is None else most_severe((code, failure_code))
    if not report.reason:
        report.reason = _reason(report)
    log_run_summary(report)


def _record_end(record: RunRecord, report: RunReport) -> None:
    try:
        record.finish(RUN_STATUS.get(report.exit_code, "failed"), report.as_dict())
    except Exception as exc:  # the store itself failed: the run is found abandoned later
        get_logger().warning("run_end_not_recorded", error=type(exc).__name__)


def _reason(report: RunReport) -> str:
    if report.in_doubt:
        return f"{len(report.in_doubt)} batch(es) in_doubt: a person must act"
    failed = [f"{s.name}: {s.message}" for s in report.sources if s.exit_code and s.message]
    if failed:
        return "; ".join(failed)[:500]
    if report.interrupted:
        return "interrupted by SIGTERM/SIGINT"
    return ""


def log_run_summary(report: RunReport) -> None:
    """One line per run with its counts, credits, duration and exit code."""
    totals: dict[str, int] = {}
    for source in report.sources:
        for name, value in source.counts.as_dict().items():
            if isinstance(value, int):
                totals[name] = totals.get(name, 0) + value
    duration = (
        round((report.finished_at - report.started_at).total_seconds(), 3)
        if report.finished_at
        else None
    )
    level = "info" if report.exit_code == EXIT_OK else "warning"
    getattr(get_logger(), level)(
        "run_summary",
        exit_code=report.exit_code,
        status=RUN_STATUS.get(report.exit_code, "failed"),
        duration_seconds=duration,
        credits_spent=totals.get("credits_spent", 0),
        balance=report.balance,
        counts=totals,
        sources={s.name: s.status for s in report.sources},
        in_doubt_batches=len(report.in_doubt),
        pending_batches=report.pending_batches,
        interrupted=report.interrupted,
        dry_run=report.dry_run,
        reason=report.reason or None,
    )


def in_doubt_summary(store: Any) -> list[dict[str, Any]]:
    """Every in_doubt batch: the standing alarm of `--once` and `status`."""
    return [
        {
            "batch": b.id,
            "source": b.source,
            "name": b.name,
            "since": b.state_changed_at.isoformat(),
            "contacts": len(b.contacts),
            "worst_case_credits": b.reserved_credits,
        }
        for b in store.in_doubt_batches()
    ]


def _run_source(
    ctx: Context,
    source: SourceConfig,
    source_report: SourceReport,
    report: RunReport,
    deadline: datetime | None,
) -> None:
    log = get_logger()
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
    heartbeat = LeaseHeartbeat(ctx.store, lease, ctx.owner, lease_ttl(ctx))
    if not report.dry_run:
        heartbeat.__enter__()  # renewed from a thread while this source submits
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
        with running_budget(ctx, source.name, budget) as shared:  # the fresh lane draws too
            submit_source(
                ctx,
                source,
                source_report,
                shared,
                run_id=report.run_id,
                dry_run=report.dry_run,
                dry_run_items=report.dry_run_items,
                deadline=deadline,
            )
    except SourceStopped as exc:
        source_report.stop("failed", str(exc), getattr(exc, "exit_code", EXIT_FAILED))
        log.error("source_stopped", reason=str(exc), exit_code=source_report.exit_code)
    except errors.AuthError as exc:
        source_report.stop("failed", f"authentication refused: {exc}", EXIT_AUTH)
        log.error("source_auth_failed", error=str(exc))
        if isinstance(exc, errors.EnrichmentAuthError):
            raise
    except (errors.ConfigError, errors.FatalError, errors.RetriableError) as exc:
        # A retry fixes only the transient ones; a bad filter or a spent daily quota is 1.
        source_report.stop("failed", str(exc), code_for(exc))
        log.error("source_failed", error=str(exc), exit_code=source_report.exit_code)
    finally:
        if not report.dry_run:
            heartbeat.__exit__(None, None, None)
            ctx.store.release_lease(lease, ctx.owner)


def _recover(ctx: Context) -> None:
    """Free what dead processes on this host held, and release long-standing in_doubt batches."""
    for owner in ctx.store.claim_owners():
        if owner != ctx.owner and owner_is_dead(owner):
            ctx.store.release_claims(owner)
    hours = ctx.config.state.in_doubt_release_hours
    for batch_id in ctx.store.release_in_doubt(timedelta(hours=hours)):
        get_logger(batch=batch_id).warning("in_doubt_released", after_hours=hours)
    days = ctx.config.state.unmatched_result_days
    for enrichment_id in ctx.store.prune_early_results(timedelta(days=days)):
        get_logger(enrichment_id=enrichment_id).warning("kept_result_pruned", after_days=days)


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
    # An open batch (fresh lane) far older than the lane ever keeps one: its daemon is gone.
    stale_after = timedelta(seconds=STALE_OPEN_BATCH_WAITS * ctx.config.run.max_batch_wait_seconds)
    for batch_id in ctx.store.open_batches.give_back_stale(source, stale_after):
        get_logger(source=source, batch=batch_id).warning("stale_open_batch_given_back")


def _contacts_in(ctx: Context, batch_ids: list[str]) -> int:
    total = 0
    for batch_id in batch_ids:
        batch = ctx.store.get_batch(batch_id)
        total += len(batch.contacts) if batch else 0
        get_logger(batch=batch_id).error("batch_in_doubt", reason="found in sending after a crash")
    return total


def source_budget(ctx: Context, source: SourceConfig, balance: int) -> Budget:
    """Ceilings: balance minus reserve and in-flight reservations; per-run; per-day."""
    now = ctx.clock.now()
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
        attach_early_results(ctx)
        _write_all_received(ctx, counts)
        poll_due(ctx, counts)
        _write_all_received(ctx, counts)
        if not wait or ctx.stopping.is_set():
            return
        pending = ctx.store.submitted_batches()
        if not pending:
            return
        now = ctx.clock.now()
        if deadline is not None and now >= deadline:
            return
        next_due = min((b.next_poll_at for b in pending if b.next_poll_at), default=now)
        pause = (next_due - now).total_seconds()
        if deadline is not None:
            pause = min(pause, (deadline - now).total_seconds())
        ctx.clock.sleep(min(max(pause, 0.05), IDLE_WAIT_CAP_SECONDS), ctx.stopping)


def _write_all_received(ctx: Context, counts: dict[str, SourceCounts]) -> None:
    """Write received batches a page at a time until a page comes back short.

    One page alone (the claim limit) left the rest `received` when a poll stored more results
    than that: `--once` then finished with paid results not written back. Per-contact results
    (v2 `contact_finished` events) are written first, a page at a time as well.
    """
    while write_back_contact_results(ctx, counts, limit=WRITE_PAGE) == WRITE_PAGE:
        if ctx.stopping.is_set():
            return
    while write_back_received(ctx, counts, limit=WRITE_PAGE) == WRITE_PAGE:
        if ctx.stopping.is_set():
            return


def exit_code_for(report: RunReport) -> int:
    """The most severe of: each source's code, 6 while any batch is in_doubt, 7 if stopped."""
    codes = [s.exit_code for s in report.sources]
    if report.in_doubt or any(s.counts.in_doubt for s in report.sources):
        codes.append(EXIT_IN_DOUBT)
    if report.interrupted:
        codes.append(EXIT_INTERRUPTED)
    return most_severe(codes)
