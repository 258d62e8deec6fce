"""Reading rows into records: batches (with their contacts), ledger rows and runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, select

from crm_sync.store.records import Batch, BatchContact, LedgerRow, RunRow, WebhookEvent
from crm_sync.store.schema import batch_contacts, batches, json_loads, ledger, webhook_events
from crm_sync.store.states import BatchState


def batch_from_row(row: Row[Any], contacts: tuple[BatchContact, ...] = ()) -> Batch:
    """A Batch from a `batches` row."""
    m = row._mapping
    return Batch(
        id=m["id"],
        source=m["source"],
        state=BatchState(m["state"]),
        name=m["name"],
        run_id=m["run_id"],
        enrichment_id=m["enrichment_id"],
        reserved_credits=m["reserved_credits"],
        credits_spent=m["credits_spent"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        state_changed_at=m["state_changed_at"],
        submitted_at=m["submitted_at"],
        received_at=m["received_at"],
        written_at=m["written_at"],
        next_poll_at=m["next_poll_at"],
        poll_attempts=m["poll_attempts"],
        result_status=m["result_status"],
        raw_result=m["raw_result"],
        result_source=m["result_source"],
        error=m["error"],
        owner=m["owner"],
        claim_owner=m["claim_owner"],
        claim_until=m["claim_until"],
        contacts=contacts,
        read_failures=m["read_failures"] or 0,
    )


def load_contacts(
    conn: Connection, batch_ids: Sequence[str]
) -> dict[str, tuple[BatchContact, ...]]:
    """The contacts of each batch, in record id order."""
    found: dict[str, list[BatchContact]] = {batch_id: [] for batch_id in batch_ids}
    if not batch_ids:
        return {}
    query = (
        select(batch_contacts)
        .where(batch_contacts.c.batch_id.in_(list(batch_ids)))
        .order_by(batch_contacts.c.batch_id, batch_contacts.c.record_id)
    )
    for row in conn.execute(query):
        m = row._mapping
        found[m["batch_id"]].append(
            BatchContact(
                record_id=m["record_id"],
                fields_asked=tuple(json_loads(m["fields_asked"], [])),
                request=json_loads(m["request"], {}),
                outcome=m["outcome"],
                values_written=json_loads(m["values_written"], {}),
                detail=m["outcome_detail"],
            )
        )
    return {batch_id: tuple(contacts) for batch_id, contacts in found.items()}


def load_batches(conn: Connection, where: Any, *, with_contacts: bool = True) -> list[Batch]:
    """Batches matching `where`, oldest first, with their contacts when asked."""
    rows = list(conn.execute(select(batches).where(where).order_by(batches.c.created_at)))
    contacts = load_contacts(conn, [r._mapping["id"] for r in rows]) if with_contacts else {}
    return [batch_from_row(r, contacts.get(r._mapping["id"], ())) for r in rows]


def ledger_from_row(row: Row[Any]) -> LedgerRow:
    """A LedgerRow from a ledger row."""
    m = row._mapping
    return LedgerRow(
        source=m["source"],
        record_id=m["record_id"],
        in_flight_batch_id=m["in_flight_batch_id"],
        last_attempt_at=m["last_attempt_at"],
        fields_asked=tuple(json_loads(m["fields_asked"], [])),
        outcome=m["outcome"],
        values_written=json_loads(m["values_written"], {}),
        found=bool(m["found"]),
        attempts=m["attempts"],
        updated_at=m["updated_at"],
        detail=m["outcome_detail"],
    )


def load_ledger_row(conn: Connection, source: str, record_id: str) -> LedgerRow | None:
    """The ledger row of one record, if it was ever planned."""
    row = conn.execute(
        select(ledger).where(ledger.c.source == source, ledger.c.record_id == record_id)
    ).first()
    return ledger_from_row(row) if row is not None else None


def run_from_row(row: Row[Any]) -> RunRow:
    """A RunRow from a `runs` row."""
    m = row._mapping
    return RunRow(
        id=m["id"],
        owner=m["owner"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        status=m["status"],
        report=json_loads(m["report"], None),
    )


def load_webhook_events(conn: Connection, enrichment_id: str) -> list[WebhookEvent]:
    """Webhook deliveries for one enrichment id, oldest first."""
    query = (
        select(webhook_events)
        .where(webhook_events.c.enrichment_id == enrichment_id)
        .order_by(webhook_events.c.received_at, webhook_events.c.id)
    )
    return [WebhookEvent(**dict(row._mapping)) for row in conn.execute(query)]
