"""Webhook receiver benchmark: signed 100-contact results at 50 a second for 20 seconds.

The daemon's Starlette app runs on a real loopback socket with a SQLite store in a temporary
directory; every batch is first taken to `submitted` through the store API, as the submit stage
would. Each delivery's ack latency is measured; afterwards every acknowledged result must be
`received` in the store. The last line printed is one JSON object:
    {"ack_p50_ms": ..., "ack_p99_ms": ..., "lost": ...}
where lost = acknowledged but not received + answers that were not 2xx. Target: p99 <= 50 ms.

    python bench/webhook.py [--rate 50] [--seconds 20] [--contacts 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crm_sync.config import parse_config  # noqa: E402
from crm_sync.daemon.webapp import Hooks, build_app  # noqa: E402
from crm_sync.http_server import BackgroundServer  # noqa: E402
from crm_sync.logs import configure_logging  # noqa: E402
from crm_sync.outputs.metrics import Metrics  # noqa: E402
from crm_sync.pipeline.context import Context  # noqa: E402
from crm_sync.store.store import Store  # noqa: E402
from tests.support.daemon_app import (  # noqa: E402
    IdleClient,
    result_payload,
    seed_submitted_batch,
    signed,
)

API_KEY = "bench-key-0123456789"
SOURCE = "bench"
PATH = "/webhooks/enrichment"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _seed(store: Store, total: int, contacts: int) -> list[tuple[bytes, dict[str, str]]]:
    """`total` submitted batches and the signed body the API would deliver for each."""
    bodies = []
    for n in range(total):
        ids = [f"c{n}-{i}" for i in range(contacts)]
        seed_submitted_batch(store, source=SOURCE, enrichment_id=f"e-{n}", record_ids=ids)
        bodies.append(signed(result_payload(f"e-{n}", ids, source=SOURCE), API_KEY))
    return bodies


def _post(http: httpx.Client, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        status = http.post(PATH, content=body, headers=headers).status_code
    except httpx.HTTPError:
        status = 0
    return status, (time.perf_counter() - started) * 1000


def _fire(
    url: str, bodies: list[tuple[bytes, dict[str, str]]], rate: float
) -> list[tuple[int, float]]:
    """Send each body at its own slot (i / rate seconds from the start), in parallel."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with (
        httpx.Client(base_url=url, timeout=30, trust_env=False, limits=limits) as http,
        ThreadPoolExecutor(max_workers=32) as pool,
    ):
        futures: list[Future[tuple[int, float]]] = []
        start = time.perf_counter()
        for i, (body, headers) in enumerate(bodies):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(_post, http, body, headers))
        return [f.result() for f in futures]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--contacts", type=int, default=100)
    args = parser.parse_args()
    configure_logging(json=True, level="WARNING")  # one line per delivery would skew the figures
    total = int(args.rate * args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(
            {
                "enrichment": {"api_key": API_KEY, "base_url": "http://127.0.0.1:9"},
                "state": {"url": f"sqlite:///{Path(tmp) / 'state.sqlite3'}"},
            },
            env={},
        )
        store = Store.open(config.state.url)
        seeded = time.perf_counter()
        bodies = _seed(store, total, args.contacts)
        print(f"seeded {total} submitted batches in {time.perf_counter() - seeded:.1f}s")
        ctx = Context(config=config, store=store, client=IdleClient(), connectors={})
        woken = threading.Event()
        app = build_app(ctx, Metrics(), Hooks(ready=lambda: True, on_stored=woken.set))
        with BackgroundServer(app) as server:
            answers = _fire(server.url, bodies, args.rate)
        acked = {f"e-{n}" for n, (status, _) in enumerate(answers) if 200 <= status < 300}
        not_2xx = len(answers) - len(acked)
        missing = 0
        for enrichment_id in acked:
            batch = store.batch_by_enrichment_id(enrichment_id)
            missing += batch is None or batch.state != "received"
        store.close()
    latencies = [ms for _, ms in answers]
    print(
        f"{len(answers)} deliveries of {args.contacts} contacts at {args.rate}/s: "
        f"mean {statistics.fmean(latencies):.1f} ms, max {max(latencies):.1f} ms, "
        f"non-2xx {not_2xx}, acknowledged but not stored {missing}"
    )
    result = {
        "ack_p50_ms": round(_percentile(latencies, 0.50), 2),
        "ack_p99_ms": round(_percentile(latencies, 0.99), 2),
        "lost": missing + not_2xx,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
