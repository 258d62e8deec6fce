"""A Salesforce org emulator: the REST calls the connector makes, the SOAP login and OAuth.

Answers `query` (a real SOQL-subset parser) with `nextRecordsUrl` cursors, record creation
(`create.py`: Contact and Lead, with `SystemModstamp`), sObject collection
updates with per-record results, single-record GET/PATCH, `describe`, `limits`, the
`Sforce-Limit-Info` header on every answer, 401 for a bad bearer and 403 REQUEST_LIMIT_EXCEEDED
once `daily_limit` calls are spent. Records live in memory; every call is counted in `calls`.
Logins (SOAP, and the OAuth token endpoint of `oauth.py`) issue fresh session ids that
expire after `session_ttl` seconds when it is set; the configured `session_id` never expires.
SOAP login() is absent from API 65.0 and later, as in Salesforce: it answers 404 there.
"""

from __future__ import annotations

import collections
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.sandbox.people import Person, generate_people
from crm_sync.sandbox.salesforce.create import create_record
from crm_sync.sandbox.salesforce.data import (
    READ_ONLY,
    RELATIONSHIPS,
    SCHEMAS,
    QueryRunner,
    canonical_object,
    normalize_id,
    object_of,
    seed_records,
)
from crm_sync.sandbox.salesforce.login import (
    SANDBOX_PASSWORD,
    SANDBOX_SECURITY_TOKEN,
    LoginEndpoints,
)
from crm_sync.sandbox.salesforce.login import (
    errors as rest_errors,
)

__all__ = ["SANDBOX_PASSWORD", "SANDBOX_SECURITY_TOKEN", "SalesforceEmulator", "WriteRecord"]
from crm_sync.sandbox.salesforce.oauth import OAuthApp, SessionBook, TokenEndpoint
from crm_sync.sandbox.salesforce.soql import SoqlError, parse
from crm_sync.sandbox.salesforce.writes import check_update

