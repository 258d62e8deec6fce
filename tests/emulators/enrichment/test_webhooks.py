"""Webhook delivery: signed body equal to the GET answer, retries on failure, and dropping."""

from __future__ import annotations

import json
import socket

import httpx

from crm_sync.enrichment.signature import verify
from crm_sync.sandbox.enrichment import EnrichmentEmulator
from tests.emulators.enrichment.conftest import KEY, Receiver, bulk, contact, wait_until

FAST = {"completion_delay": 3600, "webhook_retry_interval": 0.01}


def submit(client: httpx.Client, url: str) -> str:
    body = bulk(contact(custom={"crm_id": "1"}), webhook_url=url)
    return str(client.post("/contact/enrich/bulk", json=body).json()["enrichment_id"])


def test_webhook_is_signed_and_equals_the_result(make_api, receiver: Receiver) -> None:
    """The webhook body is the exact result object; its X-Signature-SHA1 verifies with the key."""
    emulator, client = make_api(**FAST)
    enrichment_id = submit(client, receiver.url)
    emulator.finish_all()
    wait_until(lambda: receiver.count() == 1)
    body, headers = receiver.received[0]
    assert verify(body, headers["x-signature-sha1"], KEY)
    assert not verify(body, headers["x-signature-sha1"], "another-key")
    assert json.loads(body) == emulator.result_body(enrichment_id)
    assert body == client.get(f"/contact/enrich/bulk/{enrichment_id}").content
    wait_until(lambda: len(emulator.webhook_attempts) == 1)
    attempt = emulator.webhook_attempts[0]
    assert (attempt.enrichment_id, attempt.url, attempt.attempt, attempt.status) == (
        enrichment_id,
        receiver.url,
        1,
        200,
    )


def test_webhook_sent_when_job_finishes_alone(make_api, receiver: Receiver) -> None:
    """A job finishing on its own timer also sends its webhook."""
    _, client = make_api(completion_delay=0.05)
    submit(client, receiver.url)
    wait_until(lambda: receiver.count() == 1)
    assert json.loads(receiver.received[0][0])["status"] == "FINISHED"


def test_webhook_retried_on_non_2xx_with_same_body(make_api, receiver: Receiver) -> None:
    """Two 500s then a 200: three attempts, the same signed bytes each time, then no more."""
    receiver.statuses = [500, 503]
    emulator, client = make_api(**FAST)
    submit(client, receiver.url)
    emulator.finish_all()
    wait_until(lambda: emulator.webhooks_pending() == 0)
    assert [a.status for a in emulator.webhook_attempts] == [500, 503, 200]
    assert [a.attempt for a in emulator.webhook_attempts] == [1, 2, 3]
    assert len({(body, h["x-signature-sha1"]) for body, h in receiver.received}) == 1


def test_webhook_gives_up_after_max_retries(make_api, receiver: Receiver) -> None:
    """A receiver that always fails gets the first attempt plus `webhook_max_retries` retries."""
    receiver.statuses = [500] * 10
    emulator, client = make_api(webhook_max_retries=2, **FAST)
    submit(client, receiver.url)
    emulator.finish_all()
    wait_until(lambda: emulator.webhooks_pending() == 0)
    assert receiver.count() == 3
    assert len(emulator.webhook_attempts) == 3


def test_connection_error_is_retried(make_api) -> None:
    """A closed port is recorded as an error, without status, and retried."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    emulator, client = make_api(webhook_max_retries=1, **FAST)
    submit(client, f"http://127.0.0.1:{port}/hook")
    emulator.finish_all()
    wait_until(lambda: emulator.webhooks_pending() == 0)
    assert len(emulator.webhook_attempts) == 2
    assert all(a.status is None and a.error for a in emulator.webhook_attempts)


def test_drop_webhooks_never_sends(make_api, receiver: Receiver) -> None:
    """With drop_webhooks on nothing is sent; switched off, the next job's webhook arrives."""
    emulator, client = make_api(drop_webhooks=True, **FAST)
    submit(client, receiver.url)
    emulator.finish_all()
    wait_until(lambda: emulator.webhooks_pending() == 0)
    emulator.faults.drop_webhooks = False
    second = submit(client, receiver.url)
    emulator.finish_all()
    # the attempt is recorded once the receiver's answer is back, a moment after it got the body
    wait_until(lambda: emulator.webhooks_pending() == 0)
    assert [json.loads(body)["id"] for body, _ in receiver.received] == [second]
    assert [a.enrichment_id for a in emulator.webhook_attempts] == [second]


def test_no_webhook_without_url(api: tuple[EnrichmentEmulator, httpx.Client]) -> None:
    """A job posted without webhook_url records no webhook attempt."""
    emulator, client = api
    client.post("/contact/enrich/bulk", json=bulk())
    emulator.finish_all()
    assert emulator.webhooks_pending() == 0
    assert emulator.webhook_attempts == []
