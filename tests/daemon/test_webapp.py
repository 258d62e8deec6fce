"""The webhook receiver, /healthz, /readyz and /metrics over a real loopback socket."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from crm_sync.config import Config
from crm_sync.daemon.webapp import Hooks, build_app
from crm_sync.enrichment.models import EnrichmentResult
from crm_sync.enrichment.signature import SIGNATURE_HEADER, sign
from crm_sync.http_server import BackgroundServer
from crm_sync.outputs.metrics import Metrics
from crm_sync.pipeline.context import Context
from crm_sync.store.store import Store
from tests.daemon.conftest import API_KEY, SOURCE, make_config
from tests.support.daemon_app import IdleClient, result_payload, seed_submitted_batch, signed
from tests.support.dialects import both_api_versions, to_wire  # noqa: F401 - receiver tests in v1 and v2

PATH = "/webhooks/enrichment"
IDS = ["r1", "r2", "r3"]


class Served:
    """A running app, its client, and what its hooks saw."""

    def __init__(self, ctx: Context, metrics: Metrics) -> None:
        self.woken = threading.Event()
        self.scheduler_running = True
        hooks = Hooks(ready=lambda: self.scheduler_running, on_stored=self.woken.set)
        self.server = BackgroundServer(build_app(ctx, metrics, hooks)).start()
        self.http = httpx.Client(base_url=self.server.url, timeout=10, trust_env=False)

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.http.post(PATH, content=body, headers=headers)

    def close(self) -> None:
        self.http.close()
        self.server.stop()


@pytest.fixture
def served(ctx: Context, metrics: Metrics) -> Iterator[Served]:
    """The daemon's app on 127.0.0.1 with a real store behind it."""
    app = Served(ctx, metrics)
    yield app
    app.close()


@pytest.fixture
def batch_id(store: Store) -> str:
    """A submitted batch known to the store as enrichment id `e-1`."""
    return seed_submitted_batch(store, source=SOURCE, enrichment_id="e-1", record_ids=IDS).id


def _signature_cases(api_version: str) -> list[tuple[str, bytes, dict[str, str], int]]:
    raw, good = signed(to_wire(api_version, result_payload("e-1", IDS, source=SOURCE)), API_KEY)
    flipped = bytearray(raw)
    flipped[raw.index(b"r2")] = ord("x")  # one byte of the body changed
    respaced = json.dumps(json.loads(raw), indent=2).encode()
    ctype = {"Content-Type": "application/json"}
    return [
        ("missing header", raw, ctype, 401),
        ("wrong key", raw, {**ctype, SIGNATURE_HEADER: sign(raw, "another-key-xyz")}, 401),
        ("one byte changed", bytes(flipped), good, 401),
        ("re-serialised", respaced, good, 401),
        ("garbage header", raw, {**ctype, SIGNATURE_HEADER: "zz"}, 401),
        ("valid", raw, good, 200),
    ]


def test_signature_matrix_is_classified_exactly(
    served: Served, store: Store, batch_id: str, api_version: str
) -> None:
    """Each tampered or unsigned delivery gets 401 and changes nothing; the valid one gets 200."""
    for name, body, headers, expected in _signature_cases(api_version):
        response = served.post(body, headers)
        assert response.status_code == expected, name
        batch = store.get_batch(batch_id)
        assert batch is not None
        if expected == 401:
            assert batch.state == "submitted", name
            assert store.webhook_events("e-1") == [], name
    batch = store.get_batch(batch_id)
    assert batch is not None
    assert batch.state == "received"
    assert batch.result_source == "webhook"
    assert served.woken.is_set()


def test_unsigned_accepted_when_signature_not_required(
    tmp_path_factory: pytest.TempPathFactory, metrics: Metrics
) -> None:
    """With require_signature false, an unsigned delivery is stored."""

    config = make_config(tmp_path_factory.mktemp("nosig"), webhook={"require_signature": False})
    store = Store.open(config.state.url)
    try:
        seed_submitted_batch(store, source=SOURCE, enrichment_id="e-9", record_ids=IDS)
        ctx = Context(config=config, store=store, client=IdleClient(), connectors={})
        app = Served(ctx, metrics)
        try:
            body = json.dumps(result_payload("e-9", IDS, source=SOURCE)).encode()
            assert app.post(body, {"Content-Type": "application/json"}).status_code == 200
        finally:
            app.close()
        batch = store.batch_by_enrichment_id("e-9")
        assert batch is not None
        assert batch.state == "received"
    finally:
        store.close()


