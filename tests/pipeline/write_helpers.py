"""Helpers for write-back tests: a submitted batch whose result a test writes itself.

The result reaches the store the way a webhook does (`accept_result`), and write-back then
runs for real: re-read and write through hubspot-api-client or simple-salesforce over sockets.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from crm_sync.pipeline.collect import accept_result
from crm_sync.pipeline.context import Context
from crm_sync.store.records import PlannedContact

ASKED = ("contact.emails", "contact.phones")


def item(
    record_id: str,
    source: str,
    *,
    first: str | None,
    last: str | None,
    email: str | None = None,
    phone: str | None = None,
    domain: str | None = None,
) -> dict[str, Any]:
    """One result item as the API sends it: names echoed, what was found."""
    contact: dict[str, Any] = {"firstname": first or "", "lastname": last or ""}
    if domain:
        contact["domain"] = domain
    if email:
        contact |= {"most_probable_email": email, "most_probable_email_status": "DELIVERABLE"}
    if phone:
        contact |= {"most_probable_phone": phone, "phones": [{"number": phone, "region": "US"}]}
    return {"custom": {"crm_id": record_id, "source": source}, "contact": contact}


def submit_and_receive(
    ctx: Context, source: str, items: list[dict[str, Any]], *, asked: Mapping[str, tuple[str, ...]]
) -> str:
    """Plan and submit a batch of the items' records, then store `items` as its result."""
    store = ctx.store
    planned = [
        PlannedContact(rid, fields, {"custom": {"crm_id": rid}}) for rid, fields in asked.items()
    ]
    batch = store.plan_batch(
        source=source,
        run_id="test",
        owner=ctx.owner,
        name="test batch",
        contacts=planned,
        reserved_credits_for=len,
    )
    assert batch is not None
    assert store.mark_sending(batch.id, ctx.owner)
    enrichment_id = f"job-{uuid.uuid4().hex[:8]}"
    due = ctx.clock.now() + timedelta(1)
    assert store.mark_submitted(batch.id, enrichment_id, next_poll_at=due)
    body = {"id": enrichment_id, "name": "t", "status": "FINISHED", "datas": items}
    assert accept_result(ctx, json.dumps(body), source_kind="webhook") == "stored"
    return batch.id
