"""Collect: poll submitted batches that are due, store each terminal result durably.

The webhook receiver stores results through the same `accept_result`, so a result that
arrives both ways (or six times) is stored once: the store's conditional update decides.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from crm_sync import errors
from crm_sync.enrichment.models import CREDITS_PER_FIELD, FIELD_PHONE, EnrichmentResult
from crm_sync.failpoints import failpoint
from crm_sync.logs import get_logger
from crm_sync.pipeline.context import Context

CLAIM_LEASE = timedelta(minutes=2)
CHARGED_EMAIL_STATUSES = frozenset({"DELIVERABLE", "HIGH_PROBABILITY", "CATCH_ALL"})


def credits_of(result: EnrichmentResult) -> int:
    """Credits the API says it charged, or an estimate from what it found when it did not say."""
    if result.credits is not None:
        return result.credits
    total = 0
    for item in result.datas:
        contact = item.contact
        if contact.most_probable_email and (
            (contact.most_probable_email_status or "").upper() in CHARGED_EMAIL_STATUSES
        ):
            total += 1
        if contact.most_probable_personal_email:
            total += 3
        if contact.most_probable_phone or contact.phones:
            total += CREDITS_PER_FIELD[FIELD_PHONE]
    return total


def accept_result(ctx: Context, raw_body: str, *, source_kind: str) -> str:
    """Store a terminal result: "stored", "duplicate", "unknown" or "not_terminal"."""
    result = EnrichmentResult.model_validate_json(raw_body)
    if not result.id:
        raise errors.ValidationError("result has no id", code="missing_id")
    if not result.status.is_terminal:
        return "not_terminal"
    outcome = _store(ctx, result, raw_body, source_kind)
    if outcome == "unknown" and adopt_in_doubt(ctx, result):
        outcome = _store(ctx, result, raw_body, source_kind)
    failpoint("after_result_stored")
    return outcome


def _store(ctx: Context, result: EnrichmentResult, raw_body: str, source_kind: str) -> str:
    assert result.id is not None
    return ctx.store.store_result(
        result.id,
        raw_body,
        result.status.value,
        source_kind=source_kind,
        credits_spent=credits_of(result),
    )


def adopt_in_doubt(ctx: Context, result: EnrichmentResult) -> bool:
    """Recognise a result of an in_doubt batch by its contacts, and record its enrichment id.

    A batch becomes in_doubt when we crashed before saving the id the API returned; when its
    result then arrives by webhook, the contacts in `custom` say exactly which batch it was,
    so the paid result is written instead of lost. Only an exact match of contacts is adopted.
    """
    keys = {(item.custom.get("source"), item.custom.get("crm_id")) for item in result.datas}
    if not result.id or not keys or (None, None) in keys:
        return False
    for batch in ctx.store.in_doubt_batches():
        if {(batch.source, c.record_id) for c in batch.contacts} == keys:
            adopted = ctx.store.mark_submitted(batch.id, result.id, next_poll_at=ctx.clock())
            if adopted:
                get_logger(source=batch.source, batch=batch.id).warning(
                    "in_doubt_batch_adopted", enrichment_id=result.id
                )
            return adopted
    return False


def poll_due(ctx: Context, *, limit: int = 50) -> int:
    """Poll every due batch once; returns how many results were stored."""
    stored = 0
    for batch in ctx.store.claim_due_polls(owner=ctx.owner, limit=limit, lease=CLAIM_LEASE):
        if ctx.stopping.is_set():
            break
        log = get_logger(source=batch.source, batch=batch.id, enrichment_id=batch.enrichment_id)
        assert batch.enrichment_id is not None
        try:
            result = ctx.client.get_result(batch.enrichment_id)
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
            stored += outcome == "stored"
            log.info("result_polled", status=result.status.value, outcome=outcome)
        else:
            delay = poll_delay(ctx, batch.poll_attempts)
            ctx.store.schedule_poll(batch.id, owner=ctx.owner, next_poll_at=_later(ctx, delay))
    return stored


def poll_delay(ctx: Context, attempts: int) -> float:
    """Exponential backoff from poll_initial_seconds, capped at poll_max_seconds."""
    run = ctx.config.run
    return float(min(run.poll_max_seconds, run.poll_initial_seconds * (2 ** min(attempts, 16))))


def _later(ctx: Context, seconds: float) -> datetime:
    return ctx.clock() + timedelta(seconds=seconds)


def _raw(result: EnrichmentResult) -> str:
    body: dict[str, Any] = result.model_dump(mode="json", exclude_none=True)
    return json.dumps(body)
