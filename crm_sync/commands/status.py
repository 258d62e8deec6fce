"""`crm-sync status`: what the store knows — batches by state, in-doubt batches, runs, spend.

It reads only the config's `state` section (or `--state-url`), so it works with no API key or
CRM token in the environment. While any batch is in_doubt it exits 6 after printing it: the
alarm stands until a person settles the batch with `crm-sync resolve`. Runs left `running` by a
process that is gone are marked `abandoned` first.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from crm_sync.commands.common import add_config_argument, config_path, remember_state_url
from crm_sync.exit_codes import EXIT_IN_DOUBT, EXIT_OK
from crm_sync.logs import configure_logging

CONTACTS_SHOWN = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--state-url",
        default=None,
        metavar="URL",
        help="read this store instead of the config's state.url (no config file needed)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print one JSON object instead of text",
    )
    parser.add_argument("--days", type=int, default=14, help="days of spend to show")
    parser.add_argument("--runs", type=int, default=10, help="runs of history to show")


def run(args: argparse.Namespace) -> int:
    from crm_sync.config import StateConfig, load_state_config
    from crm_sync.pipeline.run_record import abandon_dead_runs
    from crm_sync.store.opening import open_configured_store
    from crm_sync.wiring import build_clock

    configure_logging()
    if args.state_url:
        state = StateConfig(url=args.state_url)
        key = "--state-url"
    else:
        state = load_state_config(config_path(args))
        key = "state.url"
    remember_state_url(state.url)
    store = open_configured_store(state, key=key, clock=build_clock())
    try:
        abandon_dead_runs(store)
        status = collect_status(store, days=args.days, runs=args.runs)
    finally:
        store.close()
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(status, default=str) + "\n")
    else:
        sys.stdout.write(render(status) + "\n")
    return EXIT_IN_DOUBT if status["in_doubt"] else EXIT_OK


def collect_status(store: Any, *, days: int = 14, runs: int = 10) -> dict[str, Any]:
    """Everything `status` shows, as plain data."""
    now = store.clock.now()
    in_doubt = [
        {
            "batch": b.id,
            "name": b.name,
            "source": b.source,
            "since": b.state_changed_at.isoformat(),
            "age_hours": round((now - b.state_changed_at).total_seconds() / 3600, 1),
            "error": b.error,
            "worst_case_credits": b.reserved_credits,
            "contacts": [c.record_id for c in b.contacts],
        }
        for b in store.in_doubt_batches()
    ]
    history = [_run_entry(r) for r in store.run_history(runs)]
    spend = [
        {"source": source, "day": day.isoformat(), "credits": charged, "reserved": reserved}
        for source, day, charged, reserved in store.spend_by_source_and_day(days)
    ]
    return {
        "batches_by_state": store.batches_by_state(),
        "contacts_by_outcome": contacts_by_outcome(store.outcomes_by_source()),
        "held": [
            {"batch": b.id, "source": b.source, "reason": b.error, "contacts": unsettled}
            for b in store.held_batches()
            if (unsettled := sum(1 for c in b.contacts if c.outcome is None))
        ],
        "in_doubt": in_doubt,
        "kept_results": kept_results(store, now),
        "credits_in_flight": store.credits_in_flight(),
        "recent_runs": history,
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


def _run_entry(run: Any) -> dict[str, Any]:
    report = run.report or {}
    totals: dict[str, int] = {}
    for source in report.get("sources", []):
        for name, value in source.get("counts", {}).items():
            if isinstance(value, int):
                totals[name] = totals.get(name, 0) + value
    return {
        "run": run.id,
        "status": run.status,
        "exit_code": report.get("exit_code"),
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_seconds": run.duration_seconds,
        "counts": totals,
        "credits_charged": run.charged_credits,
        "credits_reserved": run.reserved_credits,
        "reason": report.get("reason") or None,
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
    for held in status.get("held", []):
        lines.append(
            f"Held, unwritten: batch {held['batch']} source={held['source']} "
            f"contacts={held['contacts']}: {held['reason']}; fix it, then `crm-sync replay`"
        )
    lines += _render_in_doubt(status["in_doubt"])
    kept = status.get("kept_results", [])
    lines.append(f"Kept results no batch has claimed yet: {len(kept)}")
    lines += [f"  {k['enrichment_id']} {k['status']} age={k['age_hours']}h" for k in kept[:20]]
    lines += ["  ..."] if len(kept) > 20 else []
    lines.append(f"Credits reserved by batches in flight: {status['credits_in_flight']}")
    lines.append("Recent runs (credits charged by the API; reserved = worst case still held):")
    lines += [_render_run(r) for r in status["recent_runs"]] or ["  (none)"]
    lines.append("Credits by source and day (charged, reserved):")
    lines += [
        f"  {s['day']} {s['source']:<20} {s['credits']:>8} {s['reserved']:>8}"
        for s in status["credits_by_source_and_day"]
    ] or ["  (none)"]
    return "\n".join(lines)


def _render_in_doubt(items: list[dict[str, Any]]) -> list[str]:
    lines = ["In doubt (may have been paid for; never resent automatically):"]
    if not items:
        return [*lines, "  (none)"]
    for item in items:
        contacts = item["contacts"]
        shown = ", ".join(contacts[:CONTACTS_SHOWN]) + (
            " ..." if len(contacts) > CONTACTS_SHOWN else ""
        )
        lines += [
            f"  batch {item['batch']} source={item['source']} age={item['age_hours']}h "
            f"worst_case_credits={item['worst_case_credits']}",
            f"    name in the provider's dashboard: {item['name']}",
            f"    contacts ({len(contacts)}): {shown}",
            f"    found in the dashboard: crm-sync resolve {item['batch']} --sent "
            "--enrichment-id ID",
            f"    not there:              crm-sync resolve {item['batch']} --not-sent",
        ]
    return lines


def _render_run(run: dict[str, Any]) -> str:
    counts = run["counts"]
    duration = f"{run['duration_seconds']}s" if run["duration_seconds"] is not None else "-"
    text = (
        f"  {run['run']} {run['status']:<12} started {run['started_at']} took {duration} "
        f"submitted={counts.get('submitted', 0)} "
        f"written={counts.get('emails_written', 0) + counts.get('phones_written', 0)} "
        f"charged={run['credits_charged']} reserved={run['credits_reserved']}"
    )
    refused = [f"{n}={counts[n]}" for n in (*ALWAYS_SHOWN_OUTCOMES, "rejected") if counts.get(n)]
    if refused:
        text += " " + " ".join(refused)
    if run["reason"]:
        text += f"\n      reason: {run['reason']}"
    return text
