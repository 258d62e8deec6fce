"""Batch state transitions: each is one conditional UPDATE that names the state it expects.

A transition reports success only when exactly one row changed, so two processes racing on the
same batch cannot both believe they moved it. Contacts are freed (their ledger claim cleared)
only where they are still in flight for that very batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from crm_sync.store.records import (
    OUTCOME_API_REJECTED,
    OUTCOME_INVALID_INPUT,
    OUTCOME_MALFORMED,
    OUTCOME_NO_RESULT,
    OUTCOME_NOT_SENT,
    OUTCOME_RETRY,
    OUTCOME_SPLIT,
    Batch,
    ContactOutcome,
)
from crm_sync.store.rows import load_batches
from crm_sync.store.schema import batch_contacts, batches, json_dumps, json_loads, ledger
from crm_sync.store.states import BatchState


def transition(
    conn: Connection,
    now: datetime,
    batch_id: str,
    expected: Sequence[BatchState],
    new_state: BatchState,
    *conditions: Any,
    **values: Any,
) -> bool:
    """Move one batch from one of `expected` to `new_state`; True if this call moved it."""
    statement = (
        update(batches)
        .where(batches.c.id == batch_id, batches.c.state.in_(list(expected)), *conditions)
        .values(state=new_state, state_changed_at=now, updated_at=now, **values)
    )
    return conn.execute(statement).rowcount == 1


def free_contacts(
    conn: Connection, now: datetime, batch_id: str, outcome: str, detail: str | None = None
) -> None:
    """Clear the claim of the contacts still in flight for `batch_id`, recording `outcome`.

    A batch that was never sent (`not_sent`) gives each contact back its previous attempt time,
    so the cooldown is not started by an ask that never happened.
    """
    values: dict[str, Any] = {"in_flight_batch_id": None, "updated_at": now}
    if outcome == OUTCOME_NOT_SENT:
        values |= {"last_attempt_at": ledger.c.prev_attempt_at, "attempts": ledger.c.attempts - 1}
    else:
        values |= {"outcome": outcome, "outcome_detail": detail}
    conn.execute(update(ledger).where(ledger.c.in_flight_batch_id == batch_id).values(**values))
    conn.execute(
        update(batch_contacts)
        .where(batch_contacts.c.batch_id == batch_id, batch_contacts.c.outcome.is_(None))
        .values(outcome=outcome, outcome_detail=detail)
    )


def mark_sending(conn: Connection, now: datetime, batch_id: str, owner: str) -> bool:
    """planned -> sending, taken by `owner`: only the caller that gets True may POST."""
    return transition(conn, now, batch_id, (BatchState.PLANNED,), BatchState.SENDING, owner=owner)


def mark_failed(conn: Connection, now: datetime, batch_id: str, error: str) -> bool:
    """planned|sending -> failed (the API refused the POST before any work); frees contacts."""
    if not transition(
        conn,
        now,
        batch_id,
        (BatchState.PLANNED, BatchState.SENDING),
        BatchState.FAILED,
        error=error,
    ):
        return False
    free_contacts(conn, now, batch_id, OUTCOME_API_REJECTED)
    return True


def release_unsent(conn: Connection, now: datetime, batch_id: str, reason: str) -> bool:
    """planned|sending -> failed "not sent: reason"; contacts freed as if never asked.

    Only for a batch the API provably never worked on: refused before any work (429 or 503
    after every retry, connection refused, credentials or credits refused) or abandoned on a
    stop before the request left. Its contacts get no cooldown: the next run sends them.
    """
    if not transition(
        conn,
        now,
        batch_id,
        (BatchState.PLANNED, BatchState.SENDING),
        BatchState.FAILED,
        error=f"not sent: {reason}",
    ):
        return False
    free_contacts(conn, now, batch_id, OUTCOME_NOT_SENT)
    return True


def split_batch(
    conn: Connection,
    now: datetime,
    batch_id: str,
    *,
    groups: Sequence[Sequence[str]],
    names: Sequence[str],
    rejected: Mapping[str, str],
    error: str,
    cost: Callable[[Sequence[str]], int],
) -> list[Batch] | None:
    """A batch the API refused as invalid (nothing made, nothing charged), taken apart.

    planned|sending -> failed(`error`); each of `groups` (record ids) becomes a new planned
    batch that inherits its contacts' claims; each record of `rejected` gets outcome
    `invalid_input` with its reason (the API's code), is freed, and keeps the not-found cooldown
    its claim started. None if the batch was no longer planned or sending.
    """
    row = conn.execute(select(batches).where(batches.c.id == batch_id)).first()
    if row is None or not transition(
        conn,
        now,
        batch_id,
        (BatchState.PLANNED, BatchState.SENDING),
        BatchState.FAILED,
        error=error,
    ):
        return None
    old = row._mapping
    items = {
        r.record_id: r
        for r in conn.execute(select(batch_contacts).where(batch_contacts.c.batch_id == batch_id))
    }
    new_ids: list[str] = []
    for group, name in zip(groups, names, strict=True):
        members = [items[rid] for rid in group if rid in items]
        if not members:
            continue
        new_id = str(uuid.uuid4())
        new_ids.append(new_id)
        asked = [f for m in members for f in json_loads(m.fields_asked, [])]
        conn.execute(
            batches.insert().values(
                id=new_id,
                source=old["source"],
                state=BatchState.PLANNED,
                name=name.replace("{batch_id}", new_id).replace("{contacts}", str(len(members)))[
                    :200
                ],
                run_id=old["run_id"],
                reserved_credits=int(cost(asked)),
                created_at=now,
                updated_at=now,
                state_changed_at=now,
                poll_attempts=0,
                owner=old["owner"],
            )
        )
        conn.execute(
            batch_contacts.insert(),
            [
                {
                    "batch_id": new_id,
                    "record_id": m.record_id,
                    "source": m.source,
                    "fields_asked": m.fields_asked,
                    "request": m.request,
                }
                for m in members
            ],
        )
        conn.execute(
            update(ledger)
            .where(
                ledger.c.source == old["source"],
                ledger.c.in_flight_batch_id == batch_id,
                ledger.c.record_id.in_([m.record_id for m in members]),
            )
            .values(in_flight_batch_id=new_id, updated_at=now)
        )
    for record_id, reason in sorted(rejected.items()):
        if record_id not in items:
            continue
        conn.execute(
            update(batch_contacts)
            .where(batch_contacts.c.batch_id == batch_id, batch_contacts.c.record_id == record_id)
            .values(outcome=OUTCOME_INVALID_INPUT, outcome_detail=reason)
        )
        conn.execute(
            update(ledger)
            .where(
                ledger.c.source == old["source"],
                ledger.c.record_id == record_id,
                ledger.c.in_flight_batch_id == batch_id,
            )
            .values(
                outcome=OUTCOME_INVALID_INPUT,
                outcome_detail=reason,
                found=False,
                in_flight_batch_id=None,
                updated_at=now,
            )
        )
    # Whatever is left of the old batch moved to a new one (or, if it matched no group, freed).
    free_contacts(conn, now, batch_id, OUTCOME_NOT_SENT)
    conn.execute(
        update(batch_contacts)
        .where(batch_contacts.c.batch_id == batch_id, batch_contacts.c.outcome == OUTCOME_NOT_SENT)
        .values(outcome=OUTCOME_SPLIT)
    )
    return load_batches(conn, batches.c.id.in_(new_ids)) if new_ids else []


def mark_unreadable(conn: Connection, now: datetime, batch_id: str, error: str) -> bool:
    """submitted -> failed: its result could not be read, retries are spent.

    The reserved credits stop counting (failed is uncounted) and every contact is freed with
    outcome `malformed` and the reason, under the not-found cooldown: the API may have charged
    for it, so it is not asked again at once.
    """
    if not transition(
        conn,
        now,
        batch_id,
        (BatchState.SUBMITTED,),
        BatchState.FAILED,
        error=error,
        claim_owner=None,
        claim_until=None,
    ):
        return False
    free_contacts(conn, now, batch_id, OUTCOME_MALFORMED, error)
    return True


def release_planned(conn: Connection, now: datetime, batch_id: str) -> bool:
    """planned -> failed "not sent" (deadline or shutdown); contacts freed as if never asked."""
    if not transition(
        conn, now, batch_id, (BatchState.PLANNED,), BatchState.FAILED, error="not sent"
    ):
        return False
    free_contacts(conn, now, batch_id, OUTCOME_NOT_SENT)
    return True


def to_submitted(
    conn: Connection, now: datetime, batch_id: str, enrichment_id: str, next_poll_at: datetime
) -> bool:
    """sending (or in_doubt, when a slow answer arrives after all) -> submitted."""
    return transition(
        conn,
        now,
        batch_id,
        (BatchState.SENDING, BatchState.IN_DOUBT),
        BatchState.SUBMITTED,
        enrichment_id=enrichment_id,
        submitted_at=now,
        next_poll_at=next_poll_at,
        poll_attempts=0,
        error=None,
    )


def mark_written(conn: Connection, now: datetime, batch_id: str, *, owner: str) -> bool:
    """received -> written by the claim holder; contacts without an outcome are freed."""
    moved = transition(
        conn,
        now,
        batch_id,
        (BatchState.RECEIVED,),
        BatchState.WRITTEN,
        batches.c.claim_owner == owner,
        written_at=now,
        claim_owner=None,
        claim_until=None,
    )
    if moved:
        free_contacts(conn, now, batch_id, OUTCOME_NO_RESULT)
    return moved


def record_outcomes(
    conn: Connection, now: datetime, batch_id: str, outcomes: Sequence[ContactOutcome]
) -> None:
    """Record each contact's outcome on the batch and in the ledger (idempotent)."""
    source = conn.execute(select(batches.c.source).where(batches.c.id == batch_id)).scalar()
    if source is None:
        raise LookupError(f"no batch {batch_id}")
    ordered = sorted({o.record_id: o for o in outcomes}.values(), key=lambda o: o.record_id)
    if not ordered:
        return
    params = [
        {
            "rid": o.record_id,
            "out": o.outcome,
            "vals": json_dumps(dict(o.values_written)),
            "fnd": bool(o.found),
            "why": o.detail[:1000] if o.detail else None,
        }
        for o in ordered
    ]
    conn.execute(
        update(batch_contacts)
        .where(
            batch_contacts.c.batch_id == batch_id, batch_contacts.c.record_id == bindparam("rid")
        )
        .values(
            outcome=bindparam("out"),
            values_written=bindparam("vals"),
            outcome_detail=bindparam("why"),
        ),
        [{k: p[k] for k in ("rid", "out", "vals", "why")} for p in params],
    )
    conn.execute(
        update(ledger)
        .where(
            ledger.c.source == source,
            ledger.c.record_id == bindparam("rid"),
            ledger.c.in_flight_batch_id == batch_id,
        )
        .values(
            outcome=bindparam("out"),
            values_written=bindparam("vals"),
            found=bindparam("fnd"),
            outcome_detail=bindparam("why"),
            in_flight_batch_id=None,
            updated_at=now,
        ),
        params,
    )
    retry = [o.record_id for o in ordered if o.outcome == OUTCOME_RETRY]
    if retry:  # the API did not process them (canceled, out of credits): no cooldown starts
        _forget_attempts(conn, source, retry)


def _forget_attempts(conn: Connection, source: str, record_ids: Sequence[str]) -> None:
    """Clear the last attempt of settled `retry` contacts, so their cooldown never starts."""
    conn.execute(
        update(ledger)
        .where(
            ledger.c.source == source,
            ledger.c.record_id == bindparam("rid"),
            ledger.c.outcome == OUTCOME_RETRY,
            ledger.c.in_flight_batch_id.is_(None),
        )
        .values(last_attempt_at=None),
        [{"rid": record_id} for record_id in record_ids],
    )
