"""`crm-sync demo`: one real cycle against in-process emulators; no config, no network.

It starts the three emulators on free loopback ports, seeds a HubSpot portal and a Salesforce
org, runs the same `--once` cycle a CronJob runs on a temporary SQLite store, and prints the
report and a few records before and after.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crm_sync.fields import EMAIL, LOGICAL_FIELDS

if TYPE_CHECKING:
    from crm_sync.pipeline.report import RunReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the run report as one JSON object on stdout",
    )
    parser.add_argument("--contacts", type=int, default=300, help="contacts seeded in each CRM")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated people")
    parser.add_argument(
        "--api-version",
        choices=("v1", "v2"),
        default="v1",
        help="the enrichment API version to speak (the emulator serves both); default v1",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="run the daemon and create contacts meanwhile: each is enriched within seconds",
    )
    parser.add_argument(
        "--live-contacts", type=int, default=5, help="contacts created by --live (default 5)"
    )


@dataclass
class DemoRun:
    """What one demo cycle did: its report, a sample before/after, and every CRM record after."""

    report: RunReport
    before: list[dict[str, Any]]
    after: list[dict[str, Any]]
    records: dict[str, dict[str, dict[str, Any]]] = dataclasses.field(default_factory=dict)


def run_demo(contacts: int, seed: int, api_version: str = "v1") -> DemoRun:
    """One cycle on a fresh seeded world spoken to in `api_version`."""
    from crm_sync.commands.common import register_config_secrets
    from crm_sync.config import parse_config
    from crm_sync.pipeline.cycle import run_cycle
    from crm_sync.sandbox.world import SandboxWorld, WorldOptions
    from crm_sync.wiring import open_context

    options = WorldOptions(
        hubspot_contacts=contacts, salesforce_contacts=contacts, seed=seed, api_version=api_version
    )
    with (
        tempfile.TemporaryDirectory(prefix="crm-sync-demo-") as tmp,
        SandboxWorld(options) as world,
    ):
        state_url = f"sqlite:///{Path(tmp) / 'state.sqlite3'}"
        config = parse_config(world.config_dict(state_url), env={})
        register_config_secrets(config)
        before = _sample(world)
        with open_context(config) as ctx:
            report = run_cycle(ctx, deadline_seconds=120)
        after = _sample(world, ids=[row["id"] for row in before])
        records = {
            "hubspot": copy.deepcopy(world.hubspot.records),
            "salesforce": copy.deepcopy(world.salesforce.records),
        }
    return DemoRun(report, before, after, records)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "live", False):
        from crm_sync.commands.demo_live import run_live

        return run_live(args)
    from crm_sync.logs import configure_logging
    from crm_sync.pipeline.report import render_table

    as_json = bool(getattr(args, "json", False))
    configure_logging(json=True, level="WARNING")
    demo = run_demo(args.contacts, args.seed, args.api_version)
    report, before, after = demo.report, demo.before, demo.after
    if as_json:
        sys.stdout.write(report.to_json() + "\n")
        return report.exit_code
    out = [render_table(report), "", "HubSpot contacts before -> after:"]
    for old, new in zip(before, after, strict=True):
        for field in LOGICAL_FIELDS:
            label = f"{old['id']:>6} {old['name']:<28}" if field == EMAIL else " " * 35
            out.append(f"  {label} {field} {old[field] or '-':<38} -> {new[field] or '-'}")
    sys.stdout.write("\n".join(out) + "\n")
    return report.exit_code


def _sample(world: Any, ids: list[str] | None = None, n: int = 6) -> list[dict[str, Any]]:
    """A few HubSpot records missing something, as the emulator holds them right now."""
    records = world.hubspot.records
    chosen = (
        ids
        or [
            rid
            for rid, p in records.items()
            if (not p.get("email") or not p.get("phone")) and p.get("lastname") and p.get("company")
        ][:n]
    )
    rows = []
    for rid in chosen:
        record = records[rid]
        name = f"{record.get('firstname') or ''} {record.get('lastname') or ''}".strip()
        rows.append(
            {"id": rid, "name": name, "email": record.get("email"), "phone": record.get("phone")}
        )
    return rows
