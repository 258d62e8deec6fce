"""Benchmark: a HubSpot backlog through the whole pipeline, against the emulators.

One `run_cycle` (select, plan, submit every batch, then poll and write back) over a HubSpot
portal of N contacts (default 10,000), with a SQLite store in a temporary folder. The three
emulators run in a *child process* (multiprocessing, spawn) so that the CPU time and the peak
RSS measured here are the pipeline's alone; their counters come back over a pipe at the end.

Time scaling. The enrichment API allows 60 calls a minute, i.e. 100 x 60 = 6,000 contacts a
minute. Here the emulator allows `--calls` calls per `--window` seconds (default 6 per 1.0 s:
the same ratio of calls to seconds as 60 per 10 s, a clock 6x faster than the real one) and the
client gets a `SlidingWindowLimiter` with the same limit, built here rather than from config
(`rate_limit_per_minute` is per minute). The HubSpot emulator's limits (100 calls per 10 s, 5
searches a second) and the connector's throttle are sped up by the same factor. Few calls per
window keep the first window's free burst small: with 60 calls per window, a 10,000-contact run
(100 POSTs) would fit in under two windows and measure the burst, not the pipeline.

Definitions (the last line printed is one JSON object):

    ceiling_per_window           = 100 * calls                 (the "6,000 a minute", scaled)
    span                         = end of the run's first API call (the credits GET, which
                                   starts the limiter's clock) -> end of API call 1 + calls * m,
                                   m the most whole windows' worth of calls the submit phase made
    span_contacts                = contacts in the POSTs among API calls 2 .. 1 + calls * m
    contacts_per_minute_fraction = span_contacts / (span / window) / ceiling
    enrichment_calls_per_100     = every enrichment HTTP attempt (credits, POSTs, GETs) per 100
                                   contacts submitted
    crm_calls_per_100            = every HubSpot API attempt (search, read, write) per 100
                                   contacts submitted
    cpu_ms_per_contact           = user+system CPU of this process during run_cycle / contacts
                                   submitted
    peak_rss_mb                  = ru_maxrss of this process (the emulators live elsewhere)

Why that span: the limiter lets `calls` calls through at once and then one more only `window`
seconds after an earlier one ended, so calls leave in bursts of `calls`. Measured over whole
bursts the rate of a pipeline that never keeps the limiter waiting is exactly the ceiling (less
the POST's own latency, about 0.5%); the free first burst and the partial last one would
otherwise lift or lower a short run by up to `calls / POSTs` (7% at 10,000 contacts). Every
delay of the pipeline between two POSTs (search, store, building requests) stretches the span.
The result GETs share the limit but come after the submit phase (`run_cycle` submits every
batch, then collects), so they do not count here. The whole-run rate (all contacts over the
whole cycle, polling and write-back included) is printed on a separate human line and in the
JSON as `whole_run_fraction`.

"N contacts" is the size of the HubSpot portal; the backlog is those missing an email or a
phone and with enough identity to ask about (about 79% of the generated people): figures per
contact are per contact submitted.

Run: `python bench/pipeline.py [--contacts 10000] [--calls 6] [--window 1.0] [--api-version v2]`.
The same world and limits serve both API versions, so v1 and v2 figures compare directly.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crm_sync.config import Config, parse_config
from crm_sync.enrichment.client import EnrichmentClient
from crm_sync.enrichment.models import BulkRequest, EnrichmentResult
from crm_sync.enrichment.ratelimit import SlidingWindowLimiter
from crm_sync.logs import configure_logging
from crm_sync.pipeline.context import Context
from crm_sync.pipeline.cycle import run_cycle
from crm_sync.store.store import Store
from crm_sync.wiring import connector_for

REAL_CALLS_PER_SECOND = 1.0  # the API's 60 calls a minute


@dataclass(frozen=True)
class Settings:
    contacts: int
    calls: int
    window: float
    completion_delay: float
    api_version: str = "v1"
    lenient_input: bool = False  # the emulator accepts a LinkedIn URL alone (FullEnrich's docs)

    @property
    def speedup(self) -> float:
        """How much faster than real time the scaled clock runs."""
        return self.calls / self.window / REAL_CALLS_PER_SECOND


def serve_world(conn: Connection, settings: Settings) -> None:
    """Child process: run the emulators, send their addresses, answer "stats", stop on "stop"."""
    from crm_sync.sandbox.world import SandboxWorld, WorldOptions

    configure_logging(level="WARNING")
    options = WorldOptions(
        hubspot_contacts=settings.contacts,
        salesforce_contacts=0,
        completion_delay=settings.completion_delay,
        api_version=settings.api_version,
        rate_limit_calls=settings.calls,
        rate_limit_window=settings.window,
        enrichment_kwargs={"strict_input": not settings.lenient_input},
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
        while (message := conn.recv()) != "stop":
            subs = world.enrichment.submissions_per_contact()
            conn.send(
                {
                    "max_calls_in_any_window": world.enrichment.max_calls_in_any_window(
                        settings.window
                    ),
                    "resubmitted_contacts": sum(1 for n in subs.values() if n > 1),
                    "contacts_seen_by_api": len(subs),
                    "hubspot_calls_seen": sum(world.hubspot.calls.values()),
                    "message": message,
                }
            )


class TimedClient:
    """The real client, noting when each credits call and POST ended (the submit phase)."""

    def __init__(self, client: EnrichmentClient) -> None:
        self.client = client
        self.ends: list[tuple[int, float, int]] = []  # (API calls made so far, end, contacts)

    def _ended(self, contacts: int) -> None:
        self.ends.append((self.client.stats.total_calls, time.monotonic(), contacts))

    def credits(self) -> int:
        balance = self.client.credits()
        self._ended(0)
        return balance

    def submit(self, request: BulkRequest, **hooks: Any) -> str:
        enrichment_id = self.client.submit(request, **hooks)
        self._ended(len(request.datas))
        return enrichment_id

    def get_result(self, enrichment_id: str, *, force_results: bool = False) -> EnrichmentResult:
        return self.client.get_result(enrichment_id, force_results=force_results)


def make_config(world: dict[str, Any], settings: Settings, state_dir: Path) -> Config:
    """HubSpot only, a throttle sped up like the emulator, polling paced for the scaled clock."""
    source = world["hubspot"]
    source["settings"]["requests_per_second"] = 9 * settings.speedup
    return parse_config(
        {
            "enrichment": {
                "provider": "fullenrich",
                "api_version": settings.api_version,
                "base_url": world["enrichment_url"],
                "api_key": world["api_key"],
            },
            "state": {"url": f"sqlite:///{state_dir / 'state.sqlite3'}"},
            "run": {
                "poll_initial_seconds": settings.completion_delay * 1.5,
                "poll_max_seconds": settings.window,
            },
            "sources": [source],
        },
        env={},
    )


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_pipeline(world: dict[str, Any], settings: Settings, state_dir: Path) -> dict[str, Any]:
    """One cycle on a fresh store; returns the raw measurements."""
    config = make_config(world, settings, state_dir)
    client = EnrichmentClient(
        world["enrichment_url"],
        world["api_key"],
        limiter=SlidingWindowLimiter(settings.calls, settings.window),
        backoff_base=settings.window / 20,
        backoff_cap=settings.window,
        api_version=settings.api_version,
    )
    timed = TimedClient(client)
    connector = connector_for(config.sources[0])
    store = Store.open(config.state.url)
    ctx = Context(config=config, store=store, client=timed, connectors={"hubspot": connector})
    try:
        cpu0, started = cpu_seconds(), time.monotonic()
        report = run_cycle(ctx, wait=True)
        elapsed, cpu = time.monotonic() - started, cpu_seconds() - cpu0
    finally:
        connector.close()
        client.close()
        store.close()
    counts = report.sources[0].counts
    return {
        "started": started,
        "elapsed": elapsed,
        "cpu": cpu,
        "ends": timed.ends,
        "enrichment_calls": client.stats.total_calls,
        "rate_limited": sum(client.stats.rate_limited.values()),
        "crm_calls": sum(connector.calls.counts.values()),
        "crm_calls_by_kind": dict(connector.calls.counts),
        "submitted": counts.submitted,
        "written": counts.emails_written + counts.phones_written,
        "exit_code": report.exit_code,
        "pending_batches": report.pending_batches,
    }


def whole_bursts(ends: list[tuple[int, float, int]], calls: int) -> tuple[float, int]:
    """(span in seconds, contacts POSTed in it): from the first call's end over whole bursts."""
    if len(ends) < 2:
        return 0.0, 0
    first_call, first_end, _ = ends[0]
    last_call = first_call + calls * ((ends[-1][0] - first_call) // calls)
    inside = [(end, contacts) for call, end, contacts in ends if first_call < call <= last_call]
    if not inside:
        return 0.0, 0
    return inside[-1][0] - first_end, sum(contacts for _, contacts in inside)


def figures(raw: dict[str, Any], settings: Settings, api: dict[str, Any]) -> dict[str, Any]:
    """The JSON figures from the raw measurements (definitions in the module docstring)."""
    n = max(raw["submitted"], 1)
    ceiling = 100 * settings.calls
    span, span_contacts = whole_bursts(raw["ends"], settings.calls)
    fraction = span_contacts / (span / settings.window) / ceiling if span > 0 else 0.0
    submit_seconds = raw["ends"][-1][1] - raw["started"] if raw["ends"] else 0.0
    whole = raw["submitted"] / (raw["elapsed"] / settings.window) / ceiling
    return {
        "contacts": settings.contacts,
        "api_version": settings.api_version,
        "submitted": raw["submitted"],
        "values_written": raw["written"],
        "exit_code": raw["exit_code"],
        "pending_batches": raw["pending_batches"],
        "calls_allowed_per_window": settings.calls,
        "window_seconds": settings.window,
        "ceiling_per_window": ceiling,
        "submit_seconds": round(submit_seconds, 3),
        "elapsed_seconds": round(raw["elapsed"], 3),
        "measured_span_seconds": round(span, 3),
        "measured_span_contacts": span_contacts,
        "whole_run_fraction": round(whole, 3),
        "rate_limited": raw["rate_limited"],
        "crm_calls_by_kind": raw["crm_calls_by_kind"],
        **{k: v for k, v in api.items() if k != "message"},
        "contacts_per_minute_fraction": round(fraction, 3),
        "enrichment_calls_per_100": round(100 * raw["enrichment_calls"] / n, 3),
        "crm_calls_per_100": round(100 * raw["crm_calls"] / n, 3),
        "cpu_ms_per_contact": round(1000 * raw["cpu"] / n, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def run(settings: Settings) -> dict[str, Any]:
    """Start the emulators in a child process, run one cycle here, gather both sides' figures."""
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    child = spawn.Process(target=serve_world, args=(theirs, settings), daemon=True)
    child.start()
    try:
        if not ours.poll(300):
            raise RuntimeError("the emulators did not start within 300 s")
        world = ours.recv()
        with tempfile.TemporaryDirectory(prefix="crm-sync-bench-") as state_dir:
            raw = run_pipeline(world, settings, Path(state_dir))
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
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=6, help="enrichment calls per window")
    parser.add_argument("--window", type=float, default=1.0, help="window, in seconds")
    parser.add_argument("--completion-delay", type=float, default=0.2)
    parser.add_argument(
        "--api-version", choices=("v1", "v2"), default="v1", help="the API dialect to speak"
    )
    parser.add_argument(
        "--lenient-input",
        action="store_true",
        help="the enrichment emulator accepts a LinkedIn URL alone (default: strict, which "
        "costs the run one refused POST before crm-sync applies the stricter rule)",
    )
    args = parser.parse_args(argv)
    configure_logging(level="WARNING")
    settings = Settings(
        args.contacts,
        args.calls,
        args.window,
        args.completion_delay,
        args.api_version,
        args.lenient_input,
    )
    out = run(settings)
    print(f"settings: {json.dumps(asdict(settings))}")
    print(
        f"{out['submitted']} contacts submitted in {out['submit_seconds']} s, whole cycle "
        f"{out['elapsed_seconds']} s; {out['values_written']} values written"
    )
    print(
        f"submit phase: {out['contacts_per_minute_fraction']} of the ceiling; whole run "
        f"(polling and write-back included): {out['whole_run_fraction']} of the ceiling"
    )
    print(
        f"429 answers: {out['rate_limited']}; most calls the API saw in one window: "
        f"{out['max_calls_in_any_window']}; contacts sent twice: {out['resubmitted_contacts']}"
    )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
