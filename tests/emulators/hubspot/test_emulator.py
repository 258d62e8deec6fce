"""The HubSpot emulator alone: search language and limits, auth, rate limits, lag, writes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from crm_sync.http_server import BackgroundServer
from crm_sync.sandbox.hubspot import HubSpotEmulator
from crm_sync.sandbox.hubspot.search import SearchError, parse_search
from tests.support.clock import FakeClock
from tests.support.hubspot import TOKEN, person

SEARCH = "/crm/v3/objects/contacts/search"
Serve = Callable[[HubSpotEmulator], BackgroundServer]


def _client(server: BackgroundServer, token: str = TOKEN) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


def _matching(body: dict[str, Any], records: list[dict[str, str | None]]) -> list[int]:
    request = parse_search(json.dumps(body).encode())
    return [i for i, props in enumerate(records) if request.predicate(props)]


def _one(prop: str, op: str, **extra: Any) -> dict[str, Any]:
    return {"filterGroups": [{"filters": [{"propertyName": prop, "operator": op, **extra}]}]}


def test_operators_follow_hubspot_semantics() -> None:
    """EQ folds case, NEQ/NOT_IN match no value, GT is numeric, tokens and ranges work."""
    records: list[dict[str, str | None]] = [
        {"company": "Acme Analytics", "hs_object_id": "9", "opt": None},
        {"company": "INITECH", "hs_object_id": "10", "opt": "true"},
        {"company": None, "hs_object_id": "101", "opt": "false"},
    ]
    assert _matching(_one("company", "EQ", value="acme analytics"), records) == [0]
    assert _matching(_one("opt", "NEQ", value="true"), records) == [0, 2]
    assert _matching(_one("hs_object_id", "GT", value="9"), records) == [1, 2]
    assert _matching(_one("company", "IN", values=["initech", "x"]), records) == [1]
    assert _matching(_one("company", "NOT_IN", values=["initech"]), records) == [0, 2]
    assert _matching(_one("company", "CONTAINS_TOKEN", value="analytics"), records) == [0]
    assert _matching(_one("company", "NOT_HAS_PROPERTY"), records) == [2]
    assert _matching(_one("hs_object_id", "BETWEEN", value="10", highValue="200"), records) == [
        1,
        2,
    ]
    either = {
        "filterGroups": [
            _one("opt", "EQ", value="true")["filterGroups"][0],
            _one("company", "NOT_HAS_PROPERTY")["filterGroups"][0],
        ]
    }
    assert _matching(either, records) == [1, 2]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"filterGroups": [{"filters": []}] * 6}, "Too many filter groups"),
        (
            {
                "filterGroups": [
                    {"filters": [{"propertyName": "a", "operator": "HAS_PROPERTY"}] * 11}
                ]
            },
            "Too many filters in a group",
        ),
        (
            {
                "filterGroups": [
                    {"filters": [{"propertyName": "a", "operator": "HAS_PROPERTY"}] * 9}
                ]
                * 3
            },
            "Too many filters: 27",
        ),
        ({"limit": 201}, "limit must be between"),
        ({"limit": 200, "after": "9900"}, "Paging past 10000"),
        ({"properties": ["x" * 3000]}, "maximum is 3000"),
        (_one("a", "LIKE", value="b"), "Unknown operator"),
        ({"sorts": [{"propertyName": "a"}, {"propertyName": "b"}]}, "Only one sort"),
    ],
)
def test_search_limits_are_refused(body: dict[str, Any], message: str) -> None:
    """HubSpot's search limits are enforced with a clear message."""
    with pytest.raises(SearchError, match=message):
        parse_search(json.dumps(body).encode())


def test_search_pages_and_sorts_over_http(serve_emulator: Serve) -> None:
    """`after` pages through a descending sort; the last page has no paging."""
    emulator = HubSpotEmulator(people=[person(i) for i in range(5)], token=TOKEN)
    with _client(serve_emulator(emulator)) as client:
        body = {
            "sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}],
            "properties": ["firstname", "phone"],
            "limit": 3,
        }
        first = client.post(SEARCH, json=body).json()
        second = client.post(SEARCH, json={**body, "after": first["paging"]["next"]["after"]})
        refused = client.post(SEARCH, json={"limit": 201})
    assert first["total"] == 5
    assert [r["id"] for r in first["results"]] == ["105", "104", "103"]
    assert first["results"][0]["properties"] == {"firstname": "First4", "phone": None}
    assert [r["id"] for r in second.json()["results"]] == ["102", "101"]
    assert "paging" not in second.json()
    assert refused.status_code == 400
    assert refused.json()["category"] == "VALIDATION_ERROR"


