"""Unit tests of the enrichment client: each status and error variant, over httpx.MockTransport."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from crm_sync.config import EnrichmentConfig
from crm_sync.enrichment.client import EnrichmentClient
from crm_sync.enrichment.models import BulkRequest, ContactRequest, EnrichmentStatus
from crm_sync.enrichment.ratelimit import SlidingWindowLimiter
from crm_sync.errors import (
    EnrichmentAuthError,
    FatalError,
    InsufficientCredits,
    NotFoundError,
    NotSent,
    OutcomeUnknown,
    RateLimited,
    ServerError,
    ValidationError,
)
from tests.support.clock import FakeClock

BASE = "https://enrich.test/api/v1"
KEY = "unit-test-key-0001"
Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Script:
    """A MockTransport handler that plays answers in order and records every request."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return step(request)


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def err(status: int, code: str, message: str = "x") -> httpx.Response:
    return answer(status, {"code": code, "message": message})


def make(script: Script, **kwargs: Any) -> tuple[EnrichmentClient, list[float]]:
    """A client on a fake clock; the list it returns fills with the client's backoff sleeps."""
    clock = FakeClock()
    options: dict[str, Any] = {
        "transport": httpx.MockTransport(script),
        "limiter": SlidingWindowLimiter(10_000, 1.0),
        "clock": clock,
        "rng": random.Random(7),
        "max_retries": 3,
        "backoff_cap": 8.0,
    }
    options.update(kwargs)
    return EnrichmentClient(BASE, KEY, **options), clock.sleeps


def bulk(n: int = 2) -> BulkRequest:
    contacts = [
        ContactRequest(
            firstname="ada", lastname=f"l{i}", domain="ex.com", custom={"crm_id": str(i)}
        )
        for i in range(n)
    ]
    return BulkRequest(name="batch-1", datas=contacts)


FINISHED = {
    "id": "e-1",
    "name": "batch-1",
    "status": "FINISHED",
    "cost": {"credits": 11},
    "datas": [
        {
            "custom": {"crm_id": "0"},
            "contact": {"most_probable_email": "a@ex.com", "most_probable_phone": "+1 555"},
        }
    ],
}


def test_verify_key_returns_workspace_and_sends_bearer() -> None:
    """verify_key GETs /account/keys/verify with the bearer key and returns the workspace id."""
    script = Script(answer(200, {"workspace_id": "ws-1"}))
    client, _ = make(script)
    assert client.verify_key() == "ws-1"
    request = script.requests[0]
    assert request.url == f"{BASE}/account/keys/verify"
    assert request.headers["Authorization"] == f"Bearer {KEY}"


def test_credits_returns_integer_balance() -> None:
    """credits reads `balance`, accepting a float on the wire."""
    client, _ = make(Script(answer(200, {"balance": 5000.0})))
    assert client.credits() == 5000


def test_credits_without_balance_is_server_error() -> None:
    """An answer without a numeric balance is reported, not read as zero."""
    client, _ = make(Script(answer(200, {"balance": "lots"})))
    with pytest.raises(ServerError, match="balance"):
        client.credits()


def test_submit_posts_wire_body_and_returns_id() -> None:
    """submit POSTs the v1 body and returns the enrichment_id."""
    script = Script(answer(200, {"enrichment_id": "e-1"}))
    client, _ = make(script)
    assert client.submit(bulk(2)) == "e-1"
    request = script.requests[0]
    assert request.method == "POST"
    assert request.url == f"{BASE}/contact/enrich/bulk"
    body = json.loads(request.content)
    assert body["name"] == "batch-1"
    assert [d["custom"]["crm_id"] for d in body["datas"]] == ["0", "1"]


def test_submit_validates_before_any_network_call() -> None:
    """An invalid bulk (101 contacts, bypassing validation) is refused without a request."""
    script = Script(answer(200, {"enrichment_id": "e-1"}))
    client, _ = make(script)
    too_many = BulkRequest.model_construct(name="b", webhook_url=None, datas=bulk(1).datas * 101)
    with pytest.raises(ValidationError) as info:
        client.submit(too_many)
    assert info.value.code == "client.invalid_request"
    with pytest.raises(ValidationError):
        client.submit({"name": "b", "datas": [{"firstname": "a", "custom": {"k": "v" * 101}}]})
    assert script.requests == []


