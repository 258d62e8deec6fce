"""Write back: turn a stored result into CRM writes, filling empty fields only.

The records are re-read right before writing, so a value a person typed after we submitted is
kept. A result whose names or domain are not the record's is not written (`identity_mismatch`),
nor is an implausible value (`invalid_value`). Every contact's outcome goes to the ledger, which
frees it from `in flight`. Running this twice on the same batch (after a crash) writes nothing
new: the second read finds our own values.

Every contact of a batch is settled: an item that could not be read gives `malformed` (with
its reason), and a FINISHED result without an item for the contact gives `not_returned`; both
take the not-found cooldown, since the API may have charged for them. An item whose `custom`
names no contact of the batch is logged and changes nothing.

A write the CRM refuses for the whole field (it does not exist, it is read-only) is a config
mistake, not the contact's: those contacts stay in flight and the batch stays `received`
("held"), so `crm-sync replay` (or a later run) writes them once the config is fixed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from crm_sync.fields import EMAIL, PHONE
from crm_sync.logs import get_logger
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.lease import claim_lease
from crm_sync.pipeline.report import SourceCounts
from crm_sync.rules.identity import Mismatch, identity_mismatch
from crm_sync.rules.policies import FieldDecision, decide
from crm_sync.store.records import (
    OUTCOME_MALFORMED,
    OUTCOME_NOT_RETURNED,
    OUTCOME_RETRY,
    Batch,
    BatchContact,
    ContactOutcome,
)

OUTCOME_INVALID_VALUE = "invalid_value"
OUTCOME_IDENTITY_MISMATCH = "identity_mismatch"


@dataclass
class WritePlan:
    """Per contact of a batch: its outcome, and the field values to write."""

    outcomes: dict[str, ContactOutcome] = field(default_factory=dict)
    updates: list[FieldUpdate] = field(default_factory=list)
    decisions: dict[str, FieldDecision] = field(default_factory=dict)
    mismatches: dict[str, Mismatch] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)  # record id -> the CRM's field refusal


def write_back_received(
    ctx: Context, counts_for: dict[str, SourceCounts], *, limit: int = 20
) -> int:
    """Write every received batch this process can claim; returns how many were claimed."""
    done = 0
    for batch in ctx.store.claim_received(owner=ctx.owner, limit=limit, lease=claim_lease(ctx)):
        counts = counts_for.setdefault(batch.source, SourceCounts())
        with structlog.contextvars.bound_contextvars(source=batch.source, batch=batch.id):
            write_back_batch(ctx, batch, counts)
        done += 1
    return done


def write_back_batch(ctx: Context, batch: Batch, counts: SourceCounts) -> bool:
    """Decide, write and record one claimed batch; False when it is held (field refused)."""
    log = get_logger(source=batch.source, batch=batch.id)
    result = EnrichmentResult.model_validate_json(batch.raw_result or "{}")
    plan = write_contacts(ctx, batch, result, counts)
    if plan.held:
        reason = next(iter(plan.held.values()))
        ctx.store.hold_batch(batch.id, owner=ctx.owner, reason=reason)
        log.error("batch_held_field_refused", contacts=len(plan.held), reason=reason)
        return False
    ctx.store.mark_written(batch.id, owner=ctx.owner)
    counts.credits_spent += batch.credits_spent or 0
    ctx.progress.advance(batch.source, "written back", len(batch.contacts))
    log.info("batch_written", contacts=len(batch.contacts), updates=len(plan.updates))
    return True


def write_contacts(
    ctx: Context, batch: Batch, result: EnrichmentResult, counts: SourceCounts
) -> WritePlan:
    """Decide, write and record the batch's contacts not settled yet; the plan carried out.

    Contacts already settled (by a v2 per-contact webhook, or before a hold) keep their
    outcome; contacts whose field the CRM refused (`plan.held`) are left unsettled, in flight.
    """
    plan = plan_contacts(ctx, batch, result)
    _carry_out(ctx, batch, plan, counts)
    settled = [o for rid, o in plan.outcomes.items() if rid not in plan.held]
    ctx.store.record_outcomes(batch.id, settled)
    return plan


def rewrite_rejected(
    ctx: Context, batch: Batch, record_ids: frozenset[str], counts: SourceCounts
) -> WritePlan:
    """Replay: decide and write again contacts of a written batch that the CRM rejected.

    Same re-read, identity, value and fill-empty rules; the new outcome replaces `rejected`
    (a field refused again leaves it as it was).
    """
    result = EnrichmentResult.model_validate_json(batch.raw_result or "{}")
    contacts = [c for c in batch.contacts if c.record_id in record_ids]
    plan = plan_contacts(ctx, batch, result, contacts=contacts)
    _carry_out(ctx, batch, plan, counts)
    settled = [o for rid, o in plan.outcomes.items() if rid not in plan.held]
    ctx.store.record_replayed(batch.id, batch.source, settled)
    return plan


def _carry_out(ctx: Context, batch: Batch, plan: WritePlan, counts: SourceCounts) -> None:
    """Write the plan's updates, mark what was written, and count everything."""
    written_ids = _write(ctx.connectors[batch.source], plan, counts)
    failpoint("after_crm_write")
    for record_id in written_ids:
        pending = plan.outcomes[record_id]
        plan.outcomes[record_id] = ContactOutcome(
            record_id, "written", dict(pending.values_written), True, pending.detail
        )
    _count(plan, counts)


