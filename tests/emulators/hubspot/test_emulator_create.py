"""The HubSpot emulator creates contacts as HubSpot does, spoken to with hubspot-api-client."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import ApiException
from openapi_core import OpenAPI

from crm_sync.http_server import BackgroundServer
from crm_sync.sandbox.hubspot import HubSpotEmulator
from tests.emulators.hubspot.test_openapi_contract import _loosened_spec, _validate
from tests.support.hubspot import TOKEN


@pytest.fixture
def hub(
    serve_emulator: Callable[[HubSpotEmulator], BackgroundServer],
) -> tuple[HubSpotEmulator, HubSpot, str]:
    emulator = HubSpotEmulator(contacts=3, token=TOKEN)
    server = serve_emulator(emulator)
    return emulator, HubSpot(access_token=TOKEN, host=server.url), server.url


def _create(client: HubSpot, **props: str) -> object:
    body = SimplePublicObjectInputForCreate(properties=props, associations=[])
    return client.crm.contacts.basic_api.create(simple_public_object_input_for_create=body)


def test_create_sets_dates_and_id_and_search_sees_it_at_once(
    hub: tuple[HubSpotEmulator, HubSpot, str],
) -> None:
    """201 with hs_object_id, createdate, lastmodifieddate; a date search finds it right away."""
    emulator, client, _ = hub
    before = datetime.now(UTC)
    created = _create(client, firstname="Ada", lastname="Lovelace", email="ada@example.com")
    record = emulator.records[created.id]  # type: ignore[attr-defined]
    assert record["hs_object_id"] == created.id  # type: ignore[attr-defined]
    created_at = datetime.fromisoformat((record["createdate"] or "").replace("Z", "+00:00"))
    assert created_at >= before.replace(microsecond=before.microsecond // 1000 * 1000)
    assert record["lastmodifieddate"] == record["createdate"]
    since = str(int(before.timestamp() * 1000) - 1)
    search = PublicObjectSearchRequest(
        filter_groups=[
            {"filters": [{"propertyName": "createdate", "operator": "GTE", "value": since}]}
        ],
        sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        properties=["email"],
        limit=10,
        after="0",
    )
    page = client.crm.contacts.search_api.do_search(public_object_search_request=search)
    assert [r.id for r in page.results] == [created.id]  # type: ignore[attr-defined]


def test_an_api_write_moves_lastmodifieddate(hub: tuple[HubSpotEmulator, HubSpot, str]) -> None:
    """A later PATCH (what crm-sync's write does) updates lastmodifieddate, not createdate."""
    emulator, client, _ = hub
    created = _create(client, firstname="Bo", lastname="Ek")
    first = emulator.records[created.id]  # type: ignore[attr-defined]
    emulator.store.apply(created.id, {"phone": "+14155550100"}, by_api=True)  # type: ignore[attr-defined]
    later = emulator.records[created.id]  # type: ignore[attr-defined]
    assert later["createdate"] == first["createdate"]
    assert (later["lastmodifieddate"] or "") >= (first["lastmodifieddate"] or "")
    assert emulator.writes[-1].record_id == created.id  # type: ignore[attr-defined]


def test_batch_create_and_refusals_validate_against_the_spec(
    hub: tuple[HubSpotEmulator, HubSpot, str],
) -> None:
    """Batch create answers 201; unknown property 400; taken email 409; all as the spec says."""
    emulator, client, url = hub
    inputs = [
        SimplePublicObjectBatchInputForCreate(
            properties={"firstname": f"N{i}", "lastname": "L", "email": f"n{i}@example.com"},
            associations=[],
        )
        for i in range(3)
    ]
    batch = client.crm.contacts.batch_api.create(
        batch_input_simple_public_object_batch_input_for_create=(
            BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs)
        )
    )
    assert len(batch.results) == 3
    assert all(r.properties["hs_object_id"] == r.id for r in batch.results)
    with pytest.raises(ApiException) as unknown:
        _create(client, firstname="X", no_such_property="1")
    assert unknown.value.status == 400
    with pytest.raises(ApiException) as taken:
        _create(client, firstname="Y", email="n1@example.com")
    assert taken.value.status == 409
    assert json.loads(taken.value.body)["category"] == "CONFLICT"
    before = len(emulator.records)
    with pytest.raises(ApiException) as whole:
        client.crm.contacts.batch_api.create(
            batch_input_simple_public_object_batch_input_for_create=(
                BatchInputSimplePublicObjectBatchInputForCreate(
                    inputs=[
                        SimplePublicObjectBatchInputForCreate(
                            properties={"email": "fresh@example.com"}, associations=[]
                        ),
                        SimplePublicObjectBatchInputForCreate(
                            properties={"email": "n2@example.com"}, associations=[]
                        ),
                    ]
                )
            )
        )
    assert whole.value.status == 409
    assert len(emulator.records) == before  # refused whole: nothing created
    openapi = OpenAPI.from_dict(_loosened_spec(url))
    creates = [e for e in emulator.exchanges if e.method == "POST" and "search" not in e.path]
    assert {e.status for e in creates} == {201, 400, 409}
    for exchange in creates:
        _validate(openapi, url, exchange)


def test_date_filter_refuses_what_is_not_a_date(hub: tuple[HubSpotEmulator, HubSpot, str]) -> None:
    """`lastmodifieddate GTE "yesterday"` is a 400, as HubSpot answers it."""
    _, client, _ = hub
    search = PublicObjectSearchRequest(
        filter_groups=[
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "x"}]}
        ],
        limit=10,
        after="0",
    )
    with pytest.raises(ApiException) as refused:
        client.crm.contacts.search_api.do_search(public_object_search_request=search)
    assert refused.value.status == 400


def test_a_paged_scan_sees_records_created_and_filled_between_its_pages(
    hub: tuple[HubSpotEmulator, HubSpot, str],
) -> None:
    """The cached id-keyset scan of the emulator catches up with creations and edits."""
    emulator, client, _ = hub
    gap = [{"propertyName": "phone", "operator": "NOT_HAS_PROPERTY"}]

    def page_after(after_id: int) -> list[str]:
        bound = {"propertyName": "hs_object_id", "operator": "GT", "value": str(after_id)}
        search = PublicObjectSearchRequest(
            filter_groups=[{"filters": [*gap, bound]}],
            sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            properties=["phone"],
            limit=100,
            after="0",
        )
        page = client.crm.contacts.search_api.do_search(public_object_search_request=search)
        return [r.id for r in page.results]

    first = page_after(0)
    filled = first[0]
    emulator.set_property(filled, "phone", "+14155550100")
    new = _create(client, firstname="Late", lastname="Comer").id  # type: ignore[attr-defined]
    again = page_after(0)
    assert filled not in again
    assert new in again
    expected = sorted(
        (rid for rid, props in emulator.records.items() if not props.get("phone")), key=int
    )
    assert again == expected