def test_submit_answer_without_id_is_outcome_unknown() -> None:
    """A 200 without an enrichment_id means a job may exist that we cannot name."""
    client, _ = make(Script(answer(200, {"ok": True})))
    with pytest.raises(OutcomeUnknown):
        client.submit(bulk())


def test_get_result_finished_is_parsed() -> None:
    """A 200 FINISHED result is parsed into an EnrichmentResult with its data."""
    script = Script(answer(200, FINISHED))
    client, _ = make(script)
    result = client.get_result("e-1", force_results=True)
    assert result.status is EnrichmentStatus.FINISHED
    assert result.credits == 11
    assert result.datas[0].contact.most_probable_email == "a@ex.com"
    assert script.requests[0].url.params["forceResults"] == "true"


@pytest.mark.parametrize(
    "response",
    [
        answer(200, {"id": "e-1", "name": "b", "status": "IN_PROGRESS"}),
        answer(200, {"status": "IN_PROGRESS"}),
        err(400, "error.enrichment.in_progress", "Enrichment is in progress"),
    ],
)
def test_get_result_in_progress_variants(response: httpx.Response) -> None:
    """200 IN_PROGRESS without data and 400 in_progress both mean "still running"."""
    client, _ = make(Script(response))
    result = client.get_result("e-1")
    assert result.status is EnrichmentStatus.IN_PROGRESS
    assert result.id == "e-1"
    assert result.datas == []


def test_get_result_402_with_body_returns_result() -> None:
    """A 402 that carries a result is the result (status CREDITS_INSUFFICIENT), not an error."""
    body = {**FINISHED, "status": "CREDITS_INSUFFICIENT"}
    client, _ = make(Script(answer(402, body)))
    result = client.get_result("e-1")
    assert result.status is EnrichmentStatus.CREDITS_INSUFFICIENT
    assert len(result.datas) == 1


def test_get_result_402_without_body_is_insufficient_credits() -> None:
    """A bare 402 on GET still means the account is out of credits."""
    client, _ = make(Script(err(402, "error.credits")))
    with pytest.raises(InsufficientCredits):
        client.get_result("e-1")


def test_get_result_404_is_not_found() -> None:
    """404 error.enrichment.not_found maps to NotFoundError with the API code."""
    client, _ = make(Script(err(404, "error.enrichment.not_found")))
    with pytest.raises(NotFoundError) as info:
        client.get_result("e-1")
    assert info.value.code == "error.enrichment.not_found"
    assert info.value.status == 404


def test_get_result_quotes_the_id_and_refuses_empty() -> None:
    """An id cannot escape its path segment, and an empty id is a programming error."""
    script = Script(answer(200, FINISHED))
    client, _ = make(script)
    client.get_result("../account/credits")
    assert script.requests[0].url.raw_path.startswith(b"/api/v1/contact/enrich/bulk/..%2F")
    with pytest.raises(ValueError, match="empty"):
        client.get_result(" ")


@pytest.mark.parametrize(
    "code", ["error.api.key", "error.authorization.not_set", "error.authorization.not_bearer"]
)
def test_401_is_enrichment_auth_error(code: str) -> None:
    """Every 401 variant becomes EnrichmentAuthError naming the API code; no retry."""
    script = Script(err(401, code, "Unknown api key"))
    client, _ = make(script)
    with pytest.raises(EnrichmentAuthError) as info:
        client.verify_key()
    assert str(info.value) == f"the enrichment API refused the API key ({code})"
    assert info.value.code == code
    assert len(script.requests) == 1


def test_400_on_post_is_validation_error_with_code() -> None:
    """400 on the POST maps to ValidationError carrying the API's code and message."""
    client, _ = make(Script(err(400, "error.enrichment.lastname.empty", "Lastname is empty")))
    with pytest.raises(ValidationError) as info:
        client.submit(bulk())
    assert info.value.code == "error.enrichment.lastname.empty"
    assert "Lastname is empty" in str(info.value)


@pytest.mark.parametrize("call", ["submit", "credits"])
def test_402_on_post_or_credits_is_insufficient_credits(call: str) -> None:
    """402 on the POST or the credits call raises InsufficientCredits."""
    client, _ = make(Script(err(402, "error.credits.insufficient")))
    with pytest.raises(InsufficientCredits):
        client.submit(bulk()) if call == "submit" else client.credits()


