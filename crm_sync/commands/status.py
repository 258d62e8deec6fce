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
        "in_doubt": in_doubt,
        "kept_results": kept_results(store, now),
        "recent_runs": runs,
        "credits_by_source_and_day": spend,
    }


def kept_results(store: Any, now: datetime) -> list[dict[str, Any]]:
    """Signed results no batch has claimed yet (kept, attached when a batch carries the id)."""
    return [
        {
            "enrichment_id": k.enrichment_id,
            "status": k.result_status,
            "received_at": k.received_at.isoformat(),
            "age_hours": round((now - k.received_at).total_seconds() / 3600, 1),
        }
        for k in store.early_results()
    ]


def render(status: dict[str, Any]) -> str:
    lines = ["Batches by state:"]
    states = status["batches_by_state"]
    lines += [f"  {state:<10} {count}" for state, count in sorted(states.items())] or ["  (none)"]
    lines.append("In doubt (may have been paid for; never resent automatically):")
    if not status["in_doubt"]:
        lines.append("  (none)")
    for item in status["in_doubt"]:
        lines.append(
            f"  {item['batch']} source={item['source']} age={item['age_hours']}h "
            f"contacts={len(item['contacts'])}: {', '.join(item['contacts'][:20])}"
            + (" ..." if len(item["contacts"]) > 20 else "")
        )
    kept = status.get("kept_results", [])
    lines.append(f"Kept results no batch has claimed yet: {len(kept)}")
    lines += [f"  {k['enrichment_id']} {k['status']} age={k['age_hours']}h" for k in kept[:20]] + (
        ["  ..."] if len(kept) > 20 else []
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
