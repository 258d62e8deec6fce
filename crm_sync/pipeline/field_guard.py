"""The mapped CRM fields, guarded: checked before spending, and held results said loudly.

A field that does not exist or cannot be written would make every paid result unwritable.
Each run (and `replay`) asks the connector first and stops the source with exit 2 naming the
field; results held by a field refusal during write-back fail the run with exit 2 too.
"""

from __future__ import annotations

from crm_sync.config import SourceConfig
from crm_sync.exit_codes import EXIT_CONFIG, most_severe
from crm_sync.logs import get_logger
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.report import RunReport, SourceReport


def fields_ok(ctx: Context, source: SourceConfig, source_report: SourceReport) -> bool:
    """Every mapped field exists and is writable, checked before any credit is spent.

    A missing field would make every paid result unwritable: the source stops (exit 2).
    """
    problems = ctx.connectors[source.name].check_fields()
    if problems:
        message = "mapped CRM fields are wrong, nothing sent: " + "; ".join(problems)
        source_report.stop("failed", message, EXIT_CONFIG)
        get_logger(source=source.name).error("source_fields_refused", problems=problems)
    return not problems


def report_held(report: RunReport) -> None:
    """A source whose results were held by a field refusal fails the run with exit 2."""
    for source in report.sources:
        held = source.counts.held_for_config
        if held:
            source.stop(
                "failed",
                f"{held} paid results held unwritten: the CRM refused a mapped field; "
                "fix `fields`, then run `crm-sync replay`",
                most_severe((source.exit_code, EXIT_CONFIG)),
            )
