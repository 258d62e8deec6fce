"""Benchmark: new contacts through the fresh lane while a large backlog goes through the full scan.

The daemon (`Daemon`, in this process, webhooks on) starts on a HubSpot portal whose backlog is
about 10,000 contacts (a 12,700-contact portal: about 79% of generated people are candidates).
Its first cycle submits the backlog; meanwhile 200 new contacts, missing a phone, are created
through the HubSpot API at a steady rate, and the fresh lane picks them up. The emulators run in
a child process (as in `bench/pipeline.py`), and so does the creation of the new contacts: their
work is not measured as ours.

Time scaling, as in `bench/pipeline.py`: the enrichment API allows `--calls` calls per `--window`
seconds (default 6 per 1.0 s, a clock 6x faster than the real 60 a minute), and every other
duration is divided by the same speed-up: the default settings fresh_scan_seconds 60,
max_batch_wait_seconds 60, fresh_overlap_seconds 30 and webhook poll_after_seconds 600 become
10, 10, 5 and 100 s; enrichment taking 5 s takes 0.83 s; the 200 contacts are created over
120 s -> 20 s; HubSpot's limits and the connector's throttle are sped up likewise. The poll
share is the default 0.1.

Figures (the last line printed is one JSON object):

    p50_s, p95_s                 = seconds from a new contact's `createdate` to the moment
                                   crm-sync recorded its write-back (written, or settled as not
                                   found), in *real* seconds (scaled seconds x speed-up); the
                                   scaled values are `p50_scaled_s`, `p95_scaled_s`
    contacts_per_minute_fraction = the backlog's contacts submitted per window over whole bursts
                                   of calls (every call counts: the fresh lane's POSTs and
                                   balance reads take slots), divided by the ceiling 100 x calls,
                                   measured exactly as `bench/pipeline.py` measures it
    fresh_posts, fresh_post_min_gap_s = the fresh lane's POSTs and their smallest spacing (real s)
    baseline_fraction            = the same measure in a second run with the fresh lane off and
                                   nothing created (what the machine allows the backlog alone);
                                   fraction_of_baseline = contacts_per_minute_fraction / that:
                                   the share of the backlog's pace the fresh lane leaves it

Targets (issue 14): p95_s <= 120 and contacts_per_minute_fraction >= 0.95.

Run: `python bench/fresh.py [--contacts 12700] [--fresh 200] [--calls 6] [--window 1.0]`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInputForCreate
from sqlalchemy import create_engine, select

from crm_sync.config import Config, parse_config
from crm_sync.daemon.service import Daemon
from crm_sync.enrichment.client import EnrichmentClient
from crm_sync.enrichment.models import BulkRequest, EnrichmentResult
from crm_sync.enrichment.ratelimit import SlidingWindowLimiter, reserved_slots
from crm_sync.logs import configure_logging
from crm_sync.outputs.metrics import Metrics
from crm_sync.pipeline.context import Context
from crm_sync.store.schema import batches, fresh_contacts
from crm_sync.store.store import Store
from crm_sync.wiring import connector_for

REAL_CALLS_PER_SECOND = 1.0  # the API's 60 calls a minute
POLL_SHARE = 0.1


@dataclass(frozen=True)
class Settings:
    contacts: int
    fresh: int
    calls: int
    window: float
    enrichment_seconds: float  # real seconds an enrichment takes

    @property
    def speedup(self) -> float:
        return self.calls / self.window / REAL_CALLS_PER_SECOND

    def scaled(self, real_seconds: float) -> float:
        return real_seconds / self.speedup


def serve_world(conn: Connection, settings: Settings) -> None:
    """Child process: the emulators; answers "stats" with what the API saw; stops on "stop"."""
    from crm_sync.sandbox.world import SandboxWorld, WorldOptions

    configure_logging(level="WARNING")
    options = WorldOptions(
        hubspot_contacts=settings.contacts,
        salesforce_contacts=0,
        completion_delay=settings.scaled(settings.enrichment_seconds),
        rate_limit_calls=settings.calls,
        rate_limit_window=settings.window,
        webhook_retry_interval=settings.scaled(60),
        hubspot_kwargs={
            "ten_secondly_limit": int(100 * settings.speedup),
            "search_per_second": int(5 * settings.speedup),
        },
    )
    with SandboxWorld(options) as world:
        conn.send(
            {
                "enrichment_url": world.enrichment_url,
                "api_key": world.enrichment.api_key,
                "hubspot": world.hubspot_source(),
            }
        )
        created: dict[str, datetime] = {}
        creator = threading.Thread(
            target=create_contacts,
            args=(world.servers["hubspot"].url, world.hubspot.token, settings, created),
            daemon=True,
        )
        while (message := conn.recv()) != "stop":
            if message == "create":  # a sales team's tool, creating contacts over the API
                creator.start()
                conn.send("started")
                continue
            if message == "created":
                creator.join()
                conn.send({i: t.isoformat() for i, t in created.items()})
                continue
            subs = world.enrichment.submissions_per_contact()
            conn.send(
                {
                    "max_calls_in_any_window": world.enrichment.max_calls_in_any_window(
                        settings.window
                    ),
                    "resubmitted_contacts": sum(1 for n in subs.values() if n > 1),
                    "message": message,
                }
            )


class TimedClient:
    """The real client, noting each credits call's and POST's end, and which lane sent it."""

    def __init__(self, client: EnrichmentClient) -> None:
        self.client = client
        self.ends: list[tuple[int, float, int, str]] = []  # (calls so far, end, contacts, lane)
        self._lock = threading.Lock()

    def _ended(self, contacts: int, lane: str) -> None:
        with self._lock:
            self.ends.append((self.client.stats.total_calls, time.monotonic(), contacts, lane))

    def credits(self) -> int:
        balance = self.client.credits()
        self._ended(0, "credits")
        return balance

    def submit(self, request: BulkRequest, **hooks: Any) -> str:
        enrichment_id = self.client.submit(request, **hooks)
        self._ended(len(request.datas), "fresh" if " fresh " in request.name else "backlog")
        return enrichment_id

    def get_result(self, enrichment_id: str, *, force_results: bool = False) -> EnrichmentResult:
        return self.client.get_result(enrichment_id, force_results=force_results)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_config(world: dict[str, Any], settings: Settings, state_dir: Path, port: int) -> Config:
    """The default settings of the fresh lane, scaled; HubSpot only; webhooks to this process."""
    source = world["hubspot"]
    source["settings"]["requests_per_second"] = 9 * settings.speedup
    return parse_config(
        {
            "enrichment": {
                "provider": "fullenrich",
                "base_url": world["enrichment_url"],
                "api_key": world["api_key"],
                "poll_share": POLL_SHARE,
            },
            "state": {"url": f"sqlite:///{state_dir / 'state.sqlite3'}"},
            "run": {
                "poll_initial_seconds": settings.scaled(5),
                "poll_max_seconds": settings.scaled(60),
                "max_batch_wait_seconds": settings.scaled(60),
            },
            "schedule": {
                "interval_minutes": 60,
                "poll_interval_seconds": settings.scaled(30),
                "fresh_scan_seconds": settings.scaled(60) if settings.fresh else 0,
                "fresh_overlap_seconds": settings.scaled(30),
                "shutdown_grace_seconds": 5,
            },
            "webhook": {
                "listen": f"127.0.0.1:{port}",
                "public_url": f"http://127.0.0.1:{port}/webhooks/enrichment",
                "poll_after_seconds": settings.scaled(600),
            },
            "sources": [source],
        },
        env={},
    )


def create_contacts(url: str, token: str, settings: Settings, out: dict[str, datetime]) -> None:
    """`settings.fresh` contacts missing a phone, created at a steady rate over 120 real s."""
    client = HubSpot(access_token=token, host=url)
    pause = settings.scaled(120) / max(settings.fresh, 1)
    for i in range(settings.fresh):
        properties = {
            "firstname": f"Fresh{i}",
            "lastname": "Bench",
            "company": "Acme Analytics",
            "website": "acme-analytics.com",
            "email": f"fresh{i}.bench@acme-analytics.com",
        }
        body = SimplePublicObjectInputForCreate(properties=properties, associations=[])
        created = client.crm.contacts.basic_api.create(simple_public_object_input_for_create=body)
        stamp = (created.properties or {}).get("createdate") or ""
        out[str(created.id)] = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        time.sleep(pause)


def run_daemon(
    world: dict[str, Any], settings: Settings, state_dir: Path, emulators: Connection
) -> dict[str, Any]:
    """The daemon on the backlog while contacts are created; returns the raw measurements."""
    config = make_config(world, settings, state_dir, free_port())
    limiter = SlidingWindowLimiter(
        settings.calls, settings.window, reserved=reserved_slots(settings.calls, POLL_SHARE)
    )
    client = EnrichmentClient(
        world["enrichment_url"],
        world["api_key"],
        limiter=limiter,
        backoff_base=settings.window / 20,
        backoff_cap=settings.window,
    )
    timed = TimedClient(client)
    connector = connector_for(config.sources[0])
    store = Store.open(config.state.url)
    ctx = Context(
        config=config,
        store=store,
        client=timed,
        connectors={"hubspot": connector},
        webhook_url=config.webhook.public_url,
    )
    daemon = Daemon(ctx, metrics=Metrics())
    try:
        daemon.start()
        time.sleep(settings.scaled(5))  # the backlog's submission is under way
        emulators.send("create")
        emulators.recv()
        emulators.send("created")  # answered once the last contact is created
        created = {i: datetime.fromisoformat(t) for i, t in emulators.recv().items()}
        if not created:  # the baseline: the backlog alone, for as long as the fresh run creates
            time.sleep(settings.scaled(120))
        deadline = time.monotonic() + settings.scaled(900)
        settled: dict[str, datetime] = {}
        while time.monotonic() < deadline and len(settled) < len(created):
            for record_id in created:
                row = store.ledger_row("hubspot", record_id)
                if row and row.outcome and not row.in_flight_batch_id:
                    settled[record_id] = row.updated_at
            time.sleep(0.2)
        while time.monotonic() < deadline and not all(r.finished_at for r in store.recent_runs()):
            time.sleep(0.2)  # the backlog's cycle submitted everything
    finally:
        daemon.request_stop("bench")
        daemon.wait()
        connector.close()
        client.close()
        store.close()
    return {
        "created": created,
        "settled": settled,
        "ends": timed.ends,
        "stages": stages(config.state.url, created),
    }


def stages(url: str, created: dict[str, datetime]) -> dict[str, float]:
    """Median scaled seconds of each step of a fresh contact: found, sent, result, written."""
    engine = create_engine(url)
    query = select(
        fresh_contacts.c.record_id,
        fresh_contacts.c.joined_at,
        batches.c.submitted_at,
        batches.c.received_at,
        batches.c.written_at,
    ).select_from(fresh_contacts.join(batches, batches.c.id == fresh_contacts.c.batch_id))
    steps: dict[str, list[float]] = {"found": [], "sent": [], "result": [], "written": []}
    with engine.connect() as conn:
        for record_id, joined, submitted, received, written in conn.execute(query):
            if record_id not in created or None in (submitted, received, written):
                continue
            points = [created[record_id], joined, submitted, received, written]
            for name, (a, b) in zip(steps, itertools.pairwise(points), strict=True):
                steps[name].append((b - a).total_seconds())
    engine.dispose()
    return {k: round(statistics.median(v), 3) for k, v in steps.items() if v}


def backlog_fraction(ends: list[tuple[int, float, int, str]], calls: int, window: float) -> float:
    """Backlog contacts per window over whole bursts of calls, over the ceiling (see docstring)."""
    backlog = [e for e in ends if e[3] == "backlog"]
    if len(backlog) < 2:
        return 0.0
    first_call = ends[0][0]
    first_end = ends[0][1]
    last_backlog_call = backlog[-1][0]
    last_call = first_call + calls * ((last_backlog_call - first_call) // calls)
    inside = [e for e in ends if first_call < e[0] <= last_call]
    if not inside:
        return 0.0
    span = inside[-1][1] - first_end
    contacts = sum(e[2] for e in inside if e[3] == "backlog")
    return contacts / (span / window) / (100 * calls)


def figures(raw: dict[str, Any], settings: Settings, api: dict[str, Any]) -> dict[str, Any]:
    created, settled = raw["created"], raw["settled"]
    latencies = sorted((settled[i] - created[i]).total_seconds() for i in created if i in settled)
    if not latencies:
        latencies = [0.0]
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, round(0.95 * len(latencies)) - 1)]
    fresh_posts = [e[1] for e in raw["ends"] if e[3] == "fresh"]
    gaps = [b - a for a, b in itertools.pairwise(fresh_posts)]
    backlog = sum(e[2] for e in raw["ends"] if e[3] == "backlog")
    s = settings.speedup
    return {
        "backlog_submitted": backlog,
        "fresh_created": len(created),
        "fresh_settled": len(latencies),
        "speedup": s,
        "p50_scaled_s": round(p50, 3),
        "p95_scaled_s": round(p95, 3),
        "max_s": round(latencies[-1] * s, 1),
        "fresh_posts": len(fresh_posts),
        "median_scaled_s_to_found_sent_result_written": raw["stages"],
        "fresh_post_min_gap_s": round(min(gaps) * s, 1) if gaps else None,
        **{k: v for k, v in api.items() if k != "message"},
        "p50_s": round(p50 * s, 1),
        "p95_s": round(p95 * s, 1),
        "contacts_per_minute_fraction": round(
            backlog_fraction(raw["ends"], settings.calls, settings.window), 3
        ),
    }


def run(settings: Settings, *, baseline: bool = True) -> dict[str, Any]:
    """The fresh run; with `baseline`, also the backlog alone (fresh lane off, nothing created)."""
    out = run_once(settings)
    if baseline:
        alone = run_once(replace(settings, fresh=0))
        out["baseline_fraction"] = alone["contacts_per_minute_fraction"]
        if alone["contacts_per_minute_fraction"]:
            ratio = out["contacts_per_minute_fraction"] / alone["contacts_per_minute_fraction"]
            out["fraction_of_baseline"] = round(ratio, 3)
    return out


def run_once(settings: Settings) -> dict[str, Any]:
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    child = spawn.Process(target=serve_world, args=(theirs, settings), daemon=True)
    child.start()
    try:
        if not ours.poll(300):
            raise RuntimeError("the emulators did not start within 300 s")
        world = ours.recv()
        with tempfile.TemporaryDirectory(prefix="crm-sync-bench-fresh-") as state_dir:
            raw = run_daemon(world, settings, Path(state_dir), ours)
        ours.send("stats")
        api = ours.recv()
        ours.send("stop")
    finally:
        child.join(10)
        if child.is_alive():
            child.terminate()
    return figures(raw, settings, api)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--contacts", type=int, default=12_700, help="HubSpot portal size")
    parser.add_argument("--fresh", type=int, default=200, help="contacts created meanwhile")
    parser.add_argument("--calls", type=int, default=6, help="enrichment calls per window")
    parser.add_argument("--window", type=float, default=1.0, help="window, in seconds")
    parser.add_argument("--enrichment-seconds", type=float, default=5.0, help="real seconds")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the run of the backlog alone"
    )
    args = parser.parse_args(argv)
    configure_logging(level="WARNING")
    settings = Settings(args.contacts, args.fresh, args.calls, args.window, args.enrichment_seconds)
    out = run(settings, baseline=not args.no_baseline)
    print(f"settings: {json.dumps(asdict(settings))}")
    print(
        f"{out['fresh_settled']} of {out['fresh_created']} new contacts settled: p50 "
        f"{out['p50_s']} s, p95 {out['p95_s']} s (real seconds; target p95 <= 120)"
    )
    print(
        f"backlog: {out['backlog_submitted']} contacts submitted at "
        f"{out['contacts_per_minute_fraction']} of the ceiling (target >= 0.95); "
        f"{out['fresh_posts']} fresh POSTs, closest {out['fresh_post_min_gap_s']} s apart; "
        f"the backlog alone: {out.get('baseline_fraction')}"
    )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
