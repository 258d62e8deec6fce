"""The four endpoints and the authentication errors, over a real socket."""

from __future__ import annotations

import uuid

import httpx
import pytest

from crm_sync.sandbox.enrichment import EnrichmentEmulator
from tests.emulators.enrichment.conftest import bulk

Api = tuple[EnrichmentEmulator, httpx.Client]


def test_verify_returns_the_workspace_id(make_api) -> None:
    """A valid key gets its workspace id."""
    _, client = make_api(workspace_id="ws-42")
    response = client.get("/account/keys/verify")
    assert response.status_code == 200
    assert response.json() == {"workspace_id": "ws-42"}


def test_credits_returns_the_live_balance(api: Api) -> None:
    """The balance is read at call time, so a test can change it."""
    emulator, client = api
    assert client.get("/account/credits").json() == {"balance": 1_000_000}
    emulator.balance = 7
    assert client.get("/account/credits").json() == {"balance": 7}


def test_post_returns_a_uuid_enrichment_id(api: Api) -> None:
    """A valid POST answers 200 with a fresh uuid4, and records the job."""
    emulator, client = api
    response = client.post("/contact/enrich/bulk", json=bulk())
    assert response.status_code == 200
    enrichment_id = response.json()["enrichment_id"]
    assert uuid.UUID(enrichment_id).version == 4
    assert emulator.job_ids() == [enrichment_id]


def test_get_unknown_id_is_404(api: Api) -> None:
    """An id the API never issued answers 404 error.enrichment.not_found."""
    _, client = api
    response = client.get(f"/contact/enrich/bulk/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["code"] == "error.enrichment.not_found"


def test_expired_job_is_404(api: Api) -> None:
    """Results the API no longer keeps answer 404, like an unknown id."""
    emulator, client = api
    enrichment_id = client.post("/contact/enrich/bulk", json=bulk()).json()["enrichment_id"]
    emulator.finish_all()
    assert client.get(f"/contact/enrich/bulk/{enrichment_id}").status_code == 200
    emulator.expire(enrichment_id)
    assert client.get(f"/contact/enrich/bulk/{enrichment_id}").status_code == 404


@pytest.mark.parametrize(
    "refusal",
    [
        ({}, "error.authorization.not_set", "Authorization headers not set"),
        (
            {"Authorization": "Token sandbox-enrichment-key"},
            "error.authorization.not_bearer",
            "Authorization headers not have prefix 'bearer'",
        ),
        (
            {"Authorization": "sandbox-enrichment-key"},
            "error.authorization.not_bearer",
            "Authorization headers not have prefix 'bearer'",
        ),
        ({"Authorization": "Bearer wrong-key"}, "error.api.key", "Unknown api key"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/account/keys/verify"),
        ("GET", "/account/credits"),
        ("POST", "/contact/enrich/bulk"),
        ("GET", "/contact/enrich/bulk/some-id"),
    ],
)
def test_auth_errors_on_every_endpoint(
    shared_api: Api, refusal: tuple[dict[str, str], str, str], method: str, path: str
) -> None:
    """Each endpoint refuses a missing, non-bearer or unknown key with the API's 401 body."""
    emulator, client = shared_api
    headers, code, message = refusal
    url = f"{client.base_url}{path.lstrip('/')}"
    response = httpx.request(method, url, headers=headers, json=bulk())
    assert response.status_code == 401
    assert response.json() == {"code": code, "message": message}
    assert emulator.job_ids() == []
    assert emulator.submitted == []


def test_bearer_prefix_is_case_insensitive(api: Api) -> None:
    """`bearer` and `BEARER` are accepted like `Bearer`."""
    _, client = api
    for scheme in ("bearer", "BEARER"):
        headers = {"Authorization": f"{scheme} sandbox-enrichment-key"}
        response = httpx.get(f"{client.base_url}account/credits", headers=headers)
        assert response.status_code == 200


def test_calls_are_recorded_with_status(api: Api) -> None:
    """Every call is recorded with method, path and status; refused ones are not counted."""
    emulator, client = api
    client.get("/account/credits")
    httpx.get(f"{client.base_url}account/credits")
    assert [(c.method, c.path, c.status, c.counted) for c in emulator.calls] == [
        ("GET", "/api/v1/account/credits", 200, True),
        ("GET", "/api/v1/account/credits", 401, False),
    ]


def test_repr_does_not_show_the_key() -> None:
    """The emulator's repr never carries the API key."""
    emulator = EnrichmentEmulator(api_key="super-secret-key-123")
    assert "super-secret-key-123" not in repr(emulator)
