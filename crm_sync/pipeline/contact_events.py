"""Per-contact results (v2 `contact_finished` webhooks): stored and written as they arrive.

An event names its contact by `custom` (source, crm_id) and, in one reading of the docs, its
enrichment id. Its item is stored against the batch holding that contact, then written back
alone (fill-empty, re-read first, like any batch). When every contact of a submitted batch is
settled this way, the batch completes from the stored items without waiting for the batch
webhook; when the batch webhook or a poll comes first, only the contacts not yet settled are
written from it.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from crm_sync.enrichment.models import EnrichmentResult, EnrichmentStatus, ResultItem
from crm_sync.logs import get_logger
from crm_sync.pipeline.collect import accept_result
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.lease import claim_lease
from crm_sync.pipeline.report import SourceCounts
from crm_sync.pipeline.writeback import write_contacts
from crm_sync.store.contact_results import ContactResult
from crm_sync.store.states import AWAITING_RESULT_STATES, StoreOutcome

SOURCE_KIND = "contact_events"


def _batch_for(ctx: Context, enrichment_id: str | None, source: str, record_id: str) -> str | None:
    if enrichment_id:
        batch = ctx.store.batch_by_enrichment_id(enrichment_id)
        if batch is not None:
            return batch.id
    row = ctx.store.ledger_row(source, record_id)
    return row.in_flight_batch_id if row is not None else None


def accept_contact_event(
    ctx: Context, enrichment_id: str | None, items: list[dict[str, Any]]
) -> str:
    """Store each contact's item: "stored" (any new), "duplicate", or "unknown"."""
    outcomes: list[str] = []
    for raw in items:
        try:
            item = ResultItem.model_validate(raw)
        except PydanticValidationError:
            get_logger(enrichment_id=enrichment_id).warning("contact_event_item_malformed")
            outcomes.append(
                StoreOutcome.UNKNOWN
            )  # left to the batch result, which settles every contact
            continue
        source, record_id = item.custom.get("source"), item.custom.get("crm_id")
        batch_id = _batch_for(ctx, enrichment_id, source or "", record_id or "")
        if not record_id or batch_id is None:
            outcomes.append(StoreOutcome.UNKNOWN)
            continue
        text = json.dumps(item.model_dump(mode="json", exclude_none=True))
        outcomes.append(ctx.store.contact_results.store(batch_id, record_id, text))
    for outcome in (StoreOutcome.STORED, StoreOutcome.DUPLICATE):
        if outcome in outcomes:
            return outcome
    return StoreOutcome.UNKNOWN


def write_back_contact_results(
    ctx: Context, counts_for: dict[str, SourceCounts], *, limit: int = 100
) -> int:
    """Write every stored per-contact result this process can claim; complete settled batches."""
    pending = ctx.store.contact_results.claim_pending(
        owner=ctx.owner, limit=limit, lease=claim_lease(ctx)
    )
    by_batch: dict[str, list[ContactResult]] = defaultdict(list)
    for found in pending:
        by_batch[found.batch_id].append(found)
    for batch_id, results in by_batch.items():
        batch = ctx.store.get_batch(batch_id)
        if batch is None or batch.state not in AWAITING_RESULT_STATES:
            continue
        wanted = {r.record_id for r in results}
        contacts = tuple(c for c in batch.contacts if c.record_id in wanted)
        items = [ResultItem.model_validate_json(r.raw_item) for r in results]
        result = EnrichmentResult(status=EnrichmentStatus.FINISHED, datas=items)
        counts = counts_for.setdefault(batch.source, SourceCounts())
        write_contacts(ctx, dataclasses.replace(batch, contacts=contacts), result, counts)
        ctx.store.contact_results.mark_written(batch_id, sorted(wanted))
        ctx.progress.advance(batch.source, "written back", len(contacts))
    complete_settled(ctx)
    return len(pending)


def complete_settled(ctx: Context) -> int:
    """Store a FINISHED result, built from its items, for each batch whose contacts are settled."""
    done = 0
    for batch_id in ctx.store.contact_results.settled_batches():
        batch = ctx.store.get_batch(batch_id)
        if batch is None or not batch.enrichment_id:
            continue
        body = {
            "id": batch.enrichment_id,
            "name": batch.name,
            "status": EnrichmentStatus.FINISHED.value,
            "datas": [json.loads(item) for item in ctx.store.contact_results.items(batch_id)],
        }
        outcome = accept_result(ctx, json.dumps(body), source_kind=SOURCE_KIND)
        done += outcome == StoreOutcome.STORED
        get_logger(source=batch.source, batch=batch.id).info(
            "batch_settled_by_contact_events", outcome=outcome
        )
    return done


__all__ = ["accept_contact_event", "complete_settled", "write_back_contact_results"]
