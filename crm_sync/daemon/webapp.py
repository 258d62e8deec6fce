"""The daemon's HTTP face: the enrichment webhook receiver, `/healthz`, `/readyz`, `/metrics`.

A webhook is answered only after its raw result is stored durably (so a 2xx never loses a paid
result) and before it is written back (so the answer is fast). Everything that is refused
(401, 400, 408, 413) is refused before the store is touched; a body that stalls is cut off
after `webhook.body_timeout_seconds` (408). `/readyz` answers 503 within
`webhook.readyz_timeout_seconds` even when the database hangs; `/healthz` fails when the
daemon's cycles stopped (see `crm_sync.daemon.health`).

A signed body whose envelope is readable (a JSON object with an id, a terminal status, `datas`
a list) is acknowledged even when some items are not: those are recorded `malformed` at
write-back, the others written. A result for an id no batch carries yet is kept ("kept") and
attached later, never dropped.

The wire dialect comes from the configuration (`enrichment.api_version`), never from the
payload: a v2 body is mapped to the internal shape before it is stored. With v2 and
`enrichment.webhook_events: [contact_finished]`, a second route (`<path>/contact`) takes the
per-contact events, signed the same way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from crm_sync import errors
from crm_sync.daemon.health import StorePing
from crm_sync.enrichment.models import EnrichmentStatus
from crm_sync.enrichment.signature import SIGNATURE_HEADER, verify
from crm_sync.enrichment.wire import WireDialect, dialect_for
from crm_sync.enrichment.wire_v2 import CONTACT_EVENT, CONTACT_EVENT_PATH
from crm_sync.logs import get_logger
from crm_sync.outputs.metrics import Metrics
from crm_sync.pipeline.collect import accept_result
from crm_sync.pipeline.contact_events import accept_contact_event
from crm_sync.pipeline.context import Context
from crm_sync.store.states import StoreOutcome

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# "kept": no batch carries the id yet (the POST's answer is not recorded, or the batch is
# in_doubt); the result is stored durably and attached when a batch does. Never "unknown".
ACKNOWLEDGED = frozenset({StoreOutcome.STORED, StoreOutcome.DUPLICATE, StoreOutcome.KEPT})


def _log() -> Any:
    """Bound at call time: a module-level logger would miss `configure_logging`."""
    return get_logger(component="daemon.webapp")


class BodyTooLarge(Exception):
    """The request body is over the configured cap."""


class Malformed(Exception):
    """The body is not a terminal enrichment result we can store."""


class BodyTimeout(Exception):
    """The client did not send the whole body in time (a stalled or trickling sender)."""


def _always_healthy() -> tuple[bool, dict[str, Any]]:
    return True, {"healthy": True}


@dataclass(frozen=True)
class Hooks:
    """What the web app asks of the daemon around it."""

    ready: Callable[[], bool]  # the scheduler is running (the store is checked here)
    on_stored: Callable[[], None]  # a new result is stored: wake the write-back worker
    healthy: Callable[[], tuple[bool, dict[str, Any]]] = _always_healthy  # cycles on schedule


def build_app(ctx: Context, metrics: Metrics, hooks: Hooks) -> Starlette:
    """The Starlette app; the webhook route exists only when `webhook.enabled`."""
    settings = ctx.config.webhook
    ping = StorePing(ctx.store.ping, settings.readyz_timeout_seconds)
    dialect = dialect_for(ctx.config.enrichment.api_version)

    async def healthz(_: Request) -> Response:
        healthy, details = hooks.healthy()
        if healthy:
            return PlainTextResponse("ok\n")
        return JSONResponse(details, status_code=503)

    async def readyz(_: Request) -> Response:
        store_ok = await ping.check()
        scheduler_ok = hooks.ready()
        body = {"store": store_ok, "scheduler": scheduler_ok}
        return JSONResponse(body, status_code=200 if store_ok and scheduler_ok else 503)

    async def metrics_endpoint(_: Request) -> Response:
        text = await run_in_threadpool(metrics.render)
        return Response(text, media_type=PROMETHEUS_CONTENT_TYPE)

    async def webhook(request: Request) -> Response:
        return await _answer(request, contact=False)

    async def contact_webhook(request: Request) -> Response:
        return await _answer(request, contact=True)

    async def _answer(request: Request, *, contact: bool) -> Response:
        outcome, status = await _receive(request, ctx, dialect, contact=contact)
        metrics.observe_webhook(outcome)
        if outcome == StoreOutcome.STORED:
            hooks.on_stored()
        if status == 200:
            return JSONResponse({"status": "accepted", "outcome": outcome})
        # The rest of a stalled body may never come: close the connection instead of reading on.
        headers = {"connection": "close"} if status == 408 else None
        return JSONResponse({"error": outcome}, status_code=status, headers=headers)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    if settings.enabled:
        routes.append(Route(settings.path, webhook, methods=["POST"]))
        if CONTACT_EVENT in ctx.config.enrichment.webhook_events:
            contact_path = settings.path.rstrip("/") + CONTACT_EVENT_PATH
            routes.append(Route(contact_path, contact_webhook, methods=["POST"]))
    return Starlette(routes=routes)


async def _receive(
    request: Request, ctx: Context, dialect: WireDialect, *, contact: bool = False
) -> tuple[str, int]:
    """Classify and store one delivery: (metrics outcome, HTTP status)."""
    settings = ctx.config.webhook
    try:
        body = await read_capped(request, settings.max_body_bytes, settings.body_timeout_seconds)
    except BodyTooLarge:
        _log().warning("webhook_too_large", limit=settings.max_body_bytes)
        return "too_large", 413
    except BodyTimeout:
        _log().warning("webhook_body_timeout", timeout_seconds=settings.body_timeout_seconds)
        return "timeout", 408
    if settings.require_signature:
        key = ctx.config.enrichment.api_key.get_secret_value()
        if not verify(body, request.headers.get(SIGNATURE_HEADER), key):
            _log().warning("webhook_bad_signature", present=SIGNATURE_HEADER in request.headers)
            return "bad_signature", 401
    if contact:
        return await _store_contact(ctx, body, dialect)
    return await _store(ctx, body, dialect)


async def _store_contact(ctx: Context, body: bytes, dialect: WireDialect) -> tuple[str, int]:
    """Store a per-contact event's item(s); 400 when unreadable, 503 when the store fails."""
    try:
        enrichment_id, items = dialect.contact_event_items(json.loads(body.decode("utf-8")))
    except (UnicodeDecodeError, ValueError) as exc:
        _log().warning("contact_event_malformed", reason=str(exc)[:200])
        return "malformed", 400
    try:
        outcome = await run_in_threadpool(accept_contact_event, ctx, enrichment_id, items)
    except Exception as exc:  # store unreachable: 503 makes the API deliver again later
        _log().error("webhook_store_failed", error=type(exc).__name__, detail=str(exc)[:200])
        return "error", 503
    _log().info(f"contact_event_{outcome}", enrichment_id=enrichment_id, items=len(items))
    return outcome, 200


