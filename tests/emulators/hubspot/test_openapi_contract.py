"""Every request the connector makes and every answer the emulator gives, against HubSpot's spec.

The spec is HubSpot's own file, loosened here only where the live API is known to differ:
the two places named in crm-apis.md (null property values; JSON error bodies declared `*/*`),
and `sorts`, declared as strings although the live API honours only the documented object
form `{"propertyName", "direction"}` and ignores strings (HubSpot/hubspot-api-ruby#257,
HubSpot/hubspot-api-nodejs#559).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.exceptions import InvalidData

from connectors.base import FieldUpdate, Selection
from connectors.hubspot import HubSpotConnector
from crm_sync.errors import AuthError
from crm_sync.http_server import BackgroundServer
from crm_sync.sandbox.hubspot.emulator import Exchange, HubSpotEmulator
from tests.support.clock import FakeClock
from tests.support.hubspot import TOKEN, person

# HubSpot's published spec, copied unchanged into the repo so the test runs anywhere.
SPEC_PATH = Path(__file__).parents[3] / "docs/reference/hubspot-openapi/contacts-v3.json"


def _loosened_spec(server_url: str) -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(json.loads(SPEC_PATH.read_text()))
    spec["servers"] = [{"url": server_url}]
    schemas = spec["components"]["schemas"]
    for name in ("SimplePublicObject", "SimplePublicObjectWithAssociations"):
        schemas[name]["properties"]["properties"]["additionalProperties"]["nullable"] = True
    error = spec["components"]["responses"]["Error"]["content"]
    error["application/json"] = error.pop("*/*")
    schemas["PublicObjectSearchRequest"]["properties"]["sorts"]["items"] = {
        "type": "object",
        "required": ["propertyName"],
        "properties": {
            "propertyName": {"type": "string"},
            "direction": {"type": "string", "enum": ["ASCENDING", "DESCENDING"]},
        },
    }
    return spec


def _validate(openapi: OpenAPI, url: str, exchange: Exchange) -> None:
    request = MockRequest(
        url,
        exchange.method,
        exchange.path,
        args=exchange.query,
        headers=exchange.headers,
        data=exchange.body,
        content_type=exchange.headers.get("content-type", "application/json").split(";")[0],
    )
    response = MockResponse(
        exchange.response_body,
        status_code=exchange.status,
        headers=exchange.response_headers,
        content_type=exchange.response_headers.get("content-type", "").split(";")[0],
    )
    if exchange.status != 401:
        # openapi-core cannot check the spec's oauth2 scheme (it warns): check the bearer here.
        assert exchange.headers["authorization"] == f"Bearer {TOKEN}"
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Unsupported scheme type", UserWarning)
            openapi.validate_request(request)
    openapi.validate_response(request, response)


@pytest.fixture
def scenario(
    serve_emulator: Callable[[HubSpotEmulator], BackgroundServer],
    connect: Callable[..., HubSpotConnector],
    clock: FakeClock,
) -> tuple[HubSpotEmulator, str]:
    """Drive the connector through search, read, write (200, 207, 409), 401 and 429."""
    people = [person(i) for i in range(30)] + [person(30, email="taken@acme.com")]
    emulator = HubSpotEmulator(people=people, token=TOKEN, ten_secondly_limit=8, clock=clock)
    connector = connect(emulator)
    url = connector.hs_settings.base_url or ""
    list(connector.iter_candidates(Selection(frozenset({"email", "phone"}), page_size=10)))
    connector.read(["101", "102", "999"])
    connector.read(["103"])
    connector.write([FieldUpdate("101", {"phone": "+14155550101"})])
    connector.write([FieldUpdate("102", {"email": "bad@"}), FieldUpdate("999", {"phone": "+1"})])
    connector.write(
        [
            FieldUpdate("103", {"email": "taken@acme.com"}),
            FieldUpdate("104", {"phone": "+14155550104"}),
        ]
    )
    wrong = connect(emulator, settings={"access_token": "pat-na1-not-the-token"})
    with pytest.raises(AuthError):
        wrong.read(["101"])
    return emulator, url


def test_every_exchange_validates_against_the_spec(scenario: tuple[HubSpotEmulator, str]) -> None:
    """Requests and responses of search, batch read/update (200/207/409), PATCH, 401 and 429."""
    emulator, url = scenario
    openapi = OpenAPI.from_dict(_loosened_spec(url))
    exchanges = [e for e in emulator.exchanges if e.path.startswith("/crm/v3/objects/")]
    statuses = {(e.path.rsplit("/", 1)[-1], e.status) for e in exchanges}
    assert {
        ("search", 200),
        ("read", 200),
        ("read", 207),
        ("update", 200),
        ("update", 207),
        ("update", 409),
        ("104", 200),
        ("103", 409),
        ("read", 401),
    } <= statuses
    assert any(e.status == 429 for e in exchanges)
    for exchange in exchanges:
        _validate(openapi, url, exchange)


def test_spec_rejects_a_broken_answer(scenario: tuple[HubSpotEmulator, str]) -> None:
    """The validation has teeth: a correlationId that is not a UUID fails."""
    emulator, url = scenario
    openapi = OpenAPI.from_dict(_loosened_spec(url))
    refused = next(e for e in emulator.exchanges if e.status == 409)
    body = json.loads(refused.response_body)
    body["correlationId"] = "not-a-uuid"
    broken = dataclasses.replace(refused, response_body=json.dumps(body).encode())
    with pytest.raises(InvalidData) as info:
        _validate(openapi, url, broken)
    assert "uuid" in repr(info.value.__cause__)
