"""Write back: turn a stored result into CRM writes, filling empty fields only.

The records are re-read right before writing, so a value a person typed after we submitted is
kept. Every contact's outcome goes to the ledger, which frees it from `in flight`. Running this
twice on the same batch (after a crash) writes nothing new: the second read finds our own values.

Every contact of a batch is settled: an item that could not be read gives `malformed` (with
its reason), and a FINISHED result without an item for the contact gives `not_returned`; both
take the not-found cooldown, since the API may have charged for them. An item whose `custom`
names no contact of the batch is logged and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from connectors.base import Connector, Contact, FieldUpdate, WriteStatus
from crm_sync.config import SourceConfig
from crm_sync.enrichment.models import (
    EnrichmentResult,
    EnrichmentStatus,
    MalformedItem,
    ResultItem,
)
from crm_sync.failpoints import failpoint
from crm_sync.logs import get_logger
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.report import SourceCounts
from crm_sync.policies import FieldDecision, decide
from crm_sync.store.records import (
    OUTCOME_MALFORMED,
    OUTCOME_NOT_RETURNED,
    OUTCOME_RETRY,
    Batch,
    BatchContact,
    ContactOutcome,
)

CLAIM_LEASE = timedelta(minutes=5)


@dataclass
class _Plan:
    outcomes: dict[str, ContactOutcome] = field(default_factory=dict)
    updates: list[FieldUpdate] = field(default_factory=list)
    decisions: dict[str, FieldDecision] = field(default_factory=dict)


def write_back_received(
    ctx: Context, counts_for: dict[str, SourceCounts], *, limit: int = 20
) -> int:
    """Write every received batch this process can claim; returns how many were finished."""
    done = 0
    for batch in ctx.store.claim_received(owner=ctx.owner, limit=limit, lease=CLAIM_LEASE):
        counts = counts_for.setdefault(batch.source, SourceCounts())
        with structlog.contextvars.bound_contextvars(source=batch.source, batch=batch.id):
            write_back_batch(ctx, batch, counts)
        done += 1
    return done


def write_back_batch(ctx: Context, batch: Batch, counts: SourceCounts) -> None:
    """Decide, write and record one batch."""
    log = get_logger(source=batch.source, batch=batch.id)
    result = EnrichmentResult.model_validate_json(batch.raw_result or "{}")
    updates = write_contacts(ctx, batch, result, counts)
    ctx.store.mark_written(batch.id, owner=ctx.owner)
    counts.credits_spent += batch.credits_spent or 0
    ctx.progress.advance(batch.source, "written back", len(batch.contacts))
    log.info("batch_written", contacts=len(batch.contacts), updates=updates)


def write_contacts(
    ctx: Context, batch: Batch, result: EnrichmentResult, counts: SourceCounts
) -> int:
    """Decide, write and record the batch's contacts not settled yet; the number of updates.

    Contacts already settled (by a v2 per-contact webhook) keep their outcome.
    """
    source = ctx.source_config(batch.source)
    connector = ctx.connectors[batch.source]
    contacts = [c for c in batch.contacts if c.outcome is None]
    items = _items_by_record(result, batch, get_logger(source=batch.source, batch=batch.id))
    current = _read_all(connector, [c.record_id for c in contacts])
    plan = _plan(contacts, items, current, result.status, source)
    written_ids = _write(connector, plan, counts)
    failpoint("after_crm_write")
    for record_id in written_ids:
        plan.outcomes[record_id] = ContactOutcome(
            record_id, "written", dict(plan.outcomes[record_id].values_written), True
        )
    ctx.store.record_outcomes(batch.id, list(plan.outcomes.values()))
    return len(plan.updates)


def _items_by_record(
    result: EnrichmentResult, batch: Batch, log: Any
) -> dict[str, ResultItem | MalformedItem]:
    """The result's items by the record they name; a readable item wins over a malformed one.

    Items naming no contact of this batch (another source, an unknown id, no `custom`) are
    logged and dropped: they must not change any record.
    """
    ours = {c.record_id for c in batch.contacts}
    items: dict[str, ResultItem | MalformedItem] = {}
    every: list[ResultItem | MalformedItem] = [*result.malformed, *result.datas]
    for item in every:
        record_id = item.custom.get("crm_id")
        if record_id in ours and item.custom.get("source", batch.source) == batch.source:
            items[record_id] = item
            continue
        log.warning(
            "result_item_unknown_custom",
            crm_id=record_id,
            item_source=item.custom.get("source"),
            malformed=isinstance(item, MalformedItem),
        )
    return items


def _read_all(connector: Connector, ids: list[str]) -> dict[str, Contact]:
    size = connector.limits.read_batch_size
    current: dict[str, Contact] = {}
    for start in range(0, len(ids), size):
        current.update(connector.read(ids[start : start + size]))
    return current


def _plan(
    contacts: Sequence[BatchContact],
    items: dict[str, ResultItem | MalformedItem],
    current: dict[str, Contact],
    status: EnrichmentStatus,
    source: SourceConfig,
) -> _Plan:
    plan = _Plan()
    finished = status == EnrichmentStatus.FINISHED
    for contact in contacts:
        rid = contact.record_id
        item = items.get(rid)
        if isinstance(item, MalformedItem):
            plan.outcomes[rid] = ContactOutcome(rid, OUTCOME_MALFORMED, {}, False, item.reason)
            continue
        if item is None and finished:
            detail = "the finished result has no item for this contact"
            plan.outcomes[rid] = ContactOutcome(rid, OUTCOME_NOT_RETURNED, {}, False, detail)
            continue
        has_data = item is not None and _has_data(item)
        if item is None or (not finished and not has_data):
            # canceled or out of credits: the API did not process it; ask again (free if empty)
            plan.outcomes[rid] = ContactOutcome(rid, OUTCOME_RETRY, {}, False)
            continue
        record = current.get(rid)
        if record is None:
            plan.outcomes[rid] = ContactOutcome(rid, "missing_in_crm", {}, has_data)
            continue
        decision = decide(
            record,
            item.contact,
            list(contact.fields_asked),
            accepted_email_statuses=source.accepted_email_statuses,
            overwrite=source.overwrite,
        )
        plan.decisions[rid] = decision
        plan.outcomes[rid] = ContactOutcome(
            rid, _outcome_name(decision), dict(decision.values), decision.found_anything
        )
        if decision.values:
            plan.updates.append(FieldUpdate(rid, dict(decision.values)))
    return plan


def _has_data(item: ResultItem) -> bool:
    c = item.contact
    return bool(c.most_probable_email or c.most_probable_phone or c.phones or c.emails)


def _outcome_name(decision: FieldDecision) -> str:
    if decision.values:
        return "pending_write"
    if decision.kept_existing:
        return "kept_existing"
    if decision.not_accepted:
        return "not_accepted"
    return "not_found"


def _write(connector: Connector, plan: _Plan, counts: SourceCounts) -> list[str]:
    """Write in the connector's batch size; count per field; return ids written."""
    written: list[str] = []
    size = connector.limits.write_batch_size
    for start in range(0, len(plan.updates), size):
        chunk = plan.updates[start : start + size]
        for update, outcome in zip(chunk, connector.write(chunk), strict=True):
            if outcome.status == WriteStatus.WRITTEN:
                written.append(update.record_id)
                counts.emails_written += "email" in update.values
                counts.phones_written += "phone" in update.values
            else:
                counts.rejected += 1
                get_logger().warning(
                    "write_refused", record=update.record_id, reason=outcome.reason
                )
                plan.outcomes[update.record_id] = ContactOutcome(
                    update.record_id, f"rejected: {outcome.reason}"[:500], {}, True
                )
    for decision in plan.decisions.values():
        counts.kept_existing += len(decision.kept_existing)
        counts.not_accepted += len(decision.not_accepted)
        if not decision.found_anything:
            counts.not_found += 1
    for contact_outcome in plan.outcomes.values():
        if contact_outcome.outcome == OUTCOME_RETRY:
            counts.skipped["not_processed_by_api"] += 1
        counts.malformed += contact_outcome.outcome == OUTCOME_MALFORMED
        counts.not_returned += contact_outcome.outcome == OUTCOME_NOT_RETURNED
    return written
