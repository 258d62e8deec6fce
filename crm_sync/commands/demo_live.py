"""`crm-sync demo --live`: the daemon's fresh lane at work, on in-process emulators.

It starts the emulators and the daemon (webhooks to itself), creates a few contacts through the
HubSpot API while the daemon runs, and prints each one as crm-sync writes it back, with the
seconds since its creation. The demo's clock is sped up: it scans every 2 s and sends a batch
once its oldest contact has waited 4 s (60 s each by default), so it takes seconds, not minutes.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from crm_sync.clock import SYSTEM_CLOCK

FRESH_SCAN_SECONDS = 2.0
MAX_BATCH_WAIT_SECONDS = 4.0
CREATE_EVERY_SECONDS = 1.0
TIMEOUT_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_live(args: argparse.Namespace) -> int:
    """Create `--live-contacts` contacts while the daemon runs; print each enrichment."""
    from crm_sync.commands.common import register_config_secrets
    from crm_sync.config import parse_config
    from crm_sync.daemon.service import Daemon
    from crm_sync.logs import configure_logging
    from crm_sync.outputs.metrics import Metrics
    from crm_sync.sandbox.world import SandboxWorld, WorldOptions
    from crm_sync.wiring import open_context

    as_json = bool(getattr(args, "json", False))
    configure_logging(json=True, level="WARNING")
    options = WorldOptions(
        hubspot_contacts=40,
        salesforce_contacts=0,
        seed=args.seed,
        api_version=getattr(args, "api_version", "v1"),
    )
    port = _free_port()
    with (
        tempfile.TemporaryDirectory(prefix="crm-sync-demo-live-") as tmp,
        SandboxWorld(options) as world,
    ):
        raw = world.config_dict(
            f"sqlite:///{Path(tmp) / 'state.sqlite3'}",
            sources=[world.hubspot_source()],
            webhook={
                "listen": f"127.0.0.1:{port}",
                "public_url": f"http://127.0.0.1:{port}/webhooks/enrichment",
            },
            schedule={
                "interval_minutes": 60,
                "fresh_scan_seconds": FRESH_SCAN_SECONDS,
                "fresh_overlap_seconds": 1,
                "shutdown_grace_seconds": 5,
            },
            run={"max_batch_wait_seconds": MAX_BATCH_WAIT_SECONDS},
        )
        config = parse_config(raw, env={})
        register_config_secrets(config)
        with open_context(config, webhook=True) as ctx:
            daemon = Daemon(ctx, metrics=Metrics())
            daemon.start()
            try:
                rows = _create_and_watch(world, ctx.store, args.live_contacts, as_json)
            finally:
                daemon.request_stop("demo finished")
                daemon.wait()
    if as_json:
        sys.stdout.write(json.dumps({"contacts": rows}) + "\n")
    settled = all(row["outcome"] for row in rows)
    return 0 if settled else 1


def _create_and_watch(world: Any, store: Any, count: int, as_json: bool) -> list[dict[str, Any]]:
    from hubspot import HubSpot
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate

    client = HubSpot(access_token=world.hubspot.token, host=world.servers["hubspot"].url)
    people = [("Ada", "Lovelace"), ("Grace", "Hopper"), ("Alan", "Turing"), ("Edsger", "Dijkstra")]
    people += [("Barbara", "Liskov"), ("Donald", "Knuth"), ("Frances", "Allen")]
    created: dict[str, tuple[str, datetime]] = {}
    rows: dict[str, dict[str, Any]] = {}
    deadline = SYSTEM_CLOCK.monotonic() + TIMEOUT_SECONDS
    next_create = SYSTEM_CLOCK.monotonic()
    while SYSTEM_CLOCK.monotonic() < deadline and (len(created) < count or len(rows) < count):
        if len(created) < count and SYSTEM_CLOCK.monotonic() >= next_create:
            first, last = people[len(created) % len(people)]
            properties = {"firstname": first, "lastname": last, "company": "Acme Analytics"}
            properties["website"] = "acme-analytics.com"
            body = SimplePublicObjectInputForCreate(properties=properties, associations=[])
            answer = client.crm.contacts.basic_api.create(
                simple_public_object_input_for_create=body
            )
            stamp = (answer.properties or {}).get("createdate") or ""
            created[str(answer.id)] = (
                f"{first} {last}",
                datetime.fromisoformat(stamp.replace("Z", "+00:00")),
            )
            if not as_json:
                sys.stdout.write(f"created  {answer.id:>6} {first} {last}\n")
            next_create += CREATE_EVERY_SECONDS
        for record_id, (name, born) in created.items():
            if record_id in rows:
                continue
            row = store.ledger_row("hubspot", record_id)
            if row is None or not row.outcome or row.in_flight_batch_id:
                continue
            latency = round((row.updated_at - born).total_seconds(), 1)
            record = world.hubspot.records[record_id]
            rows[record_id] = {
                "id": record_id,
                "name": name,
                "outcome": row.outcome,
                "email": record.get("email"),
                "phone": record.get("phone"),
                "seconds_since_created": latency,
            }
            if not as_json:
                found = ", ".join(v for v in (record.get("email"), record.get("phone")) if v)
                sys.stdout.write(
                    f"enriched {record_id:>6} {name:<18} {row.outcome:<12} {latency:>5} s  "
                    f"{found or '-'}\n"
                )
        SYSTEM_CLOCK.sleep(0.1)
    missing = [
        {"id": i, "name": n, "outcome": None, "seconds_since_created": None}
        for i, (n, _) in created.items()
        if i not in rows
    ]
    return [*rows.values(), *missing]
