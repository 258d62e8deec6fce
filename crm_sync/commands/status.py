"""`crm-sync status`: what the store knows — batches by state, in-doubt batches, runs, spend."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from crm_sync.commands.common import add_config_argument, load


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print one JSON object instead of text",
    )
    parser.add_argument("--days", type=int, default=14, help="days of spend to show")


def run(args: argparse.Namespace) -> int:
    from crm_sync.store.store import Store

    config = load(args)
    store = Store.open(config.state.url)
    try:
        status = collect_status(store, days=args.days)
    finally:
        store.close()
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(status, default=str) + "\n")
    else:
        sys.stdout.write(render(status) + "\n")
    return 0


def collect_status(store: Any, *, days: int = 14) -> dict[str, Any]:
    """Everything `status` shows, as plain data."""
    now = datetime.now(UTC)
    in_doubt = [
        {
            "batch": b.id,
            "source": b.source,
            "since": b.state_changed_at.isoformat(),
            "age_hours": round((now - b.state_changed_at).total_seconds() / 3600, 1),
            "error": b.error,
            "contacts": [c.record_id for c in b.contacts],
        }
        for b in store.in_doubt_batches()
    ]
    runs = [
        {
            "run": r.id,
            "started_at": r.started_at.isoformat(),
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "status": r.status,
        }
        for r in store.recent_runs(10)
    ]
    spend = [
        {"source": source, "day": day.isoformat(), "credits": credits}
        for source, day, credits in store.credits_by_source_and_day(days)
    ]
    return {
        "batches_by_state": store.batches_by_state(),
        "contacts_by_outcome": contacts_by_outcome(store.outcomes_by_source()),
        "in_doubt": in_doubt,
        "recent_runs": runs,
        "credits_by_source_and_day": spend,
    }


#: Outcomes shown for every source even at zero, so a reader sees they are watched (issue 9).
ALWAYS_SHOWN_OUTCOMES = (
    "invalid_input",
    "invalid_value",
    "identity_mismatch",
    "malformed",
    "not_returned",
)


def contacts_by_outcome(by_source: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Each source's contacts by last outcome, with the issue 9 outcomes always present."""
    return {
        source: dict(sorted((dict.fromkeys(ALWAYS_SHOWN_OUTCOMES, 0) | outcomes).items()))
        for source, outcomes in by_source.items()
    }


def render(status: dict[str, Any]) -> str:
    lines = ["Batches by state:"]
    states = status["batches_by_state"]
    lines += [f"  {state:<10} {count}" for state, count in sorted(states.items())] or ["  (none)"]
    lines.append("Contacts by last outcome:")
    by_outcome = status.get("contacts_by_outcome", {})
    for source, outcomes in by_outcome.items():
        lines.append(f"  {source}:")
        lines += [f"    {name:<18} {count}" for name, count in outcomes.items()]
    if not by_outcome:
        lines.append("  (none)")
    lines.append("In doubt (may have been paid for; never resent automatically):")
    if not status["in_doubt"]:
        lines.append("  (none)")
    for item in status["in_doubt"]:
        lines.append(
            f"  {item['batch']} source={item['source']} age={item['age_hours']}h "
            f"contacts={len(item['contacts'])}: {', '.join(item['contacts'][:20])}"
            + (" ..." if len(item["contacts"]) > 20 else "")
        )
    lines.append("Recent runs:")
    lines += [
        f"  {r['run']} {r['status'] or 'running':<12} started {r['started_at']}"
        for r in status["recent_runs"]
    ] or ["  (none)"]
    lines.append("Credits spent by source and day:")
    lines += [
        f"  {s['day']} {s['source']:<20} {s['credits']}"
        for s in status["credits_by_source_and_day"]
    ] or ["  (none)"]
    return "\n".join(lines)
