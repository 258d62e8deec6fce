"""Every v2 request the client sends and every v2 answer the emulator gives, against the spec.

The spec is FullEnrich's published `fullenrich-openapi-v2.yml`, copied unchanged into
docs/reference/; only its server URL is pointed at the emulator. Webhook bodies (batch and
per-contact) are checked against the GET answer's schema, which the docs say they share.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.exceptions import InvalidData
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sync.enrichment.client import EnrichmentClient
from crm_sync.enrichment.models import BulkRequest, ContactRequest
from crm_sync.enrichment.ratelimit import SlidingWindowLimiter
from crm_sync.errors import EnrichmentAuthError, NotFoundError, RateLimited
from crm_sync.fields import FIELD_PERSONAL_EMAIL, FIELD_PHONE, FIELD_WORK_EMAIL
from crm_sync.http_server import BackgroundServer
from crm_sync.sandbox.enrichment.emulator import EnrichmentEmulator, Exchange
from crm_sync.sandbox.enrichment.validation import valid_domain, valid_linkedin
from crm_sync.sandbox.people import Person, generate_people
from tests.emulators.enrichment.conftest import KEY, wait_until

SPEC_PATH = Path(__file__).parents[3] / "docs/reference/fullenrich-openapi-v2.yml"


def openapi_for(server_url: str) -> OpenAPI:
    """The spec, loosened where docs/reference/fullenrich-v2-emulator.md says why."""
    spec: dict[str, Any] = copy.deepcopy(yaml.safe_load(SPEC_PATH.read_text()))
    spec["servers"] = [{"url": f"{server_url}/api/v2"}]
    paths = spec["paths"]
    too_many = paths["/contact/enrich/bulk"]["post"]["responses"]["429"]
    for account in ("/account/keys/verify", "/account/credits"):
        paths[account]["get"]["responses"]["429"] = too_many  # the limit covers every call
    return OpenAPI.from_dict(spec)


def validate_exchange(openapi: OpenAPI, server_url: str, exchange: Exchange) -> None:
    """The request (unless refused before auth) and the answer, against the spec."""
    content_type = exchange.headers.get("content-type", "application/json").split(";")[0]
    request = MockRequest(
        server_url,
        exchange.method,
        exchange.path,
        args=exchange.query,
        headers=exchange.headers,
        data=exchange.body or None,
        content_type=content_type,
    )
    response = MockResponse(
        exchange.response_body,
        status_code=exchange.status,
        headers=exchange.response_headers,
        content_type=exchange.response_headers.get("content-type", "").split(";")[0],
    )
    if exchange.status != 401:
        openapi.validate_request(request)
    openapi.validate_response(request, response)


def validate_webhook(openapi: OpenAPI, server_url: str, body: bytes) -> None:
    """A webhook body against the GET answer's schema; a bare record is wrapped in `data`."""
    parsed = json.loads(body)
    if "data" not in parsed:
        body = json.dumps({"id": "6b3f3a0e-4c43-4d5e-9c77-1b9a2c3f2f10", "data": [parsed]}).encode()
    path = "/api/v2/contact/enrich/bulk/6b3f3a0e-4c43-4d5e-9c77-1b9a2c3f2f10"
    request = MockRequest(server_url, "GET", path, headers={"authorization": f"Bearer {KEY}"})
    response = MockResponse(body, status_code=200, content_type="application/json")
    openapi.validate_response(request, response)


