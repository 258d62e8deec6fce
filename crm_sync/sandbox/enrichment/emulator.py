"""A local emulator of the FullEnrich / DeepEnrich API (a Starlette ASGI app).

Mounted at `/api/v1` and `/api/v2` (v2 translated at the edge by `v2.py`, over the
same jobs and world). Each call passes, in order: fault injection (`faults.error_rate`:
500/502/503 before any work), bearer auth (401), the rate limit (429), then the endpoint;
`faults.latency` is slept after the work, just before answering (so a client that times out on
a POST still created the job, as in life).

Rate limit choice: a sliding window over every authenticated call; a call refused with 429
does not take a slot (so a client that keeps hammering recovers as soon as the window slides).

Jobs complete in an asyncio task on the server loop (`loop.py`): CREATED,
IN_PROGRESS after a quarter of `completion_delay`, then a terminal status. Counters are
guarded by a lock: tests read them from their own thread while the app runs in the server's.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import random
import threading
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.sandbox.enrichment.facts import JobStatus
from crm_sync.sandbox.enrichment.jobs import Job, json_bytes, submission
from crm_sync.sandbox.enrichment.loop import EmulatorLoop
from crm_sync.sandbox.enrichment.records import (
    CallRecord,
    Exchange,
    Faults,
    SubmittedContact,
    WebhookAttempt,
    max_in_window,
)
from crm_sync.sandbox.enrichment.results import empty_datas, result_object, settle
from crm_sync.sandbox.enrichment.styles import AnswerStyles
from crm_sync.sandbox.enrichment.v2 import (
    CONTACT_EVENT_STYLES,
    body_in,
    result_to_v2,
    submission_from_v2,
    v2_bodies,
    v2_guard,
)
from crm_sync.sandbox.enrichment.validation import ApiFailure, validate_bulk
from crm_sync.sandbox.enrichment.webhooks import DeliveryPolicy

__all__ = [
    "AnswerStyles",
    "CallRecord",
    "EnrichmentEmulator",
    "Exchange",
    "Faults",
    "SubmittedContact",
    "WebhookAttempt",
]

Handler = Callable[[Request], Awaitable[Response]]
IN_PROGRESS_STYLES = ("200", "400", "alternate")
AUTH_NOT_SET = ApiFailure(401, "error.authorization.not_set", "Authorization headers not set")
AUTH_NOT_BEARER = ApiFailure(
    401, "error.authorization.not_bearer", "Authorization headers not have prefix 'bearer'"
)
AUTH_BAD_KEY = ApiFailure(401, "error.api.key", "Unknown api key")
RATE_LIMITED = ApiFailure(429, "error.rate.limit", "Too many requests. Try again in 1m")
NOT_FOUND = ApiFailure(404, "error.enrichment.not_found", "Enrichment not found")
IN_PROGRESS = ApiFailure(400, "error.enrichment.in_progress", "Enrichment is in progress")
BODY_INVALID = ApiFailure(400, "error.body.invalid", "The body is not valid JSON")


def _error(failure: ApiFailure) -> JSONResponse:
    return JSONResponse(failure.body(), status_code=failure.status)


class EnrichmentEmulator(EmulatorLoop):
    """The enrichment API in memory, with counters a test can read and faults it can flip."""

    def __init__(
        self,
        *,
        api_key: str = "sandbox-enrichment-key",
        workspace_id: str = "ws-sandbox",
        balance: int = 1_000_000,
        rate_limit_calls: int = 60,
        rate_limit_window: float = 60.0,
        completion_delay: float = 0.2,
        webhook_retry_interval: float = 60.0,
        webhook_max_retries: int = 5,
        in_progress_style: str = "alternate",
        error_rate: float = 0.0,
        latency: float = 0.0,
        drop_webhooks: bool = False,
        styles: AnswerStyles | None = None,
        contact_event_style: str = "record",
        record_exchanges: bool = False,
        strict_input: bool = True,
        seed: int = 0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if in_progress_style not in IN_PROGRESS_STYLES:
            raise ValueError(f"in_progress_style must be one of {IN_PROGRESS_STYLES}")
        if contact_event_style not in CONTACT_EVENT_STYLES:
            raise ValueError(f"contact_event_style must be one of {CONTACT_EVENT_STYLES}")
        self.contact_event_style = contact_event_style
        self.record_exchanges = record_exchanges
        self.exchanges: list[Exchange] = []
        self.api_key = api_key
        self.workspace_id = workspace_id
        self.balance = balance
        self.rate_limit_calls = rate_limit_calls
        self.rate_limit_window = rate_limit_window
        self.completion_delay = completion_delay
        self.webhook_policy = DeliveryPolicy(webhook_retry_interval, webhook_max_retries)
        self.in_progress_style = in_progress_style
        self.faults = Faults(error_rate=error_rate, latency=latency, drop_webhooks=drop_webhooks)
        # Strict: names and company always required (a LinkedIn URL alone is refused with a
        # 400), and error messages do not say which item of `datas` was refused.
        self.strict_input = strict_input
        self.styles = styles or AnswerStyles()
        self.clock = clock
        self.submitted: list[SubmittedContact] = []
        self.calls: list[CallRecord] = []
        self.webhook_attempts: list[WebhookAttempt] = []
        self.credits_charged = 0
        self._lock = threading.RLock()
        self._random = random.Random(seed)
        self._window: deque[float] = deque()
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._webhooks_pending = 0
        self.app = Starlette(
            routes=[
                Mount("/api/v1", routes=self._routes("v1")),
                Mount("/api/v2", routes=self._routes("v2")),
            ]
        )

    def __repr__(self) -> str:  # never show the API key
        return f"EnrichmentEmulator(workspace_id={self.workspace_id!r}, jobs={len(self._jobs)})"

    def _routes(self, dialect: str) -> list[Route]:
        guard = self._guard if dialect == "v1" else self._guard_v2

        async def post_bulk(request: Request) -> Response:
            return await self._post_bulk(request, dialect)

        async def get_result(request: Request) -> Response:
            return await self._get_result(request, dialect)

        return [
            Route("/account/keys/verify", guard(self._verify), methods=["GET"]),
            Route("/account/credits", guard(self._credits), methods=["GET"]),
            Route("/contact/enrich/bulk", guard(post_bulk), methods=["POST"]),
            Route("/contact/enrich/bulk/{enrichment_id}", guard(get_result), methods=["GET"]),
        ]

    # -- what tests read -------------------------------------------------------------------

    def submissions_per_contact(self) -> Counter[str]:
        """How many times each contact was submitted: by `custom["crm_id"]`, else identity."""
        with self._lock:
            return Counter(s.key for s in self.submitted)

    def max_calls_in_any_window(self, window: float | None = None) -> int:
        """Most admitted calls (authenticated, not 429) in any sliding window of `window` s."""
        with self._lock:
            times = [c.at for c in self.calls if c.counted]
        return max_in_window(times, self.rate_limit_window if window is None else window)

    def result_body(self, enrichment_id: str, dialect: str | None = None) -> dict[str, Any]:
        """The result object as GET through `dialect` (default: the job's own, as its webhook)
        sends it; KeyError if unknown."""
        with self._lock:
            job = self._jobs[enrichment_id]
            body = job.v1_body if dialect == "v1" else job.body
            if body is not None:
                parsed: dict[str, Any] = json.loads(body)
                return parsed
            return job.pending_body()

    def internal_result(self, enrichment_id: str) -> dict[str, Any]:
        """The result in v1's shape (the emulator's own), whatever version created the job."""
        return self.result_body(enrichment_id, "v1")

    def webhooks_pending(self) -> int:
        """Deliveries scheduled and not yet over (delivered, given up, or dropped)."""
        with self._lock:
            return self._webhooks_pending

    def job_ids(self) -> list[str]:
        """Every enrichment id created, oldest first."""
        with self._lock:
            return list(self._jobs)

    # -- what tests do ---------------------------------------------------------------------

    def finish_all(self) -> None:
        """Complete every pending job now (webhooks are then sent from the server loop)."""
        with self._lock:
            pending = [job for job in self._jobs.values() if job.body is None]
        for job in pending:
            self._complete(job)

    def cancel(self, enrichment_id: str) -> None:
        """Cancel a pending job, as a user would in the dashboard: status CANCELED, no data."""
        with self._lock:
            job = self._jobs[enrichment_id]
        self._complete(job, canceled=True)

    def expire(self, enrichment_id: str) -> None:
        """Forget a job's results, as the API does after about three months (GET: 404)."""
        with self._lock:
            self._jobs[enrichment_id].expired = True

    # -- the pipeline every call passes through ---------------------------------------------

    def _guard(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            self._loop = asyncio.get_running_loop()
            response, at, counted = await self._dispatch(request, handler)
            if self.faults.latency > 0:
                await asyncio.sleep(self.faults.latency)
            record = CallRecord(at, request.method, request.url.path, response.status_code, counted)
            with self._lock:
                self.calls.append(record)
            return response

        return endpoint

    def _guard_v2(self, handler: Handler) -> Handler:
        """The v1 guard, with refusals in v2's codes and each exchange kept when asked."""
        return v2_guard(self._guard, handler, self._keep_exchange)

    def _keep_exchange(self, exchange: Exchange) -> None:
        if self.record_exchanges:
            with self._lock:
                self.exchanges.append(exchange)

    async def _dispatch(self, request: Request, handler: Handler) -> tuple[Response, float, bool]:
        fault = self._roll_fault()
        if fault is not None:
            return fault, self.clock.monotonic(), False
        try:
            self._authenticate(request.headers.get("authorization"))
        except ApiFailure as failure:
            return _error(failure), self.clock.monotonic(), False
        admitted, at = self._admit()
        if not admitted:
            return _error(RATE_LIMITED), at, False
        try:
            return await handler(request), at, True
        except ApiFailure as failure:
            return _error(failure), at, True

    def _roll_fault(self) -> Response | None:
        with self._lock:
            if self.faults.error_rate <= 0 or self._random.random() >= self.faults.error_rate:
                return None
            status = self._random.choice(self.faults.statuses)
        if status == 500:
            return JSONResponse({"code": "error.internal", "message": "Internal error"}, 500)
        text = "Bad Gateway" if status == 502 else "Service Unavailable"
        return PlainTextResponse(f"<html><body><h1>{status} {text}</h1></body></html>", status)

    def _authenticate(self, header: str | None) -> None:
        if not header or not header.strip():
            raise AUTH_NOT_SET
        scheme, _, key = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise AUTH_NOT_BEARER
        if not hmac.compare_digest(key.strip().encode(), self.api_key.encode()):
            raise AUTH_BAD_KEY

    def _admit(self) -> tuple[bool, float]:
        """Take a slot of the sliding window, or refuse without taking one."""
        with self._lock:
            now = self.clock.monotonic()
            while self._window and self._window[0] <= now - self.rate_limit_window:
                self._window.popleft()
            if len(self._window) >= self.rate_limit_calls:
                return False, now
            self._window.append(now)
            return True, now

    # -- endpoints ---------------------------------------------------------------------------

    async def _verify(self, request: Request) -> Response:
        return JSONResponse({"workspace_id": self.workspace_id})

    async def _credits(self, request: Request) -> Response:
        with self._lock:
            return JSONResponse({"balance": self.balance})

    async def _post_bulk(self, request: Request, dialect: str = "v1") -> Response:
        try:
            payload = json.loads(await request.body())
        except ValueError as exc:
            raise BODY_INVALID from exc
        contact_url = None
        if dialect == "v2":
            v2 = submission_from_v2(payload)
            payload, contact_url = v2.payload, v2.contact_url
        flags = request.query_params
        bulk = validate_bulk(
            payload,
            check_domain=flags.get("checkDomain", "true").lower() != "false",
            check_linkedin=flags.get("checkLinkedinUrl", "true").lower() != "false",
            linkedin_alone=not self.strict_input,
            name_items=not self.strict_input,
        )
        job = Job(id=str(uuid.uuid4()), request=bulk, dialect=dialect, contact_url=contact_url)
        now = self.clock.monotonic()
        with self._lock:
            self._jobs[job.id] = job
            self.submitted.extend(submission(job.id, c, now) for c in bulk.contacts)
        if self.styles.slow_post_answer:  # the webhook beats the POST's answer
            self._complete(job)
            await self._first_webhook_attempt(job.id)
        else:
            job.task = self._spawn(self._run(job))
        if self.styles.slow_post_seconds > 0:
            await asyncio.sleep(self.styles.slow_post_seconds)
        return JSONResponse({"enrichment_id": job.id})

    async def _get_result(self, request: Request, dialect: str = "v1") -> Response:
        force = request.query_params.get("forceResults", "false").lower() == "true"
        with self._lock:
            job = self._jobs.get(request.path_params["enrichment_id"])
            if job is None or job.expired:
                raise NOT_FOUND
            answer = body_in(dialect, job)
            if answer is not None:
                status = 402 if job.status is JobStatus.CREDITS_INSUFFICIENT else 200
                return Response(answer, status, media_type="application/json")
            if force:  # nothing is charged until the job ends, so nothing is known yet
                datas = empty_datas(job.request.contacts)
                body = result_object(job.id, job.request.name, job.status, 0, datas)
                if dialect == "v2":
                    body = result_to_v2(body, job.request.contacts)
                return JSONResponse(body)
            job.gets += 1
            style = self.in_progress_style
            if style == "400" or (style == "alternate" and job.gets % 2 == 0):
                raise IN_PROGRESS
            return JSONResponse(job.pending_body())

    # -- job life -------------------------------------------------------------------------------

    async def _run(self, job: Job) -> None:
        await asyncio.sleep(self.completion_delay / 4)
        with self._lock:
            if job.status is JobStatus.CREATED:
                job.status = JobStatus.IN_PROGRESS
        await asyncio.sleep(self.completion_delay * 3 / 4)
        self._complete(job, from_runner=True)

    def _complete(self, job: Job, *, canceled: bool = False, from_runner: bool = False) -> None:
        """Settle `job` once (charging credits), then send its webhook; later calls do nothing."""
        with self._lock:
            if job.body is not None:
                return
            if canceled:
                status, credits = JobStatus.CANCELED, 0
                datas = empty_datas(job.request.contacts)
            else:
                outcome = settle(job.request.contacts, self.balance)
                status, credits, datas = outcome.status, outcome.credits, outcome.datas
                self.balance -= credits
                self.credits_charged += credits
            job.status = status
            result = result_object(job.id, job.request.name, status, credits, datas)
            job.v1_body = json_bytes({**result, "datas": self.styles.shape_datas(datas)})
            job.body = job.v1_body
            events: list[tuple[str, bytes, bool]] = []
            if job.dialect == "v2":  # converted first: the answer styles shape the wire items
                style = self.contact_event_style
                result, contacts = v2_bodies(result, job.request.contacts, job.contact_url, style)
                events = [(url, json_bytes(event), False) for url, event in contacts]
                result["data"] = self.styles.shape_datas(result.get("data", []), "v2")
                job.body = json_bytes(result)
            runner = job.task
        if runner is not None and not from_runner:
            self._call_on_loop(runner.cancel)
        if job.request.webhook_url:
            events.append((job.request.webhook_url, job.body, True))
        if events:
            self._deliver_later(job.id, events)