def plan_contacts(
    ctx: Context,
    batch: Batch,
    result: EnrichmentResult,
    *,
    contacts: Sequence[BatchContact] | None = None,
) -> WritePlan:
    """What writing `contacts` (default: the unsettled ones) now would do (re-read, identity,
    values, fill-empty), without writing: write-back and `replay --dry-run` both start here."""
    source = ctx.source_config(batch.source)
    if contacts is None:
        contacts = [c for c in batch.contacts if c.outcome is None]
    items = _items_by_record(result, batch, get_logger(source=batch.source, batch=batch.id))
    ids = [c.record_id for c in contacts]
    # any number of ids: the connector reads them in its own batch size
    current = ctx.connectors[batch.source].read(ids) if ids else {}
    return _plan(contacts, items, current, result.status, source)


def preview_batch(
    ctx: Context, batch: Batch, record_ids: frozenset[str] | None = None
) -> WritePlan:
    """`plan_contacts` for a stored batch result: its unsettled contacts, or `record_ids`."""
    result = EnrichmentResult.model_validate_json(batch.raw_result or "{}")
    if record_ids is None:
        return plan_contacts(ctx, batch, result)
    contacts = [c for c in batch.contacts if c.record_id in record_ids]
    return plan_contacts(ctx, batch, result, contacts=contacts)


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


def _plan(
    contacts: Sequence[BatchContact],
    items: dict[str, ResultItem | MalformedItem],
    current: dict[str, Contact],
    status: EnrichmentStatus,
    source: SourceConfig,
) -> WritePlan:
    plan = WritePlan()
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
        mismatch = identity_mismatch(record, item.contact) if has_data else None
        if mismatch is not None:
            plan.mismatches[rid] = mismatch
            plan.outcomes[rid] = ContactOutcome(
                rid, OUTCOME_IDENTITY_MISMATCH, {}, True, mismatch.message
            )
            continue
        decision = decide(
            record,
            item.contact,
            list(contact.fields_asked),
            accepted_email_statuses=source.accepted_email_statuses,
            overwrite=source.overwrite,
        )
        plan.decisions[rid] = decision
        outcome_name, why = _outcome(decision)
        plan.outcomes[rid] = ContactOutcome(
            rid, outcome_name, dict(decision.values), decision.found_anything, why
        )
        if decision.values:
            plan.updates.append(FieldUpdate(rid, dict(decision.values)))
    return plan


def _has_data(item: ResultItem) -> bool:
    c = item.contact
    return bool(c.most_probable_email or c.most_probable_phone or c.phones or c.emails)


def _outcome(decision: FieldDecision) -> tuple[str, str | None]:
    """The contact's outcome name, and its detail (why values were refused) if any."""
    why = "; ".join(f"{name}: {r.message}" for name, r in sorted(decision.invalid.items()))
    if decision.values:
        return "pending_write", why or None
    if decision.invalid:
        return OUTCOME_INVALID_VALUE, why
    if decision.kept_existing:
        return "kept_existing", None
    if decision.not_accepted:
        return "not_accepted", None
    return "not_found", None


def _write(connector: Connector, plan: WritePlan, counts: SourceCounts) -> list[str]:
    """Write every update (the connector splits them into its own batches); count per field;
    return ids written. Outcomes are recorded once all are written, so no progress is kept per
    connector batch: a crash before `record_outcomes` rewrites, and the re-read finds our values."""
    written: list[str] = []
    if not plan.updates:
        return written
    for update, outcome in zip(plan.updates, connector.write(plan.updates), strict=True):
        if outcome.status == WriteStatus.WRITTEN:
            written.append(update.record_id)
            counts.emails_written += EMAIL in update.values
            counts.phones_written += PHONE in update.values
        elif outcome.status == WriteStatus.FIELD_REFUSED:
            plan.held[update.record_id] = outcome.reason or "field refused"
        else:
            counts.rejected += 1
            counts.reject(f"crm:{reason_code(outcome.reason)}")
            get_logger().warning("write_refused", record=update.record_id, reason=outcome.reason)
            plan.outcomes[update.record_id] = ContactOutcome(
                update.record_id, "rejected", {}, True, outcome.reason or "rejected"
            )
    return written


def _count(plan: WritePlan, counts: SourceCounts) -> None:
    """Add what the plan decided to the run's counts, refusals under their reason code."""
    for decision in plan.decisions.values():
        counts.kept_existing += len(decision.kept_existing)
        counts.not_accepted += len(decision.not_accepted)
        counts.invalid_value += len(decision.invalid)
        for refusal in decision.invalid.values():
            counts.reject(f"invalid_value:{refusal.code}")
        if not decision.found_anything:
            counts.not_found += 1
    for mismatch in plan.mismatches.values():
        counts.identity_mismatch += 1
        counts.reject(f"identity_mismatch:{mismatch.code}")
    for reason in plan.held.values():
        counts.held_for_config += 1
        counts.reject(f"crm_field:{reason_code(reason)}")
    for contact_outcome in plan.outcomes.values():
        if contact_outcome.outcome == OUTCOME_RETRY:
            counts.skipped["not_processed_by_api"] += 1
        counts.malformed += contact_outcome.outcome == OUTCOME_MALFORMED
        counts.not_returned += contact_outcome.outcome == OUTCOME_NOT_RETURNED


_INNER_ERROR = re.compile(r'"error"\s*:\s*"([A-Z][A-Z_]+)"')
_HEAD_CODE = re.compile(r"\s*([A-Z][A-Z0-9_]{2,})\b")


def reason_code(reason: str) -> str:
    """A CRM's refusal as a short code for counting: `CONFLICT`, `VALIDATION_ERROR/INVALID_EMAIL`.

    The reason's own words often quote ids or values; counts need the kind, not the instance.
    """
    head = _HEAD_CODE.match(reason)
    inner = _INNER_ERROR.search(reason)
    if head is None:
        words = re.findall(r"[a-z]+", reason.lower())[:4]
        return "_".join(words) or "unknown"
    return f"{head.group(1)}/{inner.group(1)}" if inner else head.group(1)
