"""Mapped properties checked before spending; a refused property holds, never rejects (issue 9).

Over a real socket with hubspot-api-client. The properties API is not in the contacts spec
copied to docs/reference/, so its answers are checked by the SDK's own `Property` model; the
400 a batch update gets for a missing property is checked against the contacts spec.
"""

from __future__ import annotations

from collections.abc import Callable

from hubspot import HubSpot
from openapi_core import OpenAPI

from connectors.base import FieldUpdate, WriteStatus
from connectors.hubspot import HubSpotConnector
from crm_sync.http_server import BackgroundServer
from crm_sync.sandbox.hubspot import HubSpotEmulator
from tests.emulators.hubspot.test_openapi_contract import _loosened_spec, _validate
from tests.support.hubspot import TOKEN, person


def _emulator() -> HubSpotEmulator:
    return HubSpotEmulator(people=[person(i) for i in range(4)], token=TOKEN)


def test_check_fields_names_missing_and_read_only_properties(
    connect: Callable[..., HubSpotConnector],
) -> None:
    """Healthy fields give no problem; a missing and a read-only mapped property are named."""
    emulator = _emulator()
    assert connect(emulator).check_fields() == []
    wrong = connect(emulator, fields={"email": "hs_object_id", "phone": "phonee"})
    assert wrong.check_fields() == [
        "fields.email: HubSpot contact property 'hs_object_id' is read-only",
        "fields.phone: HubSpot contact property 'phonee' does not exist",
    ]
    assert emulator.calls["properties"] == 4


def test_property_answers_read_as_the_sdk_models_them(
    serve_emulator: Callable[[HubSpotEmulator], BackgroundServer],
) -> None:
    """`GET /crm/v3/properties/contacts/{name}` deserialises into the SDK's Property."""
    emulator = _emulator()
    server = serve_emulator(emulator)
    client = HubSpot(access_token=TOKEN, host=server.url)
    prop = client.crm.properties.core_api.get_by_name("contacts", "phone")
    assert (prop.name, prop.type, prop.field_type, prop.group_name) == (
        "phone",
        "string",
        "text",
        "contactinformation",
    )
    assert prop.modification_metadata.read_only_value is False


def test_a_missing_property_is_field_refused_in_one_call(
    connect: Callable[..., HubSpotConnector],
) -> None:
    """HubSpot refuses the batch (400 PROPERTY_DOESNT_EXIST): every record is FIELD_REFUSED,
    with no per-record PATCH retries, and the 400 validates against HubSpot's spec."""
    emulator = _emulator()
    connector = connect(emulator, fields={"email": "email", "phone": "phonee"})
    outcomes = connector.write(
        [FieldUpdate("101", {"phone": "+14155550101"}), FieldUpdate("102", {"email": "a@b.co"})]
    )
    assert [o.status for o in outcomes] == [WriteStatus.FIELD_REFUSED] * 2
    assert outcomes[0].reason == "PROPERTY_DOESNT_EXIST: property 'phonee' (VALIDATION_ERROR)"
    assert emulator.calls["batch_update"] == 1
    assert emulator.calls["update"] == 0
    url = connector.hs_settings.base_url or ""
    (refused,) = [e for e in emulator.exchanges if e.status == 400]
    _validate(OpenAPI.from_dict(_loosened_spec(url)), url, refused)
