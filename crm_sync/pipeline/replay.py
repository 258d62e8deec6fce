"""Replay: write stored results that were not written, once whatever stopped them is fixed.

A batch is left `received` when the CRM refused a mapped field (held), or when a run ended
before writing it; and a store written by an earlier version holds contacts the CRM rejected
(`rejected: ...`, a mistyped field among them) whose paid result was never written. Replay
takes both, checks the source's mapped fields first (the same check a run makes before
spending), then writes them with the very rules of write-back: re-read, fill empty only,
plausible values, identity. `dry_run` reads and decides, and writes and records nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from crm_sync.errors import ConfigError
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.cycle import exit_code_for
from crm_sync.pipeline.field_guard import fields_ok, report_held
from crm_sync.pipeline.lease import claim_lease
from crm_sync.pipeline.report import RunReport, SourceReport
from crm_sync.pipeline.writeback import (
    preview_batch,
    rewrite_rejected,
    write_back_batch,
)
from crm_sync.store.records import Batch


@dataclass(frozen=True)
class WouldWrite:
    """One contact as `--dry-run` sees it: the outcome it would get and the values."""

    source: str
    batch: str
    record_id: str
    outcome: str
    values: dict[str, str]


def replay(
    ctx: Context,
    *,
    source: str | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
) -> tuple[RunReport, list[WouldWrite]]:
    """Write (or, dry, preview) every unwritten stored result of the chosen sources."""
    names = [s.name for s in ctx.config.sources if s.enabled]
    if source is not None and source not in names:
        raise ConfigError(f"--source: no enabled source {source!r}; known: {', '.join(names)}")
    started = ctx.clock.now()
    report = RunReport(f"replay-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}", started)
    report.dry_run = dry_run
    would: list[WouldWrite] = []
    for name in [source] if source else names:
        source_report = SourceReport(name, ctx.source_config(name).connector)
        report.sources.append(source_report)
        if not fields_ok(ctx, ctx.source_config(name), source_report):
            continue
        if dry_run:
            would += _preview(ctx, name, since)
            continue
        for batch in ctx.store.claim_for_replay(
            owner=ctx.owner, lease=claim_lease(ctx), source=name, since=since
        ):
            write_back_batch(ctx, batch, source_report.counts)
        for batch, record_ids in ctx.store.rejected_in_written(source=name, since=since):
            rewrite_rejected(ctx, batch, record_ids, source_report.counts)
    report_held(report)
    report.finished_at = ctx.clock.now()
    report.exit_code = exit_code_for(report)
    return report, would


def _preview(ctx: Context, source: str, since: datetime | None) -> list[WouldWrite]:
    chosen: list[tuple[Batch, frozenset[str] | None]] = [
        (b, None) for b in ctx.store.replayable_batches(source=source, since=since)
    ]
    chosen += ctx.store.rejected_in_written(source=source, since=since)
    would = []
    for batch, record_ids in chosen:
        plan = preview_batch(ctx, batch, record_ids)
        for record_id, outcome in sorted(plan.outcomes.items()):
            values = dict(outcome.values_written)
            would.append(WouldWrite(source, batch.id, record_id, outcome.outcome, values))
    return would
