"""The webhook receiver configured for v2: batch bodies, per-contact events, signatures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crm_sync.enrichment.models import EnrichmentResult
from crm_sync.outputs.metrics import Metrics
from crm_sync.pipeline.context import Context
from crm_sync.store.records import PlannedContact
from crm_sync.store.store import Store
from tests.daemon.conftest import API_KEY, SOURCE, make_config
from tests.daemon.test_webapp import IDS, PATH, Served
from tests.support.daemon_app import IdleClient, seed_submitted_batch, signed
from tests.support.dialects import wire_item, wire_result

CONTACT_PATH = f"{PATH}/contact"


@pytest.fixture
def v2(tmp_path: Path, metrics: Metrics) -> Iterator[tuple[Served, Store]]:
    """A v2 receiver asking for per-contact events, and a submitted batch `e-1` of IDS."""
    config = make_config(
        tmp_path, enrichment={"api_version": "v2", "webhook_events": ["contact_finished"]}
    )
    store = Store.open(config.state.url)
    seed_submitted_batch(store, source=SOURCE, enrichment_id="e-1", record_ids=IDS)
    app = Served(Context(config=config, store=store, client=IdleClient(), connectors={}), metrics)
    yield app, store
    app.close()
    store.close()


def _item(rid: str, email: str | None = None) -> dict[str, Any]:
    return wire_item("v2", {"crm_id": rid, "source": SOURCE}, email or f"{rid}@example.com")


def test_v2_batch_webhook_is_stored_in_the_internal_shape(v2: tuple[Served, Store]) -> None:
    """A signed v2 body is mapped (data, contact_info) before it is stored."""
    served, store = v2
    body, headers = signed(wire_result("v2", "e-1", [_item(r) for r in IDS]), API_KEY)
    assert served.post(body, headers).status_code == 200
    batch = store.batch_by_enrichment_id("e-1")
    assert batch is not None
    assert batch.state == "received"
    result = EnrichmentResult.model_validate_json(batch.raw_result or "{}")
    assert [i.contact.most_probable_email for i in result.datas] == [
        f"{r}@example.com" for r in IDS
    ]


def test_a_v1_body_to_a_v2_receiver_is_refused(v2: tuple[Served, Store]) -> None:
    """The configuration decides the dialect: a v1-shaped body is not read as v1."""
    served, store = v2
    items = [wire_item("v1", {"crm_id": r, "source": SOURCE}, f"{r}@x.io") for r in IDS]
    body, headers = signed(wire_result("v1", "e-1", items), API_KEY)
    response = served.post(body, headers)
    assert response.status_code == 400
    batch = store.batch_by_enrichment_id("e-1")
    assert batch is not None
    assert batch.state == "submitted"


@pytest.mark.parametrize("style", ["record", "envelope"])
def test_contact_event_is_stored_for_its_contact(v2: tuple[Served, Store], style: str) -> None:
    """Either reading of the docs (bare record, or the envelope with one item) is stored once."""
    served, store = v2
    event: dict[str, Any] = _item("r2")
    if style == "envelope":
        event = wire_result("v2", "e-1", [event], status="IN_PROGRESS")
    body, headers = signed(event, API_KEY)
    first = served.http.post(CONTACT_PATH, content=body, headers=headers)
    again = served.http.post(CONTACT_PATH, content=body, headers=headers)
    assert first.json()["outcome"] == "stored"
    assert again.json()["outcome"] == "duplicate"
    batch = store.batch_by_enrichment_id("e-1")
    assert batch is not None
    stored = store.contact_results.items(batch.id)
    assert [json.loads(i)["contact"]["most_probable_email"] for i in stored] == ["r2@example.com"]
    assert batch.state == "submitted"  # the batch goes on: two contacts are not settled
    assert served.woken.is_set()


def test_contact_event_signature_is_checked(v2: tuple[Served, Store]) -> None:
    """Unsigned or wrongly signed per-contact events are refused before the store."""
    served, store = v2
    body, headers = signed(_item("r1"), "another-key-xyz")
    assert served.http.post(CONTACT_PATH, content=body, headers=headers).status_code == 401
    unsigned = {"Content-Type": "application/json"}
    assert served.http.post(CONTACT_PATH, content=body, headers=unsigned).status_code == 401
    batch = store.batch_by_enrichment_id("e-1")
    assert batch is not None
    assert store.contact_results.items(batch.id) == []


def test_contact_event_for_no_known_contact_is_acknowledged(v2: tuple[Served, Store]) -> None:
    """An event for a contact we do not hold in flight is acknowledged and changes nothing."""
    served, _ = v2
    body, headers = signed(_item("not-ours"), API_KEY)
    response = served.http.post(CONTACT_PATH, content=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["outcome"] == "unknown"


def test_unreadable_contact_event_is_400(v2: tuple[Served, Store]) -> None:
    served, _ = v2
    body, headers = signed(b"[1, 2", API_KEY)
    assert served.http.post(CONTACT_PATH, content=body, headers=headers).status_code == 400


def test_no_contact_route_without_contact_events(tmp_path: Path, metrics: Metrics) -> None:
    """v1 (and v2 without webhook_events) serve no per-contact route."""
    config = make_config(tmp_path)
    store = Store.open(config.state.url)
    app = Served(Context(config=config, store=store, client=IdleClient(), connectors={}), metrics)
    try:
        body, headers = signed(_item("r1"), API_KEY)
        assert app.http.post(CONTACT_PATH, content=body, headers=headers).status_code == 404
    finally:
        app.close()
        store.close()


def test_contact_event_of_an_in_doubt_batch_is_kept_for_writing(v2: tuple[Served, Store]) -> None:
    """A batch whose POST answer was lost (in_doubt) still gets its paid contacts stored."""
    served, store = v2
    planned = [PlannedContact(rid, ("contact.emails",), {}) for rid in ("d1", "d2")]
    batch = store.plan_batch(
        source=SOURCE,
        run_id="r",
        owner="o",
        name="lost answer",
        contacts=planned,
        reserved_credits_for=len,
    )
    assert batch is not None
    assert store.mark_sending(batch.id, "o")
    assert store.mark_in_doubt(batch.id, "crashed before the answer was saved")
    body, headers = signed(_item("d1"), API_KEY)
    response = served.http.post(CONTACT_PATH, content=body, headers=headers)
    assert response.json()["outcome"] == "stored"
    [kept] = store.contact_results.items(batch.id)
    assert json.loads(kept)["contact"]["most_probable_email"] == "d1@example.com"