def test_unexpected_4xx_is_fatal() -> None:
    """A status the API does not document (403) is fatal, not retried."""
    script = Script(err(403, "error.forbidden"))
    client, _ = make(script)
    with pytest.raises(FatalError) as info:
        client.credits()
    assert info.value.status == 403
    assert len(script.requests) == 1


def test_429_is_retried_then_succeeds() -> None:
    """A 429 is waited out; stats count the 429, the retry and both calls."""
    script = Script(err(429, "error.rate.limit"), answer(200, {"balance": 1}))
    client, sleeps = make(script)
    assert client.credits() == 1
    assert len(sleeps) == 1
    assert client.stats.snapshot() == {
        "calls": {"credits": 2},
        "retries": {"credits": 1},
        "rate_limited": {"credits": 1},
    }


def test_429_after_retries_is_rate_limited() -> None:
    """429 on every attempt raises RateLimited after max_retries + 1 calls."""
    script = Script(err(429, "error.rate.limit"))
    client, sleeps = make(script, max_retries=2)
    with pytest.raises(RateLimited) as info:
        client.verify_key()
    assert info.value.status == 429
    assert len(script.requests) == 3
    assert len(sleeps) == 2


def test_retry_after_header_is_honoured_within_cap() -> None:
    """A Retry-After header raises the jittered delay, but never above the cap."""
    script = Script(
        answer(429, {"code": "error.rate.limit"}, **{"Retry-After": "5"}),
        answer(429, {"code": "error.rate.limit"}, **{"Retry-After": "500"}),
        answer(200, {"balance": 1}),
    )
    client, sleeps = make(script, backoff_cap=8.0)
    client.credits()
    assert sleeps == [5.0, 8.0]


def test_backoff_is_capped_exponential_with_jitter() -> None:
    """Each delay lies in [0, min(cap, base * 2**(n-1))]."""
    script = Script(answer(500, None))
    client, sleeps = make(script, max_retries=8, backoff_cap=4.0, backoff_base=0.5)
    with pytest.raises(ServerError):
        client.credits()
    assert len(sleeps) == 8
    for n, delay in enumerate(sleeps, start=1):
        assert 0 <= delay <= min(4.0, 0.5 * 2 ** (n - 1))
    assert max(sleeps) > 0.5  # the ceiling grows past the base


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_get_retries_5xx(status: int) -> None:
    """A GET is retried on any 5xx and succeeds once the server recovers."""
    script = Script(httpx.Response(status, text="<html>oops</html>"), answer(200, FINISHED))
    client, _ = make(script)
    assert client.get_result("e-1").status is EnrichmentStatus.FINISHED
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("disconnected"),
        httpx.ReadError("reset"),
    ],
)
def test_get_retries_transport_failures(failure: Exception) -> None:
    """A GET is retried on connection failures and timeouts."""
    script = Script(failure, answer(200, {"workspace_id": "ws"}))
    client, _ = make(script)
    assert client.verify_key() == "ws"
    assert len(script.requests) == 2


def test_get_5xx_after_retries_is_server_error() -> None:
    """5xx on every attempt raises ServerError with the last status."""
    client, _ = make(Script(httpx.Response(502, text="bad gateway")))
    with pytest.raises(ServerError) as info:
        client.credits()
    assert info.value.status == 502


def test_connection_refused_after_retries_is_server_error() -> None:
    """A server that never accepts a connection gives ServerError naming the base URL."""
    client, _ = make(Script(httpx.ConnectError("refused")))
    with pytest.raises(ServerError, match="cannot reach the enrichment API at https://enrich"):
        client.verify_key()


@pytest.mark.parametrize("status", [500, 502, 504])
def test_post_5xx_is_outcome_unknown_and_not_resent(status: int) -> None:
    """500/502/504 on the POST may follow real work: OutcomeUnknown after one request."""
    script = Script(httpx.Response(status, text="oops"), answer(200, {"enrichment_id": "e-2"}))
    client, sleeps = make(script)
    with pytest.raises(OutcomeUnknown):
        client.submit(bulk())
    assert len(script.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [429, 503])
