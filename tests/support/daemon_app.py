"""Helpers shared by the daemon tests and the webhook benchmark: signed payloads, seeded batches.

They use only the store's public API, so a benchmark or a test sees what production sees.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_sync.enrichment.models import BulkRequest, EnrichmentResult
from crm_sync.enrichment.signature import SIGNATURE_HEADER, sign
from crm_sync.store.records import Batch, PlannedContact
from crm_sync.store.store import Store


class IdleClient:
    """An enrichment client for processes that only receive webhooks: every call is refused."""

    stats = None

    def credits(self) -> int:
        raise RuntimeError("IdleClient makes no API calls")

    def submit(self, request: BulkRequest, **hooks: Any) -> str:
        raise RuntimeError("IdleClient makes no API calls")

    def get_result(self, enrichment_id: str, *, force_results: bool = False) -> EnrichmentResult:
        raise RuntimeError("IdleClient makes no API calls")


def seed_submitted_batch(
    store: Store, *, source: str, enrichment_id: str, record_ids: list[str], owner: str = "seed"
) -> Batch:
    """A batch taken through planned -> sending -> submitted, as the submit stage does it."""
    contacts = [
        PlannedContact(rid, ("contact.emails",), {"first_name": "A", "custom": {"crm_id": rid}})
        for rid in record_ids
    ]
    run_id = f"seed-{uuid.uuid4().hex[:8]}"
    batch = store.plan_batch(
        source=source,
        run_id=run_id,
        owner=owner,
        name=f"seed {enrichment_id}",
        contacts=contacts,
        reserved_credits_for=len,
    )
    assert batch is not None, "contacts already in flight"
    assert store.mark_sending(batch.id, owner)
    far = datetime.now(UTC) + timedelta(days=1)
    assert store.mark_submitted(batch.id, enrichment_id, next_poll_at=far)
    return batch


def result_payload(
    enrichment_id: str,
    record_ids: list[str],
    *,
    source: str,
    status: str = "FINISHED",
    names: Mapping[str, tuple[str | None, str | None]] | None = None,
) -> dict[str, Any]:
    """A webhook body like the API's: one found email per contact, its `names` echoed.

    Write-back writes a result only when the names match the record (identity check).
    """
    names = names or {}
    datas = [
        {
            "custom": {"crm_id": rid, "source": source},
            "contact": {
                "firstname": (names.get(rid) or (None, None))[0] or "",
                "lastname": (names.get(rid) or (None, None))[1] or "",
                "most_probable_email": f"{rid}@example.com",
                "most_probable_email_status": "DELIVERABLE",
            },
        }
        for rid in record_ids
    ]
    return {
        "id": enrichment_id,
        "name": f"batch {enrichment_id}",
        "status": status,
        "cost": {"credits": len(record_ids)},
        "datas": datas,
    }


def signed(body: dict[str, Any] | bytes, api_key: str) -> tuple[bytes, dict[str, str]]:
    """Raw bytes and headers of a delivery signed with `api_key`."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, {"Content-Type": "application/json", SIGNATURE_HEADER: sign(raw, api_key)}
