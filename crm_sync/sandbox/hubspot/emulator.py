"""A HubSpot CRM v3 contacts emulator (Starlette), answering as HubSpot's OpenAPI spec says.

Search with filter groups, one sort, `after` paging and the 10,000 cap (`search.py`);
create one or a batch (`create.py`); batch read and update with 207 partial errors and
whole-batch 409 email conflicts; single
GET/PATCH; `GET /crm/v3/properties/contacts/{name}`; bearer auth; the ten-secondly, search
per-second and daily limits with HubSpot's 429 bodies and `X-HubSpot-RateLimit-*` headers
(`limits.py`). Every request/response pair is kept in `exchanges` for contract tests.
Bearer tokens: the private app's `token`, or an access token from the OAuth token endpoint
(`oauth.py`), refused with 401 EXPIRED_AUTHENTICATION once `access_token_ttl` has passed.
"""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.sandbox.hubspot.create import create_batch, create_one
from crm_sync.sandbox.hubspot.limits import RateLimits
from crm_sync.sandbox.hubspot.oauth import HubSpotOAuth
from crm_sync.sandbox.hubspot.search import SearchError, parse_search
from crm_sync.sandbox.hubspot.store import READ_ONLY, ContactStore, WriteRecord, iso, seed_created
from crm_sync.sandbox.hubspot.writes import (
    BatchOutcome,
    Reply,
    error_body,
    plan_batch_update,
    standard_error,
    validate_changes,
)
from crm_sync.sandbox.people import Person, generate_people

__all__ = ["Exchange", "HubSpotEmulator", "WriteRecord"]

BASE = "/crm/v3/objects/contacts"
AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its answer, as seen on the wire (for OpenAPI contract tests)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes


class HubSpotEmulator:
    """In-memory HubSpot contacts, seeded from `people`, counting every call by kind."""

    def __init__(
        self,
        *,
        contacts: int = 0,
        seed: int = 7,
        people: list[Person] | None = None,
        token: str = "sandbox-hubspot-token",  # noqa: S107 - the sandbox's own, not a secret
        phone_property: str = "phone",
        opt_out_property: str = "crm_sync_opt_out",
        ten_secondly_limit: int = 100,
        search_per_second: int = 5,
        daily_limit: int = 250_000,
        search_lag: float = 0.0,
        clock: Clock = SYSTEM_CLOCK,
        access_token_ttl: float = 1800.0,
    ) -> None:
        self.token = token
        self.clock = clock
        self.oauth = HubSpotOAuth(clock=clock, access_token_ttl=access_token_ttl)
        self._expire_at: str | None = None
        self.phone_property = phone_property
        self.opt_out_property = opt_out_property
        self.limits = RateLimits(
            ten_secondly=ten_secondly_limit,
            search_per_second=search_per_second,
            daily=daily_limit,
            clock=clock,
        )
        self.store = ContactStore(
            clock=clock,
            search_lag=search_lag,
            extra_properties=(phone_property, opt_out_property),
        )
        self.calls: collections.Counter[str] = collections.Counter()
        self.exchanges: list[Exchange] = []
        self._faults: list[int] = []
        self._lock = threading.Lock()
        for person in people if people is not None else generate_people(contacts, seed):
            self.store.add(self._person_properties(person), created=seed_created(person.index))
        self.app = Starlette(routes=self._routes())

    # -- test-facing accessors --------------------------------------------------------------
    @property
    def records(self) -> dict[str, dict[str, str | None]]:
        """A copy of every record's properties, by id."""
        return self.store.snapshot()

    @property
    def writes(self) -> list[WriteRecord]:
        """Every successful API property change, in order."""
        return list(self.store.writes)

    def set_property(self, record_id: str, name: str, value: str | None) -> None:
        """A person's edit in the HubSpot UI (not counted as an API write)."""
        self.store.apply(record_id, {name: value}, by_api=False)

    def add_contact(self, **properties: str | None) -> str:
        """Create a contact as a person would; returns its id."""
        return self.store.add(dict(properties))

    def auth_settings(self, auth: str = "private_app") -> dict[str, Any]:
        """A HubSpot source's settings keys for one auth flow on this portal."""
        if auth == "oauth":
            return {
                "auth": "oauth",
                "client_id": self.oauth.client_id,
                "client_secret": self.oauth.client_secret,
                "refresh_token": self.oauth.refresh_token,
            }
        return {"access_token": self.token}

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` requests with `status` (a server fault)."""
        with self._lock:
            self._faults.extend([status] * count)

    def _person_properties(self, person: Person) -> dict[str, str | None]:
        return {
            "firstname": person.first_name,
            "lastname": person.last_name,
            "company": person.company,
            "website": person.domain,
            "hs_linkedin_url": person.linkedin_url,
            "email": person.email,
            self.phone_property: person.phone,
            self.opt_out_property: "true" if person.opted_out else None,
        }

    # -- plumbing ---------------------------------------------------------------------------
    def _routes(self) -> list[Route]:
        def route(path: str, method: str, kind: str, fn: Callable[..., Reply]) -> Route:
            async def endpoint(request: Request) -> Response:
                return await self._handle(request, kind, fn)

            return Route(path, endpoint, methods=[method])

        return [
            route(f"{BASE}/search", "POST", "search", self._search),
            route(f"{BASE}/batch/read", "POST", "batch_read", self._batch_read),
            route(f"{BASE}/batch/update", "POST", "batch_update", self._batch_update),
            route(f"{BASE}/batch/create", "POST", "batch_create", self._batch_create),
            route(BASE, "POST", "create", self._create),
            route(BASE + "/{record_id}", "GET", "get", self._get),
            route(BASE + "/{record_id}", "PATCH", "update", self._patch),
            route("/crm/v3/properties/contacts/{name}", "GET", "properties", self._property),
            Route("/oauth/v1/token", self._oauth_token, methods=["POST"]),
            Route("/oauth/v1/access-tokens/{token}", self._oauth_info, methods=["GET"]),
        ]

    async def _oauth_token(self, request: Request) -> Response:
        self.calls["oauth_token"] += 1
        status, payload = self.oauth.token(await request.body())
        return Response(json.dumps(payload), status_code=status, media_type="application/json")

    async def _oauth_info(self, request: Request) -> Response:
        self.calls["oauth_info"] += 1
        status, payload = self.oauth.info(request.path_params["token"])
        return Response(json.dumps(payload), status_code=status, media_type="application/json")

    def expire_tokens_at(self, path_part: str) -> None:
        """Expire every OAuth access token when the next request whose path has `path_part`
        arrives (a token that runs out right before, say, a batch update)."""
        self._expire_at = path_part

    def _unauthenticated(self, request: Request) -> dict[str, Any] | None:
        """HubSpot's 401 body for a missing, unknown or expired bearer token; None if valid."""
        if self._expire_at is not None and self._expire_at in request.url.path:
            self._expire_at = None
            self.oauth.expire_all()
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token == self.token:
            return None
        expired = self.oauth.expired_for(token) if scheme.lower() == "bearer" else None
        if expired is None:
            return error_body("INVALID_AUTHENTICATION", AUTH_MESSAGE)
        if expired <= 0:
            return None
        message = f"The OAuth token used to make this call expired {int(expired)} second(s) ago."
        return error_body("EXPIRED_AUTHENTICATION", message)

    async def _handle(self, request: Request, kind: str, fn: Callable[..., Reply]) -> Response:
        body = await request.body()
        self.calls[kind] += 1
        status, payload, headers = self._guard(request, kind)
        if status == 0:
            try:
                status, payload = fn(request, body)
            except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError, AttributeError):
                status, payload = 400, error_body("VALIDATION_ERROR", "Invalid input JSON")
        if kind != "search":
            headers.update(self.limits.headers())
        response = Response(
            json.dumps(payload), status_code=status, headers=headers, media_type="application/json"
        )
        self._record(request, body, response)
        return response

    def _guard(self, request: Request, kind: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Auth, injected faults and rate limits; status 0 means go on."""
        unauthenticated = self._unauthenticated(request)
        if unauthenticated is not None:
            return 401, unauthenticated, {}
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            return fault, error_body("INTERNAL_ERROR", "Internal error"), {}
        refusal = self.limits.admit(search=kind == "search")
        if refusal is not None:
            body = error_body(
                "RATE_LIMITS",
                refusal.message,
                errorType="RATE_LIMIT",
                policyName=refusal.policy,
                groupName="crm-sync-sandbox",
            )
            return 429, body, {}
        return 0, {}, {}

    def _record(self, request: Request, body: bytes, response: Response) -> None:
        exchange = Exchange(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers=dict(request.headers),
            body=body,
            status=response.status_code,
            response_headers=dict(response.headers),
            response_body=bytes(response.body),
        )
        with self._lock:
            self.exchanges.append(exchange)

    # -- endpoints --------------------------------------------------------------------------
    def _search(self, request: Request, body: bytes) -> Reply:
        try:
            search = parse_search(body)
        except SearchError as exc:
            return 400, error_body("VALIDATION_ERROR", str(exc))
        total, ids = self.store.search(search)
        answer: dict[str, Any] = {
            "total": total,
            "results": [
                self.store.object_json(i, search.properties, as_searched=True) for i in ids
            ],
        }
        next_after = search.after + len(ids)
        if next_after < total:
            link = f"{request.base_url}crm/v3/objects/contacts/search?after={next_after}"
            answer["paging"] = {"next": {"after": str(next_after), "link": link}}
        return 200, answer

    def _batch_read(self, request: Request, body: bytes) -> Reply:
        data = json.loads(body)
        inputs = [str(item["id"]) for item in data.get("inputs", [])]
        if len(inputs) > 100:
            return 400, error_body("VALIDATION_ERROR", "Batch size must be at most 100")
        found = [i for i in dict.fromkeys(inputs) if self.store.exists(i)]
        missing = [i for i in dict.fromkeys(inputs) if not self.store.exists(i)]
        errors = []
        if missing:
            message = (
                "Could not get some CONTACT objects, they may be deleted or not exist. "
                "Check that ids are valid."
            )
            errors.append(standard_error("OBJECT_NOT_FOUND", message, {"ids": missing}))
        results = [self.store.object_json(i, data.get("properties")) for i in found]
        return _batch_answer(results, errors, self.clock)

    def _batch_update(self, request: Request, body: bytes) -> Reply:
        data = json.loads(body)
        inputs = data.get("inputs", [])
        if len(inputs) > 100:
            return 400, error_body("VALIDATION_ERROR", "Batch size must be at most 100")
        outcome: BatchOutcome = plan_batch_update(self.store, inputs)
        if outcome.refusal is not None:
            return outcome.refusal
        results = []
        for record_id, changes in outcome.accepted:
            self.store.apply(record_id, changes, by_api=True)
            results.append(self.store.object_json(record_id, list(changes)))
        return _batch_answer(results, outcome.errors, self.clock)

    def _create(self, request: Request, body: bytes) -> Reply:
        return create_one(self.store, json.loads(body))

    def _batch_create(self, request: Request, body: bytes) -> Reply:
        return create_batch(self.store, json.loads(body), iso(self.clock.now()))

    def _get(self, request: Request, body: bytes) -> Reply:
        record_id = request.path_params["record_id"]
        if not self.store.exists(record_id):
            return 404, _not_found(record_id)
        names = [n for v in request.query_params.getlist("properties") for n in v.split(",") if n]
        return 200, self.store.object_json(record_id, names or None)

    def _patch(self, request: Request, body: bytes) -> Reply:
        record_id = request.path_params["record_id"]
        if not self.store.exists(record_id):
            return 404, _not_found(record_id)
        changes = {
            k: (None if v is None else str(v)) for k, v in json.loads(body)["properties"].items()
        }
        problem = validate_changes(self.store, record_id, changes)
        if problem is not None:
            return problem
        self.store.apply(record_id, changes, by_api=True)
        return 200, self.store.object_json(record_id, list(changes))

    def _property(self, request: Request, body: bytes) -> Reply:
        name = request.path_params["name"]
        if name not in self.store.known:
            message = f"Unable to find property {name} for object type contacts"
            return 404, error_body("OBJECT_NOT_FOUND", message)
        now = iso(self.clock.now())
        read_only = name in READ_ONLY
        return 200, {
            "name": name,
            "label": name.replace("_", " ").title(),
            "type": "enumeration" if name == self.opt_out_property else "string",
            "fieldType": "booleancheckbox" if name == self.opt_out_property else "text",
            "description": "",
            "groupName": "contactinformation",
            "options": [],
            "displayOrder": -1,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": False,
            "hidden": False,
            "hubspotDefined": name != self.opt_out_property,
            "formField": True,
            "modificationMetadata": {
                "archivable": True,
                "readOnlyDefinition": True,
                "readOnlyValue": read_only,
            },
            "createdAt": now,
            "updatedAt": now,
            "archived": False,
        }


def _not_found(record_id: str) -> dict[str, Any]:
    return error_body(
        "OBJECT_NOT_FOUND",
        "Object not found.  objectId are usually numeric.",
        context={"id": [record_id]},
    )


def _batch_answer(
    results: list[dict[str, Any]], errors: list[dict[str, Any]], clock: Clock
) -> Reply:
    now = iso(clock.now())
    answer: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": now,
        "completedAt": now,
    }
    if errors:
        answer.update(numErrors=len(errors), errors=errors)
        return 207, answer
    return 200, answer
