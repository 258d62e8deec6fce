"""The API key never reaches a log event, an exception text, a traceback or a repr."""

from __future__ import annotations

import logging
import random
import traceback
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from structlog.testing import LogCapture

from crm_sync.enrichment.client import EnrichmentClient
from crm_sync.enrichment.models import BulkRequest, ContactRequest
from crm_sync.enrichment.ratelimit import SlidingWindowLimiter
from crm_sync.errors import CrmSyncError
from crm_sync.logs import redact_secrets
from tests.support.clock import FakeClock

CANARY = "canary-9f1c2b7e-do-not-leak"


@pytest.fixture
def raw_events() -> Iterator[list[dict[str, Any]]]:
    """Every event the client emits, before any redaction, at debug level."""
    capture = LogCapture()
    structlog.configure(
        processors=[structlog.processors.add_log_level, capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    yield capture.entries
    structlog.reset_defaults()


@pytest.fixture
def rendered_events() -> Iterator[list[dict[str, Any]]]:
    """Events after the project's processors (exception formatting, then redaction)."""
    capture = LogCapture()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            redact_secrets,
            capture,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    yield capture.entries
    structlog.reset_defaults()


def _echo_key(request: httpx.Request) -> httpx.Response:
    """A hostile server that echoes the Authorization header inside its error message."""
    return httpx.Response(
        400, json={"code": "error.x", "message": request.headers.get("authorization", "")}
    )


FAILURES: list[Any] = [
    httpx.Response(401, json={"code": "error.api.key", "message": f"Unknown api key {CANARY}"}),
    _echo_key,
    httpx.Response(402, json={"code": "error.credits", "message": CANARY}),
    httpx.Response(404, json={"code": "error.enrichment.not_found", "message": "gone"}),
    httpx.Response(429, json={"code": "error.rate.limit", "message": "slow down"}),
    httpx.Response(502, text=f"<html>{CANARY}</html>"),
    httpx.ReadTimeout("timed out"),
    httpx.ConnectError("connection refused"),
    httpx.RemoteProtocolError("Server disconnected"),
]


def _client(step: Any) -> EnrichmentClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(step, Exception):
            raise step
        return step(request) if callable(step) else step

    return EnrichmentClient(
        "https://enrich.test/api/v1",
        CANARY,
        transport=httpx.MockTransport(handler),
        limiter=SlidingWindowLimiter(1000, 1.0),
        max_retries=1,
        clock=FakeClock(),
        rng=random.Random(1),
    )


def _exercise(client: EnrichmentClient) -> list[BaseException]:
    """Call every endpoint, collecting the exceptions raised."""
    bulk = BulkRequest(name="b", datas=[ContactRequest(firstname="a", lastname="b", domain="c.d")])
    caught: list[BaseException] = []
    calls = [client.verify_key, client.credits, lambda: client.submit(bulk)]
    calls.append(lambda: client.get_result("e-1"))
    for call in calls:
        try:
            call()
        except CrmSyncError as exc:
            caught.append(exc)
    return caught


def _exception_texts(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    texts += [repr(v) for v in vars(exc).values()]
    return texts


@pytest.mark.parametrize("step", FAILURES)
def test_key_absent_from_raw_events_and_exceptions(
    step: Any, raw_events: list[dict[str, Any]]
) -> None:
    """The client never puts the key in an event, message, chained traceback or attribute."""
    client = _client(step)
    caught = _exercise(client)
    assert caught, "every scripted failure must raise"
    assert raw_events, "the client logs every call at debug"
    for event in raw_events:
        assert CANARY not in repr(event)
    for exc in caught:
        for text in _exception_texts(exc):
            assert CANARY not in text
    assert CANARY not in repr(client)
    assert CANARY not in repr(client.stats)


def test_key_absent_after_project_processors(rendered_events: list[dict[str, Any]]) -> None:
    """Events logged with an exception attached are rendered without the key."""
    client = _client(httpx.Response(401, json={"code": "error.api.key", "message": CANARY}))
    try:
        client.verify_key()
    except CrmSyncError:
        structlog.get_logger("test").exception("check.failed", url=client.base_url)
    assert any("exception" in e for e in rendered_events)
    for event in rendered_events:
        assert CANARY not in repr(event)