class Hooks:
    """Batch and per-contact webhook endpoints on one socket."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.received.append((request.url.path, body))
        return Response(status_code=200)


def _sendable(p: Person) -> bool:
    linkedin_ok = p.linkedin_url is None or valid_linkedin(p.linkedin_url)
    return (
        bool(p.first_name and p.last_name and p.domain and valid_domain(p.domain)) and linkedin_ok
    )


def requests_for(people: int, fields: tuple[str, ...]) -> BulkRequest:
    chosen = [p for p in generate_people(people * 3, seed=7) if _sendable(p)][:people]
    contacts = [
        ContactRequest(
            firstname=p.first_name,
            lastname=p.last_name,
            domain=p.domain,
            company_name=p.company,
            linkedin_url=p.linkedin_url,
            enrich_fields=list(fields),
            custom={"crm_id": str(i), "source": "hubspot"},
        )
        for i, p in enumerate(chosen)
    ]
    return BulkRequest(name="v2 contract", webhook_url="", datas=contacts)


def _settled(emulator: EnrichmentEmulator, job: str) -> bool:
    running = emulator.result_body(job)["status"] in ("CREATED", "IN_PROGRESS")
    return not running and not emulator.webhooks_pending()


@pytest.fixture(scope="module")
def scenario() -> Iterator[tuple[EnrichmentEmulator, str, Hooks]]:
    """Drive the v2 client through every endpoint and answer the emulator can give."""
    emulator = EnrichmentEmulator(
        completion_delay=0.05, record_exchanges=True, rate_limit_calls=40, balance=60
    )
    hooks = Hooks()
    hook_app = Starlette(
        routes=[Route(p, hooks.hook, methods=["POST"]) for p in ("/hook", "/hook/contact")]
    )
    with BackgroundServer(emulator.app) as server, BackgroundServer(hook_app) as hook_server:
        base = f"{server.url}/api/v2"
        limiter = SlidingWindowLimiter(1000, 60.0)
        options: dict[str, Any] = {"limiter": limiter, "rng": random.Random(1), "timeout": 5.0}
        client = EnrichmentClient(
            base, KEY, api_version="v2", webhook_events=("contact_finished",), **options
        )
        with client:
            client.verify_key()
            client.credits()
            every = (FIELD_WORK_EMAIL, FIELD_PERSONAL_EMAIL, FIELD_PHONE)
            request = requests_for(12, every).model_copy(
                update={"webhook_url": f"{hook_server.url}/hook"}
            )
            job = client.submit(request)
            client.get_result(job)  # IN_PROGRESS, 200 or 400 in turn
            client.get_result(job)
            client.get_result(job, force_results=True)
            wait_until(lambda: _settled(emulator, job))
            client.get_result(job)  # the balance ran out: CREDITS_INSUFFICIENT, answered 402
            emulator.balance = 1_000_000
            finished = client.submit(requests_for(3, (FIELD_WORK_EMAIL,)))
            emulator.finish_all()
            client.get_result(finished)
            with pytest.raises(NotFoundError):
                client.get_result("6b3f3a0e-4c43-4d5e-9c77-1b9a2c3f2f10")
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}) as raw:
            refused = raw.post(
                "/contact/enrich/bulk", json={"name": "x", "data": [{"last_name": "a"}]}
            )
            assert refused.json()["code"] == "error.enrichment.first_name.empty"
        with (
            EnrichmentClient(base, "not-the-key", api_version="v2", **options) as wrong,
            pytest.raises(EnrichmentAuthError),
        ):
            wrong.credits()
        emulator.rate_limit_calls = 1
        with (
            EnrichmentClient(base, KEY, api_version="v2", max_retries=0, **options) as hasty,
            pytest.raises(RateLimited),
        ):
            hasty.get_result(finished)
        wait_until(lambda: not emulator.webhooks_pending())
        yield emulator, server.url, hooks


def test_every_v2_exchange_validates_against_the_spec(
    scenario: tuple[EnrichmentEmulator, str, Hooks],
) -> None:
    """verify, credits, POST (200, 400), GET (200 running/done/forced, 400, 402, 404), 401, 429."""
    emulator, url, _ = scenario
    openapi = openapi_for(url)
    seen = {
        (e.method, e.path.rsplit("/", 1)[-1] if "bulk/" in e.path else e.path, e.status)
        for e in emulator.exchanges
    }
    statuses = {(e.method, e.status) for e in emulator.exchanges}
    assert {("GET", 200), ("GET", 400), ("GET", 402), ("GET", 404), ("POST", 200)} <= statuses
    assert {("POST", 400), ("GET", 401), ("GET", 429)} <= statuses, seen
    for exchange in emulator.exchanges:
        validate_exchange(openapi, url, exchange)


def test_every_v2_webhook_validates_against_the_spec(
    scenario: tuple[EnrichmentEmulator, str, Hooks],
) -> None:
    """The batch webhook and each per-contact event carry the GET answer's shape."""
    _, url, hooks = scenario
    openapi = openapi_for(url)
    paths = [path for path, _ in hooks.received]
    assert paths.count("/hook") == 1
    batch = json.loads(next(body for path, body in hooks.received if path == "/hook"))
    assert batch["status"] == "CREDITS_INSUFFICIENT"
    kinds = ("work_emails", "personal_emails", "phones")
    ran = [r for r in batch["data"] if any(r["contact_info"][k] for k in kinds)]
    assert 0 < paths.count("/hook/contact") == len(ran) < 12  # none for contacts never run
    for _, body in hooks.received:
        validate_webhook(openapi, url, body)


def test_the_v2_client_sends_spec_valid_requests(
    scenario: tuple[EnrichmentEmulator, str, Hooks],
) -> None:
    """The POST the client built has v2's names: data, first_name, contact.work_emails."""
    emulator, _, _ = scenario
    post = next(e for e in emulator.exchanges if e.method == "POST" and e.status == 200)
    body = json.loads(post.body)
    assert "datas" not in body
    assert body["webhook_events"]["contact_finished"].endswith("/hook/contact")
    item = body["data"][0]
    assert {"first_name", "last_name", "enrich_fields", "custom"} <= set(item)
    assert "contact.work_emails" in item["enrich_fields"]


def test_spec_rejects_a_broken_answer(scenario: tuple[EnrichmentEmulator, str, Hooks]) -> None:
    """The validation has teeth: an email status outside the spec's enum fails."""
    emulator, url, _ = scenario
    openapi = openapi_for(url)
    done = next(
        e for e in emulator.exchanges if e.method == "GET" and b'"FINISHED"' in e.response_body
    )
    body = json.loads(done.response_body)
    item = next(i for i in body["data"] if i["contact_info"]["work_emails"])
    item["contact_info"]["work_emails"][0]["status"] = "MAYBE"
    broken = dataclasses.replace(done, response_body=json.dumps(body).encode())
    with pytest.raises(InvalidData):
        validate_exchange(openapi, url, broken)
