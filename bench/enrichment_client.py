"""Benchmark: how close does the client get to the enrichment API's contact ceiling?

Pushes N contacts (default 10,000), 100 per POST, through `EnrichmentClient` against the
enrichment emulator on a real loopback socket, fetching every result by polling. Time is
scaled: the emulator allows `--calls` calls per `--window` seconds (default 60 per 1.0 s, i.e.
the real 60 per minute with one "minute" lasting one second), and the client's limiter is set to
the same limit, so the client should never see a 429.

Definition of the figure printed last (one JSON object):

    contacts_per_window          = contacts_submitted / (elapsed_seconds / window_seconds)
    ceiling_per_window           = 100 * calls_allowed_per_window         (6,000 "per minute")
    contacts_per_minute_fraction = contacts_per_window / ceiling_per_window

`elapsed_seconds` runs from the first POST to the last terminal result. Only contacts carried by
POSTs count in the numerator, but every call (POSTs *and* the GETs that fetch results) counts
against the shared limit, so with one GET per batch the steady-state bound is
`post_calls / calls` (about 0.5); the first window's burst of free calls lifts a short run
slightly above that bound. Webhooks instead of polling would lift the bound towards 1.0.

The emulator's listening socket gets TCP_NODELAY here: without it, uvicorn on a socket handed
over by `BackgroundServer` answers each keep-alive request about 40 ms late (Nagle against
delayed ACK), which measures the emulator, not the client.

Run: `python bench/enrichment_client.py [--contacts 10000] [--calls 60] [--window 1.0]`.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crm_sync.enrichment.client import EnrichmentClient
from crm_sync.enrichment.models import BulkRequest, ContactRequest, EnrichmentResult
from crm_sync.enrichment.ratelimit import SlidingWindowLimiter
from crm_sync.http_server import BackgroundServer
from crm_sync.logs import configure_logging
from crm_sync.sandbox.enrichment import EnrichmentEmulator

FIRST = ["Ada", "Alan", "Grace", "Linus", "Barbara", "Ken", "Radia", "Edsger", "Hedy", "Tim"]
DOMAINS = ["example.com", "acme.test", "initech.test", "globex.test", "umbrella.test"]


@dataclass(frozen=True)
class Settings:
    contacts: int
    calls: int
    window: float
    completion_delay: float
    workers: int


def batches(total: int, size: int = 100) -> list[BulkRequest]:
    """Deterministic, distinct contacts, cut into bulks of `size`."""
    out: list[BulkRequest] = []
    for start in range(0, total, size):
        datas = [
            ContactRequest(
                firstname=FIRST[i % len(FIRST)],
                lastname=f"Bench{i}",
                domain=DOMAINS[i % len(DOMAINS)],
                custom={"crm_id": str(i)},
            )
            for i in range(start, min(total, start + size))
        ]
        out.append(BulkRequest(name=f"bench-{start // size}", datas=datas))
    return out


def enrich(client: EnrichmentClient, request: BulkRequest, first_poll: float) -> EnrichmentResult:
    """One batch: POST, wait for the expected completion, then poll until terminal."""
    enrichment_id = client.submit(request)
    time.sleep(first_poll)
    while True:
        result = client.get_result(enrichment_id)
        if result.status.is_terminal:
            return result
        time.sleep(first_poll / 4)


def run(settings: Settings) -> dict[str, object]:
    emulator = EnrichmentEmulator(
        rate_limit_calls=settings.calls,
        rate_limit_window=settings.window,
        completion_delay=settings.completion_delay,
    )
    server = BackgroundServer(emulator.app)
    server.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    requests = batches(settings.contacts)
    limiter = SlidingWindowLimiter(settings.calls, settings.window)
    with server:
        client = EnrichmentClient(
            f"{server.url}/api/v1",
            "sandbox-enrichment-key",
            limiter=limiter,
            max_retries=20,
            backoff_base=settings.window / 20,
            backoff_cap=settings.window,
            rng=random.Random(0),
        )
        first_poll = settings.completion_delay * 1.1
        started = time.monotonic()
        with client, ThreadPoolExecutor(settings.workers) as pool:
            results = list(pool.map(lambda r: enrich(client, r, first_poll), requests))
        elapsed = time.monotonic() - started
    stats = client.stats
    contacts = sum(len(r.datas) for r in requests)
    posts, calls = stats.calls["submit"], stats.total_calls
    per_window = contacts / (elapsed / settings.window)
    ceiling = 100 * settings.calls
    return {
        "contacts": contacts,
        "results": sum(len(r.datas) for r in results),
        "elapsed_seconds": round(elapsed, 3),
        "window_seconds": settings.window,
        "calls_allowed_per_window": settings.calls,
        "calls": calls,
        "post_calls": posts,
        "get_calls": stats.calls["result"],
        "rate_limited": sum(stats.rate_limited.values()),
        "max_calls_in_any_window": emulator.max_calls_in_any_window(settings.window),
        "contacts_per_window": round(per_window, 1),
        "ceiling_per_window": ceiling,
        "steady_state_bound": round(posts / calls, 3),
        "contacts_per_minute_fraction": round(per_window / ceiling, 3),
        "resubmitted_contacts": sum(
            1 for n in emulator.submissions_per_contact().values() if n > 1
        ),
        "limiter_wait_seconds": round(limiter.waited, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=60, help="calls allowed per window")
    parser.add_argument("--window", type=float, default=1.0, help="scaled minute, in seconds")
    parser.add_argument("--completion-delay", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args(argv)
    configure_logging(level="WARNING")
    settings = Settings(args.contacts, args.calls, args.window, args.completion_delay, args.workers)
    figures = run(settings)
    print(
        f"{figures['contacts']} contacts in {figures['post_calls']} POSTs + "
        f"{figures['get_calls']} GETs, {figures['elapsed_seconds']} s "
        f"({settings.calls} calls per {settings.window} s window)"
    )
    print(
        f"{figures['contacts_per_window']} contacts per window of a {figures['ceiling_per_window']}"
        f" ceiling; bound with polling {figures['steady_state_bound']}"
    )
    print(
        f"429 answers: {figures['rate_limited']}; most calls the API saw in one window: "
        f"{figures['max_calls_in_any_window']}; contacts sent twice: "
        f"{figures['resubmitted_contacts']}"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