def test_post_refused_before_work_is_retried(status: int) -> None:
    """429 and 503 mean the POST was refused before any work, so it is sent again."""
    script = Script(err(status, "error.rate.limit"), answer(200, {"enrichment_id": "e-2"}))
    client, _ = make(script)
    assert client.submit(bulk()) == "e-2"
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("reset"),
        httpx.WriteError("broken pipe"),
        httpx.WriteTimeout("slow write"),
    ],
)
def test_post_failure_after_sending_is_outcome_unknown(failure: Exception) -> None:
    """Once the POST may have been written, a failure is OutcomeUnknown and never resent."""
    script = Script(failure, answer(200, {"enrichment_id": "e-2"}))
    client, _ = make(script)
    with pytest.raises(OutcomeUnknown, match="not resent"):
        client.submit(bulk())
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    "failure", [httpx.ConnectError("refused"), httpx.ConnectTimeout("syn"), httpx.PoolTimeout("")]
)
def test_post_never_sent_is_retried(failure: Exception) -> None:
    """A connection refused (request provably unsent) is retried, then the POST succeeds."""
    script = Script(failure, answer(200, {"enrichment_id": "e-3"}))
    client, sleeps = make(script)
    assert client.submit(bulk()) == "e-3"
    assert len(script.requests) == 2
    assert len(sleeps) == 1
    assert client.stats.retries["submit"] == 1


def test_post_never_connecting_is_server_error() -> None:
    """A POST that can never connect ends as ServerError (safe to retry later), not unknown."""
    script = Script(httpx.ConnectError("refused"))
    client, _ = make(script, max_retries=2)
    with pytest.raises(ServerError):
        client.submit(bulk())
    assert len(script.requests) == 3


def test_from_config_uses_provider_url_and_settings() -> None:
    """from_config takes the provider's base URL, key and limits; overrides win."""
    config = EnrichmentConfig(
        provider="deepenrich", api_key=SecretStr("cfg-key-1234"), max_retries=1, timeout_seconds=2
    )
    script = Script(answer(200, {"balance": 3}))
    client = EnrichmentClient.from_config(
        config, transport=httpx.MockTransport(script), limiter=SlidingWindowLimiter(5, 1.0)
    )
    assert client.base_url == "https://app.deepenrich.com/api/v1"
    assert client.max_retries == 1
    assert client.credits() == 3
    assert script.requests[0].headers["Authorization"] == "Bearer cfg-key-1234"
    other = EnrichmentClient.from_config(config, base_url="http://127.0.0.1:9/api/v1")
    assert other.base_url == "http://127.0.0.1:9/api/v1"
    client.close()
    other.close()


def test_client_is_a_context_manager() -> None:
    """Leaving the with-block closes the underlying HTTP client."""
    with make(Script(answer(200, {"balance": 1})))[0] as client:
        client.credits()
    with pytest.raises(RuntimeError):
        client.credits()


def test_each_retry_logs_the_common_retry_event() -> None:
    """A retried call logs the one `retry` event of the policy, naming the caller and endpoint."""
    script = Script(err(429, "error.rate.limit"), answer(200, {"balance": 1}))
    client, _ = make(script)
    with capture_logs() as logs:
        client.credits()
    retries = [e for e in logs if e["event"] == "retry"]
    assert [(e["caller"], e["endpoint"], e["attempt"]) for e in retries] == [
        ("enrichment", "credits", 1)
    ]


def test_stop_between_refused_post_attempts_is_not_sent() -> None:
    """A stop set while backing off after a 429 ends the POST with NotSent, sent once."""
    stop = threading.Event()
    script = Script(err(429, "error.rate.limit"), answer(200, {"enrichment_id": "e-2"}))
    client, sleeps = make(script)
    with pytest.raises(NotSent, match="between attempts"):
        client.submit(bulk(), on_send=stop.set, stop=stop)
    assert len(script.requests) == 1
    assert len(sleeps) == 1


def test_giving_up_hides_the_transport_error() -> None:
    """The errors raised on giving up chain nothing: they carry only codes and statuses."""
    client, _ = make(Script(httpx.ConnectError("refused")), max_retries=1)
    with pytest.raises(ServerError) as info:
        client.verify_key()
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    post, _ = make(Script(httpx.ReadTimeout("slow")))
    with pytest.raises(OutcomeUnknown) as unknown:
        post.submit(bulk())
    assert unknown.value.__cause__ is None
