"""Collect: poll submitted batches that are due, store each terminal result durably.

The webhook receiver stores results through the same `accept_result`, so a result that
arrives both ways (or six times) is stored once: the store's conditional update decides.

A result whose enrichment id no batch carries yet (its webhook beat the POST's answer, or its
batch is in_doubt) is kept as received ("kept"), and handed to the batch as soon as one
carries the id: `mark_submitted` attaches it, and `attach_early_results` (every collect pass)
closes the races and tries in_doubt adoption. Kept results nobody claims are visible in
`crm-sync status` and pruned after `state.unmatched_result_days`.

A poll whose result cannot be read at all is retried with backoff `run.max_unreadable_results`
times; then the batch ends `failed` with the reason, its reserved credits released and its
contacts `malformed`. One unreadable item never gets here: it is read per item.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from crm_sync import errors
from crm_sync.enrichment.models import EnrichmentResult
from crm_sync.enrichment.prices import credits_of
from crm_sync.failpoints import failpoint
from crm_sync.logs import get_logger
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.lease import claim_lease
from crm_sync.pipeline.report import SourceCounts
from crm_sync.retry import capped_exponential
from crm_sync.store.records import Batch
from crm_sync.store.states import StoreOutcome


def accept_result(ctx: Context, raw_body: str, *, source_kind: str) -> str:
    """Store a terminal result durably: "stored", "duplicate", "kept" or "not_terminal".

    "kept": no batch carries its id yet; it is kept until one does (never dropped).
    """
    result = EnrichmentResult.model_validate_json(raw_body)
    if not result.id:
        raise errors.ValidationError("result has no id", code="missing_id")
    if not result.status.is_terminal:
        return "not_terminal"
    _log_malformed(result)
    outcome = ctx.store.store_result(
        result.id,
        raw_body,
        result.status.value,
        source_kind=source_kind,
        credits_spent=credits_of(result),
        keep_unknown=True,
    )
    if outcome == StoreOutcome.KEPT and adopt_in_doubt(ctx, result):
        outcome = StoreOutcome.STORED  # the adopting mark_submitted attached the kept result
    failpoint("after_result_stored")
    return outcome


def _log_malformed(result: EnrichmentResult) -> None:
    for item in result.malformed:
        get_logger(enrichment_id=result.id).warning(
            "result_item_malformed",
            index=item.index,
            crm_id=item.custom.get("crm_id"),
            reason=item.reason,
        )


def attach_early_results(ctx: Context) -> int:
    """Hand kept results to their batches, and adopt in_doubt ones; how many were stored.

    Runs on every collect pass: one small read when nothing is kept (the usual case).
    """
    if not ctx.store.kept_result_count():
        return 0
    stored = 0
    for enrichment_id, outcome in ctx.store.attach_known_early_results():
        get_logger(enrichment_id=enrichment_id).info("early_result_attached", outcome=outcome)
        stored += outcome == StoreOutcome.STORED
    in_doubt = ctx.store.in_doubt_batches()
    for early in ctx.store.early_results() if in_doubt else []:
        try:
            result = EnrichmentResult.model_validate_json(early.raw_result)
        except ValueError:
            continue  # it was readable when kept; nothing to adopt with if it is not now
        if adopt_in_doubt(ctx, result, in_doubt):
            stored += 1
            in_doubt = ctx.store.in_doubt_batches()
    return stored


def adopt_in_doubt(
    ctx: Context, result: EnrichmentResult, in_doubt: list[Batch] | None = None
) -> bool:
    """Recognise a result of an in_doubt batch by its contacts, and record its enrichment id.

    A batch becomes in_doubt when we crashed before saving the id the API returned; when its
    result then arrives by webhook (or was kept before the crash), the contacts in `custom`
    say which batch it was, so the paid result is written instead of lost. Every item
    (malformed ones too, by their readable `custom`) must name a distinct contact of that one
    batch, and cover at least half of it (items may be missing): a contact is in flight in
    one batch at a time, so such a match cannot be another batch's.
    """
    customs = [item.custom for item in result.datas] + [m.custom for m in result.malformed]
    keys = {(c.get("source"), c.get("crm_id")) for c in customs}
    if not result.id or not keys or any(None in key for key in keys):
        return False
    for batch in ctx.store.in_doubt_batches() if in_doubt is None else in_doubt:
        contacts = {(batch.source, c.record_id) for c in batch.contacts}
        if keys <= contacts and len(keys) == len(customs) and 2 * len(keys) >= len(contacts):
            adopted = ctx.store.mark_submitted(batch.id, result.id, next_poll_at=ctx.clock.now())
            if adopted:
                get_logger(source=batch.source, batch=batch.id).warning(
                    "in_doubt_batch_adopted", enrichment_id=result.id
                )
            return adopted
    return False


def poll_due(
    ctx: Context,
    counts_for: dict[str, SourceCounts] | None = None,
    *,
    limit: int = 50,
    claim: Callable[..., list[Batch]] | None = None,
) -> int:
    """Poll every due batch once; returns how many results were stored.

    `counts_for` (per source) counts the contacts of a batch given up as unreadable. `claim`
    narrows which due batches (the fresh lane polls its own); the store's `claim_due_polls`
    by default.
    """
    stored = 0
    claim_due = claim or ctx.store.claim_due_polls
    for batch in claim_due(owner=ctx.owner, limit=limit, lease=claim_lease(ctx)):
        if ctx.stopping.is_set():
            break
        log = get_logger(source=batch.source, batch=batch.id, enrichment_id=batch.enrichment_id)
        assert batch.enrichment_id is not None
        try:
            result = ctx.client.get_result(batch.enrichment_id)
        except errors.UnreadableResult as exc:
            if _unreadable(ctx, batch, str(exc), log) and counts_for is not None:
                counts = counts_for.setdefault(batch.source, SourceCounts())
                counts.malformed += len(batch.contacts)
            continue
        except errors.NotFoundError:
            log.error("enrichment_not_found_at_api")
            ctx.store.schedule_poll(batch.id, owner=ctx.owner, next_poll_at=_later(ctx, 3600))
            continue
        except errors.RetriableError as exc:
            log.warning("poll_failed", error=str(exc))
            ctx.store.schedule_poll(batch.id, owner=ctx.owner, next_poll_at=_later(ctx, 60))
            continue
        if result.status.is_terminal:
            outcome = accept_result(ctx, _raw(result), source_kind="poll")
            stored += outcome == StoreOutcome.STORED
            log.info("result_polled", status=result.status.value, outcome=outcome)
        else:
            delay = poll_delay(ctx, batch.poll_attempts)
            ctx.store.schedule_poll(batch.id, owner=ctx.owner, next_poll_at=_later(ctx, delay))
    return stored


def _unreadable(ctx: Context, batch: Batch, reason: str, log: Any) -> bool:
    """Retry an unreadable result with backoff; past the limit, end the batch `failed` (True)."""
    limit = ctx.config.run.max_unreadable_results
    failures = batch.read_failures + 1
    if failures >= limit:
        message = (
            f"the enrichment API's result could not be read after {failures} attempts "
            f"({reason}); the batch is failed and its reserved credits released: check the "
            f"result of enrichment {batch.enrichment_id} in the provider's dashboard"
        )
        if ctx.store.mark_unreadable(batch.id, message[:1000]):
            log.error("result_unreadable_gave_up", attempts=failures, reason=reason)
            return True
        return False
    delay = poll_delay(ctx, failures)
    ctx.store.record_read_failure(
        batch.id, owner=ctx.owner, error=reason[:1000], next_poll_at=_later(ctx, delay)
    )
    log.warning("result_unreadable", attempt=failures, limit=limit, retry_in_s=delay)
    return False


def poll_delay(ctx: Context, attempts: int) -> float:
    """Exponential backoff from poll_initial_seconds, capped at poll_max_seconds."""
    run = ctx.config.run
    return capped_exponential(run.poll_initial_seconds, min(attempts, 16), run.poll_max_seconds)


def _later(ctx: Context, seconds: float) -> datetime:
    return ctx.clock.now() + timedelta(seconds=seconds)


def _raw(result: EnrichmentResult) -> str:
    return json.dumps(result.wire())
