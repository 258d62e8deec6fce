"""`crm-sync resolve BATCH --sent [--enrichment-id ID] | --not-sent`: settle an in_doubt batch.

A person looks for the batch in the provider's dashboard (its name carries the batch id, see
`crm-sync status`) and says what they found:
- `--not-sent`: no such enrichment; the contacts are released with no cooldown.
- `--sent`: it exists; the contacts count as asked, so their cooldown applies.
- `--sent --enrichment-id ID`: it exists with that id; the result is fetched and written back
  like any other (this needs the API key and the CRM credentials; the other two need only the
  store).
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import TYPE_CHECKING

from crm_sync.commands.common import add_config_argument, config_path, load, remember_state_url
from crm_sync.errors import ConfigError
from crm_sync.exit_codes import EXIT_OK
from crm_sync.logs import configure_logging, get_logger
from crm_sync.store.states import BatchState

if TYPE_CHECKING:
    from crm_sync.store.store import Store

DEFAULT_WAIT_SECONDS = 300.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("batch", metavar="BATCH", help="the batch id (or a unique prefix of it)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--sent",
        action="store_true",
        help="the provider has it: the contacts count as asked (cooldown applies)",
    )
    what.add_argument(
        "--not-sent",
        action="store_true",
        help="the provider does not have it: release the contacts with no cooldown",
    )
    parser.add_argument(
        "--enrichment-id",
        metavar="ID",
        default=None,
        help="with --sent: the enrichment id shown in the provider's dashboard; its result is "
        "fetched and written back",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help="with --enrichment-id: how long to wait for the result (the next run collects "
        "it otherwise)",
    )


def run(args: argparse.Namespace) -> int:
    configure_logging()
    if args.enrichment_id and not args.sent:
        raise ConfigError("--enrichment-id goes with --sent")
    if args.enrichment_id:
        return _sent_with_id(args)
    from crm_sync.config import load_state_config
    from crm_sync.store.opening import open_configured_store

    state = load_state_config(config_path(args))
    remember_state_url(state.url)
    store = open_configured_store(state)
    try:
        batch_id = _in_doubt_batch(store, args.batch)
        batch = store.get_batch(batch_id)
        n = len(batch.contacts) if batch else 0
        if args.sent:
            moved = store.resolve_sent(batch_id)
            message = f"batch {batch_id}: marked sent; its {n} contacts count as asked (cooldown)"
        else:
            moved = store.resolve_not_sent(batch_id)
            message = f"batch {batch_id}: marked not sent; its {n} contacts are released"
    finally:
        store.close()
    if not moved:
        raise ConfigError(f"batch {batch_id} changed state meanwhile; see `crm-sync status`")
    get_logger(batch=batch_id).warning(
        "in_doubt_resolved", sent=bool(args.sent), contacts=n, by="hand"
    )
    print(message)
    return EXIT_OK


def _in_doubt_batch(store: Store, wanted: str) -> str:
    """The full id of the in_doubt batch `wanted` names; ConfigError when it names none."""
    ids = store.find_batch_ids(wanted)
    if not ids:
        raise ConfigError(f"BATCH: no batch {wanted!r} in the store; see `crm-sync status`")
    if len(ids) > 1:
        raise ConfigError(f"BATCH: {wanted!r} matches several batches: {', '.join(ids)}")
    batch = store.get_batch(ids[0])
    if batch is None or batch.state != BatchState.IN_DOUBT:
        state = batch.state if batch else "gone"
        raise ConfigError(f"BATCH: batch {ids[0]} is {state}, not in_doubt: nothing to resolve")
    return ids[0]


def _sent_with_id(args: argparse.Namespace) -> int:
    """Attach the enrichment id, fetch the result and write it back with the normal pipeline."""
    from crm_sync.errors import NotFoundError
    from crm_sync.pipeline.cycle import collect_and_write
    from crm_sync.pipeline.report import SourceCounts
    from crm_sync.wiring import open_context

    config = load(args)
    enrichment_id = args.enrichment_id.strip()
    with open_context(config) as ctx:
        batch_id = _in_doubt_batch(ctx.store, args.batch)
        other = ctx.store.batch_by_enrichment_id(enrichment_id)
        if other is not None:
            raise ConfigError(
                f"--enrichment-id: {enrichment_id} already belongs to batch {other.id}"
            )
        try:
            ctx.client.get_result(enrichment_id)
        except NotFoundError:
            raise ConfigError(
                f"--enrichment-id: the enrichment API does not know {enrichment_id}; copy the "
                "id from the provider's dashboard again"
            ) from None
        if not ctx.store.mark_submitted(batch_id, enrichment_id, next_poll_at=ctx.clock.now()):
            raise ConfigError(f"batch {batch_id} changed state meanwhile; see `crm-sync status`")
        get_logger(batch=batch_id).warning(
            "in_doubt_resolved", sent=True, enrichment_id=enrichment_id, by="hand"
        )
        counts: dict[str, SourceCounts] = {}
        deadline = ctx.clock.now() + timedelta(seconds=max(args.wait, 0))
        collect_and_write(ctx, counts, deadline=deadline, wait=True)
        batch = ctx.store.get_batch(batch_id)
    state = batch.state if batch else "unknown"
    written = sum(c.emails_written + c.phones_written for c in counts.values())
    if state == BatchState.SUBMITTED:
        print(
            f"batch {batch_id}: enrichment {enrichment_id} attached; its result is not ready "
            "yet, the next run collects and writes it"
        )
    else:
        print(
            f"batch {batch_id}: enrichment {enrichment_id} attached, result {state}, "
            f"{written} values written"
        )
    return EXIT_OK