def test_missing_token_gets_hubspot_401(serve_emulator: Serve) -> None:
    """No or a wrong bearer token: 401 INVALID_AUTHENTICATION with a UUID correlationId."""
    emulator = HubSpotEmulator(people=[person(0)], token=TOKEN)
    server = serve_emulator(emulator)
    with _client(server, token="wrong") as client:
        answer = client.post(SEARCH, json={})
    assert answer.status_code == 401
    body = answer.json()
    assert body["category"] == "INVALID_AUTHENTICATION"
    assert body["message"].startswith("Authentication credentials not found")
    uuid.UUID(body["correlationId"])


def test_rate_limits_answer_429_with_policy_and_headers(serve_emulator: Serve) -> None:
    """Ten-secondly and search-secondly limits answer 429 bodies; others carry headers."""
    clock = FakeClock()
    emulator = HubSpotEmulator(
        people=[person(0)],
        token=TOKEN,
        ten_secondly_limit=3,
        search_per_second=1,
        clock=clock,
    )
    with _client(serve_emulator(emulator)) as client:
        assert client.post(SEARCH, json={}).status_code == 200
        second = client.post(SEARCH, json={})
        prop = client.get("/crm/v3/properties/contacts/phone")
        client.get("/crm/v3/objects/contacts/101")
        third = client.get("/crm/v3/objects/contacts/101")
        clock.advance(seconds=10)
        after_wait = client.get("/crm/v3/objects/contacts/101")
    assert second.status_code == 429
    assert second.json()["policyName"] == "SECONDLY"
    assert second.json()["message"] == "You have reached your secondly limit."
    assert prop.headers["X-HubSpot-RateLimit-Max"] == "3"
    assert prop.headers["X-HubSpot-RateLimit-Remaining"] == "1"
    assert prop.headers["X-HubSpot-RateLimit-Daily-Remaining"] == str(250_000 - 2)
    assert third.status_code == 429
    assert third.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert third.json()["errorType"] == "RATE_LIMIT"
    assert after_wait.status_code == 200


def test_search_sees_changes_only_after_the_lag(serve_emulator: Serve) -> None:
    """With search_lag, an edit is searchable only once the lag has passed."""
    clock = FakeClock()
    emulator = HubSpotEmulator(people=[person(0)], token=TOKEN, search_lag=5.0, clock=clock)
    emulator.set_property("101", "phone", "+15550100")
    body = _one("phone", "HAS_PROPERTY")
    with _client(serve_emulator(emulator)) as client:
        before = client.post(SEARCH, json=body).json()["total"]
        clock.advance(seconds=5)
        after = client.post(SEARCH, json=body).json()["total"]
    assert (before, after) == (0, 1)
    assert emulator.writes == []  # a person's edit is not an API write


def test_batch_update_conflict_writes_nothing(serve_emulator: Serve) -> None:
    """An email owned by another contact refuses the whole batch with 409 CONFLICT."""
    emulator = HubSpotEmulator(people=[person(0), person(1, email="taken@acme.com")], token=TOKEN)
    inputs = [
        {"id": "101", "properties": {"phone": "+15550100"}},
        {"id": "101", "properties": {"email": "taken@acme.com"}},
    ]
    with _client(serve_emulator(emulator)) as client:
        dupes = client.post("/crm/v3/objects/contacts/batch/update", json={"inputs": inputs})
        answer = client.post(
            "/crm/v3/objects/contacts/batch/update",
            json={"inputs": [*inputs[1:], {"id": "102", "properties": {}}]},
        )
        unknown = client.get("/crm/v3/properties/contacts/no_such_prop")
    assert dupes.status_code == 400
    assert answer.status_code == 409
    assert answer.json()["message"] == "Contact already exists. Existing ID: 102"
    assert emulator.records["101"]["email"] is None
    assert emulator.writes == []
    assert unknown.status_code == 404


def test_seeding_from_the_generator() -> None:
    """Seeded records carry the generator's values, opt-outs as "true", ids from 101."""
    emulator = HubSpotEmulator(contacts=40, seed=3, phone_property="mobilephone")
    records = emulator.records
    assert list(records)[:2] == ["101", "102"]
    assert all(r["hs_object_id"] == rid for rid, r in records.items())
    assert {r["crm_sync_opt_out"] for r in records.values()} <= {"true", None}
    assert any(r["mobilephone"] for r in records.values())
    assert emulator.add_contact(firstname="New") == "141"