async def _store(ctx: Context, body: bytes, dialect: WireDialect) -> tuple[str, int]:
    """Parse and store an authenticated body; 503 when the store fails so the API retries."""
    try:
        text = check_body(body, dialect)
        outcome = await run_in_threadpool(accept_result, ctx, text, source_kind="webhook")
    except (Malformed, PydanticValidationError, errors.ValidationError) as exc:
        _log().warning("webhook_malformed", reason=str(exc)[:200])
        return "malformed", 400
    except Exception as exc:  # store unreachable: 503 makes the API deliver again later
        _log().error("webhook_store_failed", error=type(exc).__name__, detail=str(exc)[:200])
        return "error", 503
    if outcome not in ACKNOWLEDGED:
        _log().warning("webhook_malformed", reason=f"outcome {outcome}")
        return "malformed", 400
    level = _log().warning if outcome == StoreOutcome.KEPT else _log().info
    level(f"webhook_{outcome}", enrichment_id=_id_of(text))
    return outcome, 200


async def read_capped(request: Request, limit: int, timeout: float | None = None) -> bytes:
    """The raw body, refused early on a large Content-Length and again while streaming.

    With `timeout`, the whole body must arrive within that many seconds (BodyTimeout): a
    client that sends headers and then stalls, or trickles a byte at a time, holds no worker.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []

    async def read() -> None:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)

    try:
        async with asyncio.timeout(timeout):
            await read()
    except TimeoutError:
        raise BodyTimeout from None
    return b"".join(chunks)


def check_body(body: bytes, dialect: WireDialect | None = None) -> str:
    """The body as internal JSON text when it is an object with an id and a terminal status."""
    try:
        text = body.decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Malformed("not JSON") from None
    if not isinstance(data, dict):
        raise Malformed("not a JSON object")
    if dialect is not None and dialect.version != "v1":
        try:
            data = dialect.to_internal(data)
        except ValueError as exc:
            raise Malformed(str(exc)) from None
        text = json.dumps(data)
    if not isinstance(data.get("id"), str) or not data["id"]:
        raise Malformed("no id")
    status = data.get("status")
    if not isinstance(status, str) or not EnrichmentStatus(status).is_terminal:
        raise Malformed("status is not terminal")
    return text


def _id_of(text: str) -> str | None:
    try:
        value = json.loads(text).get("id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


__all__ = [
    "BodyTimeout",
    "BodyTooLarge",
    "Hooks",
    "Malformed",
    "build_app",
    "check_body",
    "read_capped",
]
