"""The run report: counts per source, as a table for people or as one JSON object for tools."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

COUNT_NAMES = (
    "scanned",
    "submitted",
    "emails_written",
    "phones_written",
    "kept_existing",
    "not_found",
    "not_accepted",
    "rejected",
    "invalid_input",
    "invalid_value",
    "identity_mismatch",
    "malformed",
    "not_returned",
    "held_for_config",
    "credits_spent",
    "in_doubt",
    "deferred",
)


@dataclass
class SourceCounts:
    """What one source's part of a run did."""

    scanned: int = 0
    submitted: int = 0
    emails_written: int = 0
    phones_written: int = 0
    kept_existing: int = 0
    not_found: int = 0
    not_accepted: int = 0
    rejected: int = 0  # records the CRM refused to write (a duplicate email, a validation rule)
    invalid_input: int = 0  # contacts the enrichment API refused as items (its error code)
    invalid_value: int = 0  # found values not written because they are not plausible
    identity_mismatch: int = 0  # results whose names or domain are not the record's
    malformed: int = 0  # result items that could not be read (outcome `malformed`)
    not_returned: int = 0  # contacts a finished result had no item for (outcome `not_returned`)
    held_for_config: int = 0  # left unwritten: the CRM refused a mapped field (config)
    credits_spent: int = 0
    in_doubt: int = 0
    deferred: int = 0  # fit neither the budget nor the balance this run; asked next run
    skipped: Counter[str] = field(default_factory=Counter)
    # why contacts were refused (by the CRM, by the value checks, by the identity check), by code
    rejected_reasons: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["skipped"] = dict(sorted(self.skipped.items()))
        data["rejected_reasons"] = dict(sorted(self.rejected_reasons.items()))
        return data

    def reject(self, reason: str, n: int = 1) -> None:
        """Count one refusal under its short reason code (`crm:CONFLICT`, `invalid_value:...`)."""
        self.rejected_reasons[reason] += n


@dataclass
class SourceReport:
    name: str
    connector: str
    counts: SourceCounts = field(default_factory=SourceCounts)
    status: str = "ok"  # ok | skipped | failed
    message: str = ""
    exit_code: int = 0  # what this source alone would make the run exit with (crm_sync.exit_codes)

    def stop(self, status: str, message: str, exit_code: int) -> None:
        """Record why this source did not (fully) run."""
        self.status, self.message, self.exit_code = status, message, exit_code


@dataclass
class DryRunItem:
    source: str
    record_id: str
    name: str
    fields: tuple[str, ...]
    worst_case_credits: int


@dataclass
class RunReport:
    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    dry_run: bool = False
    balance: int | None = None
    sources: list[SourceReport] = field(default_factory=list)
    dry_run_items: list[DryRunItem] = field(default_factory=list)
    exit_code: int = 0
    pending_batches: int = 0  # still submitted when the run stopped (deadline): collected next run
    interrupted: bool = False  # SIGTERM/SIGINT: no new work was started after it
    reason: str = ""  # why the run did not end ok, in one line (for status and the log)
    in_doubt: list[dict[str, Any]] = field(default_factory=list)  # every in_doubt batch (alarm)

    def source(self, name: str) -> SourceReport:
        for report in self.sources:
            if report.name == name:
                return report
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "dry_run": self.dry_run,
            "balance": self.balance,
            "exit_code": self.exit_code,
            "pending_batches": self.pending_batches,
            "interrupted": self.interrupted,
            "reason": self.reason,
            "in_doubt": self.in_doubt,
            "sources": [
                {
                    "name": s.name,
                    "connector": s.connector,
                    "status": s.status,
                    "message": s.message,
                    "exit_code": s.exit_code,
                    "counts": s.counts.as_dict(),
                }
                for s in self.sources
            ],
            **(
                {
                    "would_send": [
                        {
                            "source": i.source,
                            "record_id": i.record_id,
                            "name": i.name,
                            "fields": list(i.fields),
                            "worst_case_credits": i.worst_case_credits,
                        }
                        for i in self.dry_run_items
                    ],
                    "worst_case_credits": sum(i.worst_case_credits for i in self.dry_run_items),
                }
                if self.dry_run
                else {}
            ),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=False)


def render_table(report: RunReport) -> str:
    """A plain-text table (rich renders it when stdout is a terminal)."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"crm-sync run {report.run_id}" + (" (dry run)" if report.dry_run else ""))
    table.add_column("count")
    for source in report.sources:
        table.add_column(f"{source.name} ({source.connector})", justify="right")
    for name in COUNT_NAMES:
        table.add_row(name, *[str(getattr(s.counts, name)) for s in report.sources])
    reasons = sorted({r for s in report.sources for r in s.counts.skipped})
    for reason in reasons:
        table.add_row(
            f"skipped: {reason}", *[str(s.counts.skipped.get(reason, 0)) for s in report.sources]
        )
    for reason in sorted({r for s in report.sources for r in s.counts.rejected_reasons}):
        table.add_row(
            f"rejected: {reason}",
            *[str(s.counts.rejected_reasons.get(reason, 0)) for s in report.sources],
        )
    table.add_row("status", *[s.status for s in report.sources])
    buffer = StringIO()
    Console(file=buffer, width=120, color_system=None).print(table)
    lines = [buffer.getvalue().rstrip()]
    for source in report.sources:
        if source.message:
            lines.append(f"{source.name}: {source.message}")
    if report.dry_run:
        for item in report.dry_run_items:
            lines.append(
                f"would send {item.source}/{item.record_id} {item.name!r} "
                f"fields={','.join(item.fields)} worst_case_credits={item.worst_case_credits}"
            )
        total = sum(i.worst_case_credits for i in report.dry_run_items)
        lines.append(f"{len(report.dry_run_items)} contacts, worst-case cost {total} credits")
    if report.balance is not None:
        lines.append(f"balance before the run: {report.balance} credits")
    if report.interrupted:
        lines.append("interrupted (SIGTERM/SIGINT): no new batch was started; run again")
    for doubt in report.in_doubt:
        lines.append(
            f"IN DOUBT: batch {doubt['batch']} ({doubt['source']}, {doubt['contacts']} contacts, "
            f"up to {doubt['worst_case_credits']} credits): see `crm-sync status`, "
            "then `crm-sync resolve`"
        )
    if report.pending_batches:
        lines.append(
            f"{report.pending_batches} batches still running at the deadline; "
            "the next run collects them"
        )
    return "\n".join(lines)