def test_over_the_cap_is_413_by_header_and_by_stream(
    served: Served, store: Store, batch_id: str
) -> None:
    """A body over max_body_bytes is refused, whether declared or only streamed."""
    payload = result_payload("e-1", IDS, source=SOURCE)
    payload["padding"] = "x" * 70_000
    raw, headers = signed(payload, API_KEY)
    assert served.post(raw, headers).status_code == 413

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(raw), 8192):
            yield raw[start : start + 8192]

    streamed = served.http.post(PATH, content=chunks(), headers=headers)
    assert streamed.status_code == 413
    batch = store.get_batch(batch_id)
    assert batch is not None
    assert batch.state == "submitted"


@pytest.mark.parametrize(
    ("label", "body"),
    [
        ("not json", b"{not json"),
        ("array", b"[1, 2]"),
        ("no id", json.dumps({"status": "FINISHED", "datas": []}).encode()),
        ("not terminal", json.dumps({"id": "e-1", "status": "IN_PROGRESS"}).encode()),
        ("bad datas", json.dumps({"id": "e-1", "status": "FINISHED", "datas": 5}).encode()),
        ("not utf-8", b"\xff\xfe{}"),
    ],
)
def test_malformed_body_is_400(
    served: Served, store: Store, batch_id: str, label: str, body: bytes
) -> None:
    """A signed body that is not a terminal result is refused with 400 and stores nothing."""
    raw, headers = signed(body, API_KEY)
    assert served.post(raw, headers).status_code == 400, label
    batch = store.get_batch(batch_id)
    assert batch is not None
    assert batch.state == "submitted"


def test_six_deliveries_two_concurrent_store_once(
    served: Served, store: Store, batch_id: str, metrics: Metrics, api_version: str
) -> None:
    """One result delivered six times, two at once, is stored once and acknowledged each time."""
    raw, headers = signed(to_wire(api_version, result_payload("e-1", IDS, source=SOURCE)), API_KEY)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first_two = list(pool.map(lambda _: served.post(raw, headers), range(2)))
    rest = [served.post(raw, headers) for _ in range(4)]
    answers = [r.json()["outcome"] for r in first_two + rest]
    assert all(r.status_code == 200 for r in first_two + rest)
    assert answers.count("stored") == 1
    assert answers.count("duplicate") == 5
    batch = store.get_batch(batch_id)
    assert batch is not None
    assert batch.state == "received"
    assert _sample(metrics, "crm_sync_webhooks_total", outcome="stored") == 1
    assert _sample(metrics, "crm_sync_webhooks_total", outcome="duplicate") == 5


def test_unknown_enrichment_id_is_acknowledged_and_kept(
    served: Served, store: Store, api_version: str
) -> None:
    """A result for an id no batch carries is answered 200 only once kept (internal shape)."""
    internal = result_payload("e-unknown", IDS, source=SOURCE)
    raw, headers = signed(to_wire(api_version, internal), API_KEY)
    response = served.post(raw, headers)
    assert response.status_code == 200
    assert response.json()["outcome"] == "kept"
    assert store.batch_by_enrichment_id("e-unknown") is None
    [kept] = store.early_results()
    assert kept.enrichment_id == "e-unknown"
    emails = [
        i.contact.most_probable_email
        for i in EnrichmentResult.model_validate_json(kept.raw_result).datas
    ]
    assert emails == [f"{rid}@example.com" for rid in IDS]
    assert not served.woken.is_set()
    again = served.post(raw, headers)
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")


def test_health_and_readiness(served: Served) -> None:
    """/healthz is 200 always; /readyz is 503 while the scheduler is not running."""
    assert served.http.get("/healthz").status_code == 200
    assert served.http.get("/readyz").status_code == 200
    served.scheduler_running = False
    assert served.http.get("/readyz").status_code == 503
    assert served.http.get("/healthz").status_code == 200


def test_readyz_is_503_when_the_store_is_unreachable(
    tmp_path: Path, config: Config, metrics: Metrics
) -> None:
    """Once the database file's directory is gone, /readyz says the store is down."""
    folder = tmp_path / "db"
    folder.mkdir()
    store = Store.open(f"sqlite:///{folder / 'state.sqlite3'}")
    ctx = Context(config=config, store=store, client=IdleClient(), connectors={})
    app = Served(ctx, metrics)
    try:
        assert app.http.get("/readyz").status_code == 200
        store.close()
        shutil.rmtree(folder)
        ready = app.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"store": False, "scheduler": True}
        assert app.http.get("/healthz").status_code == 200
    finally:
        app.close()


def test_metrics_endpoint_parses(served: Served, batch_id: str) -> None:
    """/metrics is Prometheus text that prometheus-client's own parser reads."""
    raw, headers = signed(result_payload("e-1", IDS, source=SOURCE), API_KEY)
    served.post(raw, headers)
    text = served.http.get("/metrics").text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert "crm_sync_webhooks" in names
    assert API_KEY not in text


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
