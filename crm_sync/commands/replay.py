"""`crm-sync replay`: write stored results that were not written (after fixing a field, say)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from crm_sync.commands.common import add_config_argument, load
from crm_sync.errors import ConfigError
from crm_sync.logs import configure_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--source", metavar="NAME", help="only this source (default: all)")
    parser.add_argument(
        "--since",
        metavar="DATE",
        help="only results received on or after this date (YYYY-MM-DD or ISO 8601, UTC)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show what would be written; write and record nothing",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the report as one JSON object",
    )


def parse_since(text: str | None) -> datetime | None:
    """`2026-11-30` or an ISO 8601 time; naive values are UTC."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--since: {text!r} is not a date (YYYY-MM-DD)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run(args: argparse.Namespace) -> int:
    from crm_sync.pipeline.replay import replay
    from crm_sync.pipeline.report import render_table
    from crm_sync.wiring import open_context

    since = parse_since(args.since)
    dry_run = bool(getattr(args, "dry_run", False))
    as_json = bool(getattr(args, "json", False))
    configure_logging(json=not sys.stdout.isatty() or as_json)
    config = load(args)
    with open_context(config) as ctx:
        report, would = replay(ctx, source=args.source, since=since, dry_run=dry_run)
    if as_json:
        data = report.as_dict()
        if dry_run:
            data["would_write"] = [
                {
                    "source": w.source,
                    "batch": w.batch,
                    "record_id": w.record_id,
                    "outcome": w.outcome,
                    "values": w.values,
                }
                for w in would
            ]
        sys.stdout.write(json.dumps(data) + "\n")
        return report.exit_code
    lines = [render_table(report)]
    for w in would:
        values = " ".join(f"{k}={v}" for k, v in sorted(w.values.items()))
        lines.append(f"would write {w.source}/{w.record_id}: {w.outcome.split(':')[0]} {values}")
    if dry_run:
        lines.append(f"{sum(1 for w in would if w.values)} contacts would get values")
    sys.stdout.write("\n".join(lines).rstrip() + "\n")
    return report.exit_code
