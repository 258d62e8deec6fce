"""Send one planned batch: the stop and lease checks, the POST, and what each answer does.

stop requested before a batch            -> nothing planned, the source stops cleanly
POST answered with an enrichment_id      -> submitted
POST may have been executed, no answer   -> in_doubt (never resent automatically)
refused as invalid (400, free)           -> split until the culprits are isolated; they get
                                            `invalid_input` with the API's code, the rest
                                            is sent in this run
refused before any work (429/503 after   -> released: contacts freed with no cooldown,
the retries, connection refused, stop)      the next run sends them
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from crm_sync import errors
from crm_sync.config import SourceConfig
from crm_sync.enrichment.input_rules import (
    API_CODE_FOR,
    is_item_code,
    remembered_key,
    remembered_value,
)
from crm_sync.enrichment.models import BulkRequest, ContactRequest
from crm_sync.enrichment.prices import worst_case_cost
from crm_sync.exit_codes import EXIT_FAILED, EXIT_IN_DOUBT, EXIT_TRANSIENT
from crm_sync.failpoints import failpoint
from crm_sync.logs import get_logger
from crm_sync.pipeline.budget import Budget
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.lease import lease_ttl, source_lease_name
from crm_sync.pipeline.report import SourceReport
from crm_sync.store.records import Batch, PlannedContact


class SourceStopped(Exception):
    """Stop submitting for this source (the message says why); other sources go on.

    `exit_code` is what this source alone makes the run exit with (`crm_sync.exit_codes`).
    """

    def __init__(self, message: str, *, exit_code: int = EXIT_FAILED) -> None:
        self.exit_code = exit_code
        super().__init__(message)


def submit_batch(
    ctx: Context,
    source: SourceConfig,
    contacts: Sequence[PlannedContact],
    report: SourceReport,
    budget: Budget,
    *,
    run_id: str,
) -> bool:
    """Plan `contacts` as one batch and send it (split if the API refuses an item).

    Returns False when a stop was requested: the caller starts no other batch.
    """
    store = ctx.store
    if not _may_start_batch(ctx, source, report):
        return False
    name = batch_name(source.name, ctx.clock.now())
    batch = store.plan_batch(
        source=source.name,
        run_id=run_id,
        owner=ctx.owner,
        name=name,
        contacts=contacts,
        reserved_credits_for=lambda planned: sum(worst_case_cost(p.fields_asked) for p in planned),
    )
    if batch is None:  # another process claimed them all between select and plan
        report.counts.skipped["in_flight"] += len(contacts)
        return True
    failpoint("after_plan")
    return _send_with_splits(ctx, source, batch, report, budget, run_id=run_id)


def send_planned_batch(
    ctx: Context,
    source: SourceConfig,
    batch: Batch,
    report: SourceReport,
    *,
    run_id: str,
    name: str = "",
    now: datetime | None = None,
) -> None:
    """Send a batch already planned (the fresh lane's sealed batch), with the same rules.

    `name` and `now` are accepted for the fresh lane's call; the batch carries its name.
    """
    del name, now
    _send_with_splits(ctx, source, batch, report, Budget(), run_id=run_id)


def _send_with_splits(
    ctx: Context,
    source: SourceConfig,
    batch: Batch,
    report: SourceReport,
    budget: Budget,
    *,
    run_id: str,
) -> bool:
    """Send `batch`, then the parts it is split into if the API refuses an item; False on stop."""
    store = ctx.store
    queue = [batch]
    while queue:
        current = queue.pop(0)
        if current is not batch and not _may_start_batch(ctx, source, report):
            for unsent in (current, *queue):  # parts of a split batch, not sent yet
                store.release_planned(unsent.id)
            return False
        try:
            queue[:0] = _send(ctx, source, current, report, budget, run_id=run_id)
        except _Stopped:
            for unsent in queue:
                store.release_planned(unsent.id)
            report.message = report.message or STOPPED_MESSAGE
            failpoint("between_batches_after_stop")
            return False
    return True


STOPPED_MESSAGE = "stopped on request before the end of the backlog"


class _Stopped(Exception):
    """A stop was requested before the POST left; the batch was released."""


class _Taken(Exception):
    """Another process moved the batch out of `planned`: not ours to send."""


def _may_start_batch(ctx: Context, source: SourceConfig, report: SourceReport) -> bool:
    """Checked before every batch: no stop requested, and the source lease still ours."""
    if ctx.stopping.is_set():
        failpoint("between_batches_after_stop")
        report.message = report.message or STOPPED_MESSAGE
        return False
    # Renew before every batch: a replica that lost the lease (paused too long) must stop here.
    if not ctx.store.acquire_lease(source_lease_name(source.name), ctx.owner, lease_ttl(ctx)):
        raise SourceStopped(
            "lost this source's lease to another process; stopping submission",
            exit_code=EXIT_TRANSIENT,
        )
    return True


def batch_name(source: str, now: datetime) -> str:
    """The enrichment's name on the provider's dashboard; the store fills in `{batch_id}` and
    `{contacts}`, so the batch id finds the batch when it is in doubt."""
    return f"crm-sync {source} {now:%Y-%m-%d %H:%M} batch {{batch_id}} ({{contacts}} contacts)"


def _send(
    ctx: Context,
    source: SourceConfig,
    batch: Batch,
    report: SourceReport,
    budget: Budget,
    *,
    run_id: str,
) -> list[Batch]:
    """POST one planned batch; the smaller batches to send instead if the API refused an item.

    Every failure leaves the batch in a state that cannot cause a resend of paid work:
    `in_doubt` when the POST may have been executed, released (no cooldown) when the API
    provably never worked on it, split when it refused it as invalid (a free answer).
    """
    store = ctx.store
    n = len(batch.contacts)

    def on_send() -> None:  # in the limiter slot, right before the request leaves
        if not store.mark_sending(batch.id, ctx.owner):
            raise _Taken
        failpoint("after_mark_sending")

    request = BulkRequest(
        name=batch.name,
        webhook_url=ctx.webhook_url,
        datas=[ContactRequest.model_validate(c.request) for c in batch.contacts],
    )
    now = ctx.clock.now()
    try:
        enrichment_id = ctx.client.submit(request, on_send=on_send, stop=ctx.stopping)
    except _Taken:
        return []
    except errors.NotSent:
        store.release_unsent(batch.id, "stop requested before the POST left")
        raise _Stopped from None
    except errors.OutcomeUnknown as exc:
        store.mark_in_doubt(batch.id, str(exc))
        report.counts.in_doubt += n
        raise SourceStopped(
            f"submission outcome unknown, batch {batch.id} is in_doubt: {exc}",
            exit_code=EXIT_IN_DOUBT,
        ) from None
    except errors.ValidationError as exc:
        return _split(ctx, source, batch, exc, report=report, budget=budget)
    except (errors.RetriableError, errors.FatalError) as exc:
        store.release_unsent(batch.id, str(exc))
        code = EXIT_TRANSIENT if isinstance(exc, errors.RetriableError) else EXIT_FAILED
        raise SourceStopped(
            f"enrichment API unavailable, nothing sent: {exc}", exit_code=code
        ) from None
    except (errors.AuthError, errors.InsufficientCredits) as exc:
        store.release_unsent(batch.id, type(exc).__name__)
        raise
    failpoint("after_submit")
    store.mark_submitted(batch.id, enrichment_id, next_poll_at=first_poll_at(ctx, now))
    failpoint("after_mark_submitted")
    report.counts.submitted += n
    ctx.progress.advance(source.name, "submitted", n)
    get_logger(source=source.name, run_id=run_id).info(
        "batch_submitted", batch=batch.id, enrichment_id=enrichment_id, contacts=n
    )
    return []


_ITEM_INDEX = re.compile(r"datas\[(\d+)\]")


def _split(
    ctx: Context,
    source: SourceConfig,
    batch: Batch,
    exc: errors.ValidationError,
    *,
    report: SourceReport,
    budget: Budget,
) -> list[Batch]:
    """The API refused the batch as invalid (nothing made, nothing charged): isolate the culprit.

    A code about the whole request (not one item) releases the batch and stops the source.
    A batch of one is the culprit: `invalid_input` with the API's code. Otherwise, if the code
    shows the provider stricter than its docs, the rules learn it and every item they now refuse
    leaves at once; else the batch is halved (or, when the message names an item, that item is
    tried alone) and the parts are sent in this same run. Only culprits are cooled down.
    """
    code = exc.code or "error.unknown"
    if not is_item_code(code):  # the request as a whole: no item to blame, nobody cooled down
        ctx.store.release_unsent(batch.id, f"refused by the API as a whole ({code})")
        raise SourceStopped(
            f"the enrichment API refused the request as a whole ({code}), nothing sent: {exc}",
            exit_code=EXIT_FAILED,
        )
    contacts = list(batch.contacts)
    rejected: dict[str, str] = {}
    groups: list[list[str]] = []
    if len(contacts) == 1:
        rejected[contacts[0].record_id] = code
    else:
        if ctx.rules.learn(code, [c.request for c in contacts]):
            key = remembered_key(ctx.rules.provider)
            ctx.store.set_scan_cursor(key, remembered_value(ctx.clock.now()))
        for contact in contacts:
            problem = ctx.rules.problem(contact.request)
            if problem is not None:  # the API's code when it is the one it answered
                rejected[contact.record_id] = code if API_CODE_FOR.get(problem) == code else problem
        rest = [c.record_id for c in contacts if c.record_id not in rejected]
        if rejected:
            groups = [rest] if rest else []
        else:
            groups = _halves(rest, _named_item(str(exc), len(contacts)))
    now = ctx.clock.now()
    parts = ctx.store.split_batch(
        batch.id,
        groups=groups,
        names=[batch_name(source.name, now) for _ in groups],
        rejected=rejected,
        error=f"refused by the API ({code}): split into {len(groups)}, {len(rejected)} invalid",
        cost=lambda asked: worst_case_cost(list(asked)),
    )
    if parts is None:
        return []
    asked = {c.record_id: c.fields_asked for c in contacts}
    for record_id, reason in rejected.items():
        report.counts.invalid_input += 1
        report.counts.reject(f"invalid_input:{reason}")
        budget.give_back(worst_case_cost(asked[record_id]))
    get_logger(source=source.name, batch=batch.id).warning(
        "batch_refused_split",
        code=code,
        contacts=len(contacts),
        parts=[len(p.contacts) for p in parts],
        invalid_input=len(rejected),
    )
    return parts


def _named_item(message: str, size: int) -> int | None:
    """The index of the item an API message names (`datas[7]...`), when it names one."""
    found = _ITEM_INDEX.search(message)
    index = int(found.group(1)) if found else None
    return index if index is not None and index < size else None


def _halves(record_ids: list[str], suspect: int | None) -> list[list[str]]:
    """Two parts: the named item alone and the rest, or two halves."""
    if suspect is not None:
        return [[record_ids[suspect]], record_ids[:suspect] + record_ids[suspect + 1 :]]
    middle = len(record_ids) // 2
    return [record_ids[:middle], record_ids[middle:]]


def first_poll_at(ctx: Context, now: datetime) -> datetime:
    """With a webhook, poll only as a fallback; without, poll soon."""
    if ctx.webhook_url:
        return now + timedelta(seconds=ctx.config.webhook.poll_after_seconds)
    return now + timedelta(seconds=ctx.config.run.poll_initial_seconds)