API = "/services/data/v{version:str}"
MAX_COLLECTION = 200
# REST versions this org answers: composite/sobjects exists from 42.0; 66.0 is the newest the
# emulator models. Others are 404 NOT_FOUND, as an org answers a version it does not know.
API_VERSIONS = (42.0, 66.0)


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One record update the emulator applied."""

    at: float
    object: str
    record_id: str
    fields: dict[str, Any]


_errors = rest_errors


def _known_version(text: str) -> bool:
    return (
        bool(re.fullmatch(r"\d+\.\d", text)) and API_VERSIONS[0] <= float(text) <= API_VERSIONS[1]
    )


class SalesforceEmulator(LoginEndpoints):
    """An in-memory org behind a Starlette app; `records` is Id -> fields for every object."""

    def __init__(
        self,
        *,
        contacts: int = 0,
        leads: int = 0,
        seed: int = 7,
        people: list[Person] | None = None,
        session_id: str = "sandbox-sf-session",
        username: str = "sandbox@example.com",
        password: str = SANDBOX_PASSWORD,
        security_token: str = SANDBOX_SECURITY_TOKEN,
        daily_limit: int = 100_000,
        page_size: int = 2000,
        clock: Clock = SYSTEM_CLOCK,
        oauth_app: OAuthApp | None = None,
        session_ttl: float | None = None,
    ) -> None:
        contact_people = people if people is not None else generate_people(contacts, seed)
        lead_people = generate_people(leads, seed + 1) if leads else []
        self.records: dict[str, dict[str, Any]] = seed_records(contact_people, lead_people)
        self.session_id = session_id
        self.username = username
        self._secret = password + security_token
        self.daily_limit = daily_limit
        self.page_size = page_size
        self.clock = clock
        self.api_usage = 0
        self.writes: list[WriteRecord] = []
        self.calls: collections.Counter[str] = collections.Counter()
        self.failures: list[int] = []  # statuses to answer next, one per call (fault injection)
        self._cursors: dict[str, tuple[list[dict[str, Any]], int]] = {}  # rows, page size
        self._cursor_ids = itertools.count(1)
        self._runner = QueryRunner(self.records)
        self.sessions = SessionBook(clock, session_ttl)
        self._expire_at: str | None = None
        self.token_failures: list[int] = []
        self.oauth_app = oauth_app or OAuthApp(pre_authorized=frozenset({username}))
        self.users: dict[str, str] = {}
        self.token_endpoint = TokenEndpoint(self.oauth_app, self.sessions, self.users)
        self.app = Starlette(routes=self._routes())

    # --- helpers a test calls --------------------------------------------------------------
    def set_field(self, record_id: str, name: str, value: Any) -> None:
        """A person's edit in the Salesforce UI: not an API call, not in `writes`."""
        stamp = self.stamp()
        self.records[record_id].update(
            {name: value, "LastModifiedDate": stamp, "SystemModstamp": stamp}
        )

    def stamp(self) -> str:
        """Now, as Salesforce writes a datetime field."""
        return self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    def delete(self, record_id: str) -> None:
        """A record deleted by someone else."""
        del self.records[record_id]

    def rotate_session(self, new_session_id: str) -> None:
        """Expire the current session and every one issued: they answer 401 from now on."""
        self.session_id = new_session_id
        self.sessions.expire_all()

    def expire_sessions(self) -> None:
        """Expire every session issued by a login (the configured `session_id` stays)."""
        self.sessions.expire_all()

    def expire_sessions_at(self, path_part: str) -> None:
        """Expire every session, the configured one too, when the next request whose path has
        `path_part` arrives (a session that runs out right before, say, a write)."""
        self._expire_at = path_part

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` REST calls with `status` (503 SERVER_UNAVAILABLE by default)."""
        self.failures.extend([status] * count)

    def of_type(self, sobject: str) -> dict[str, dict[str, Any]]:
        """The records of one object, by id."""
        return {i: r for i, r in self.records.items() if object_of(i) == sobject}

    # --- plumbing ----------------------------------------------------------------------------
    def _routes(self) -> list[Route]:
        def rest(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
            async def endpoint(request: Request) -> Response:
                return await self._guard(request, handler)

            return endpoint

        return [
            Route("/services/Soap/u/{version:str}", self._login, methods=["POST"]),
            Route("/services/oauth2/token", self._token, methods=["POST"]),
            Route("/services/oauth2/userinfo", self._userinfo, methods=["GET", "POST"]),
            Route("/id/{org:str}/{user:str}", self._userinfo, methods=["GET"]),
            Route(f"{API}/query/", rest(self._query), methods=["GET"]),
            Route(f"{API}/query", rest(self._query), methods=["GET"]),
            Route(f"{API}/query/{{locator:str}}", rest(self._query_more), methods=["GET"]),
            Route(f"{API}/composite/sobjects", rest(self._composite), methods=["PATCH"]),
            Route(f"{API}/limits", rest(self._limits), methods=["GET"]),
            Route(f"{API}/limits/", rest(self._limits), methods=["GET"]),
            Route(f"{API}/sobjects/{{sobject:str}}", rest(self._create), methods=["POST"]),
            Route(f"{API}/sobjects/{{sobject:str}}/", rest(self._create), methods=["POST"]),
            Route(f"{API}/sobjects/{{sobject:str}}/describe", rest(self._describe)),
            Route(f"{API}/sobjects/{{sobject:str}}/describe/", rest(self._describe)),
            Route(
                f"{API}/sobjects/{{sobject:str}}/{{record_id:str}}",
                rest(self._record),
                methods=["GET", "PATCH"],
            ),
        ]

    def _usage_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_usage}/{self.daily_limit}"}

    async def _guard(self, request: Request, handler: Callable[[Request], Any]) -> Response:
        """Auth, faults and the daily allocation around every REST call."""
        if self._expire_at is not None and self._expire_at in request.url.path:
            self._expire_at = None
            self.rotate_session(self.session_id + "-renewed")
        if not _known_version(request.path_params.get("version", "")):
            response: Response = _errors(404, "NOT_FOUND", "The requested resource does not exist")
        elif self._user_of(request) is None:
            response = _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
        elif self.api_usage >= self.daily_limit:
            response = _errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        elif self.failures:
            self.api_usage += 1
            status = self.failures.pop(0)
            response = _errors(status, "SERVER_UNAVAILABLE", "Server unavailable, try again")
        else:
            self.api_usage += 1
            response = await handler(request)
        response.headers.update(self._usage_header())
        return response

    # --- query -------------------------------------------------------------------------------
    async def _query(self, request: Request) -> Response:
        self.calls["query"] += 1
        text = request.query_params.get("q", "")
        try:
            _, rows = self._runner.run(parse(text))
        except SoqlError as exc:
            return _errors(400, exc.code, str(exc))
        return self._page(request, rows, 0, self._batch_size(request), None)

    async def _query_more(self, request: Request) -> Response:
        self.calls["query_more"] += 1
        locator, _, offset = request.path_params["locator"].rpartition("-")
        cursor = self._cursors.get(locator)
        if cursor is None or not offset.isdigit():
            return _errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        rows, size = cursor
        return self._page(request, rows, int(offset), size, locator)

    def _batch_size(self, request: Request) -> int:
        """`Sforce-Query-Options: batchSize=N` (200..2000), never above the emulator's page."""
        options = request.headers.get("sforce-query-options", "")
        match = re.search(r"batchSize=(\d+)", options)
        if not match:
            return self.page_size
        return min(self.page_size, max(200, min(2000, int(match.group(1)))))

    def _page(
        self,
        request: Request,
        rows: list[dict[str, Any]],
        offset: int,
        size: int,
        locator: str | None,
    ) -> Response:
        page = rows[offset : offset + size]
        body: dict[str, Any] = {"totalSize": len(rows), "done": True, "records": page}
        if offset + size < len(rows):
            if locator is None:
                locator = f"01g5g{next(self._cursor_ids):010d}"
                self._cursors[locator] = (rows, size)
            version = request.path_params["version"]
            body["done"] = False
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{offset + size}"
        return JSONResponse(body)

    # --- writes ------------------------------------------------------------------------------
    async def _composite(self, request: Request) -> Response:
        self.calls["composite"] += 1
        try:
            body = await request.json()
            records = list(body["records"])
            all_or_none = bool(body.get("allOrNone", False))
        except (ValueError, KeyError, TypeError):
            return _errors(400, "JSON_PARSER_ERROR", "the request body is not a records collection")
        if len(records) > MAX_COLLECTION:
            return _errors(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more")
        checked = [check_update(self.records, item) for item in records]
        failed = any(errors for _, _, _, errors in checked)
        results: list[dict[str, Any]] = []
        for record_id, sobject, fields, errors in checked:
            if errors or (all_or_none and failed):
                rolled = [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": ""}]
                results.append({"success": False, "errors": errors or rolled})
                continue
            self._apply(sobject, record_id, fields)
            results.append({"id": record_id, "success": True, "errors": []})
        return JSONResponse(results)

    def _apply(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        now = self.clock.now().timestamp()
        stamp = self.stamp()
        self.records[record_id].update(fields, LastModifiedDate=stamp, SystemModstamp=stamp)
        self.writes.append(WriteRecord(now, sobject, record_id, dict(fields)))

    async def _create(self, request: Request) -> Response:
        self.calls["create"] += 1
        try:
            fields = await request.json()
        except ValueError:
            return _errors(400, "JSON_PARSER_ERROR", "the request body is not JSON")
        stamp = self.stamp()
        status, body = create_record(self.records, request.path_params["sobject"], fields, stamp)
        return JSONResponse(body, status_code=status)

    async def _record(self, request: Request) -> Response:
        self.calls["sobject"] += 1
        sobject = request.path_params["sobject"]
        record_id = normalize_id(request.path_params["record_id"]) or ""
        record = self.records.get(record_id)
        if record is None or object_of(record_id) != sobject:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        if request.method == "GET":
            url = f"/services/data/v59.0/sobjects/{sobject}/{record_id}"
            return JSONResponse({"attributes": {"type": sobject, "url": url}, **record})
        try:
            fields = await request.json()
        except ValueError:
            return _errors(400, "JSON_PARSER_ERROR", "the request body is not JSON")
        item = {"attributes": {"type": sobject}, "id": record_id, **fields}
        _, _, clean, errors = check_update(self.records, item)
        if errors:
            return JSONResponse(
                [{"message": e["message"], "errorCode": e["statusCode"]} for e in errors], 400
            )
        self._apply(sobject, record_id, clean)
        return Response(status_code=204)

    # --- metadata ----------------------------------------------------------------------------
    async def _describe(self, request: Request) -> Response:
        self.calls["describe"] += 1
        try:
            sobject = canonical_object(request.path_params["sobject"])
        except SoqlError:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        fields = []
        for name, kind in SCHEMAS[sobject].items():
            rel = next(
                (r for r, (f, _) in RELATIONSHIPS.get(sobject, {}).items() if f == name), None
            )
            fields.append(
                {
                    "name": name,
                    "label": name.removesuffix("__c").replace("_", " "),
                    "type": kind,
                    "updateable": name not in READ_ONLY,
                    "nillable": name not in READ_ONLY,
                    "custom": name.endswith("__c"),
                    "relationshipName": rel,
                }
            )
        return JSONResponse(
            {"name": sobject, "queryable": True, "updateable": True, "fields": fields}
        )

    async def _limits(self, request: Request) -> Response:
        self.calls["limits"] += 1
        remaining = max(0, self.daily_limit - self.api_usage)
        return JSONResponse({"DailyApiRequests": {"Max": self.daily_limit, "Remaining": remaining}})
