"""HubSpot contacts through hubspot-api-client 12: search for gaps, batch read, batch update.

Finding candidates: one filter group per wanted field (`<prop> NOT_HAS_PROPERTY`), each ANDed
with the user's filters and `<opt_out> NEQ "true"` (HubSpot's NEQ also matches a record with no
value, so contacts that never had the opt-out set are found). Pages are read by *keyset*: sorted
by `hs_object_id` ascending, each page is a new query `hs_object_id GT <last id>` with
`after="0"`. This never meets the 10,000-result cap of `after` paging, and unlike offsets it
neither skips nor repeats records when our own writes (or a person's) move records out of the
result set between pages; every record is yielded once.

Writing: batch update (<= 100). 200: all written. 207: item errors are mapped to records by
their `context.ids`; an error that names no record (HubSpot's validation errors name the
property) is matched by the value it quotes, else the records left unconfirmed are re-read and
count as written only if they now hold what we sent. A whole-batch 409 (an email owned by
another contact) or 400 falls back to one PATCH per record, so only the bad record is rejected.
A 400 that refuses the property itself (PROPERTY_DOESNT_EXIST, READ_ONLY_VALUE) is no record's
fault: every record of the batch gets `FIELD_REFUSED`, with no per-record retries.

Retries are ours, not urllib3's, through `crm_sync.retry.RetryPolicy` with HubSpot's own
classification (`hubspot_policy.classify`): 429 waits as the body's `policyName` says
(ten-secondly: 10 s, search secondly: 1 s, DAILY: `QuotaExhausted`), 5xx and connection errors
back off; both are bounded. A client-side limiter keeps to `requests_per_second`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectId,
    SimplePublicObjectInput,
)

from connectors import call_log
from connectors.base import (
    INCREMENTAL_SCAN,
    Change,
    CheckResult,
    Connector,
    ConnectorLimits,
    ConnectorSettings,
    Contact,
    FieldUpdate,
    Selection,
    SourceSpec,
    WriteOutcome,
    WriteStatus,
)
from connectors.hubspot_auth import HubSpotAuth
from connectors.hubspot_fields import API_ERRORS, HubSpotFieldChecks
from connectors.hubspot_filters import build_groups, validate_filters
from connectors.hubspot_incremental import iter_changed
from connectors.hubspot_policy import Throttle, classify, error_fields, field_refusal
from connectors.hubspot_settings import HubSpotSettings
from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.errors import AuthError, CrmSyncError
from crm_sync.logs import get_logger, scrub
from crm_sync.retry import Decision, RetryPolicy

__all__ = ["HubSpotConnector", "HubSpotSettings", "Throttle"]

T = TypeVar("T")


def _clean(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


class HubSpotConnector(HubSpotFieldChecks, Connector):
    """HubSpot contacts; logical fields map to contact properties via the source's `fields`."""

    name = "hubspot"
    settings_model = HubSpotSettings
    limits: ClassVar[ConnectorLimits] = ConnectorLimits(
        page_size=200, read_batch_size=100, write_batch_size=100, requests_per_second=4.0
    )
    capabilities = frozenset({INCREMENTAL_SCAN})

    def __init__(
        self,
        source: SourceSpec,
        settings: ConnectorSettings,
        *,
        client: HubSpot | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(source, settings, clock=clock)
        if not isinstance(settings, HubSpotSettings):
            raise TypeError("HubSpotConnector needs HubSpotSettings")
        self.hs_settings = settings
        token = settings.access_token.get_secret_value() if settings.access_token else None
        self.client = client or HubSpot(access_token=token, host=settings.base_url)
        # Each attribute access builds a new ApiClient and pool: keep one of each.
        contacts = self.client.crm.contacts
        self._search_api = contacts.search_api
        self._batch_api = contacts.batch_api
        self._basic_api = contacts.basic_api
        self._properties_api = self.client.crm.properties.core_api
        self._throttle = Throttle(settings.requests_per_second, clock)
        self._retry = RetryPolicy("hubspot", max_retries=settings.max_retries, clock=clock)
        self.log = get_logger(source=source.name, connector=self.name)
        self.auth = HubSpotAuth(settings, self.client, self.log, clock)
        self.auth.attach(self)

    def __repr__(self) -> str:
        return f"HubSpotConnector(source={self.source.name!r})"

    # -- configuration ----------------------------------------------------------------------
    @classmethod
    def validate_filters(cls, filters: Any) -> list[str]:
        """Problems with a list of HubSpot filter dicts, ANDed into every filter group."""
        return validate_filters(filters)

    def _properties(self) -> list[str]:
        s = self.hs_settings
        names = ["firstname", "lastname", s.company_property, s.domain_property]
        names += [s.linkedin_property, *self.field_map.values(), "hs_object_id"]
        return list(dict.fromkeys(names))

    def _contact(self, record_id: str, props: dict[str, Any]) -> Contact:
        s, fmap = self.hs_settings, self.field_map
        return Contact(
            id=str(record_id),
            first_name=_clean(props.get("firstname")),
            last_name=_clean(props.get("lastname")),
            company=_clean(props.get(s.company_property)),
            domain=_clean(props.get(s.domain_property)),
            linkedin_url=_clean(props.get(s.linkedin_property)),
            email=_clean(props.get(fmap["email"])) if "email" in fmap else None,
            phone=_clean(props.get(fmap["phone"])) if "phone" in fmap else None,
        )

    # -- the boundary: throttle, retries, exception translation -----------------------------
    def _call(self, kind: str, fn: Callable[[], T], passthrough: frozenset[int] = frozenset()) -> T:
        """`_attempts` on a fresh token; after a 401 an OAuth token is refreshed once."""
        attempts = functools.partial(self._attempts, kind, fn)
        return self.auth.call(kind, attempts, passthrough, API_ERRORS, self.calls)

    def _attempts(
        self, kind: str, fn: Callable[[], T], passthrough: frozenset[int] = frozenset()
    ) -> T:
        """Run one API call with our retry policy; ApiException leaves only for `passthrough`."""

        def attempt_once(_attempt: int) -> T:
            self._throttle.wait()
            self.calls.add(kind)
            with call_log.crm_call("hubspot", self.clock):  # DEBUG: each HTTP call the SDK makes
                return fn()

        def judge(outcome: object, attempt: int) -> Decision:
            return classify(outcome, attempt, api_errors=API_ERRORS, passthrough=passthrough)

        try:
            return self._retry.run(attempt_once, judge, kind=kind)
        except CrmSyncError as exc:
            raise exc from None  # the SDK's exception holds request details: never chain it

    # -- search -----------------------------------------------------------------------------
    def iter_candidates(self, selection: Selection) -> Iterator[list[Contact]]:
        """Yield pages of contacts missing a wanted field, by ascending id, each once."""
        limit = min(selection.page_size or self.limits.page_size, self.limits.page_size)
        start = selection.after_id
        after_id: int | None = int(start) if start and start.isdigit() else None
        properties = self._properties()
        while True:
            wanted = sorted(f for f in selection.wanted if f in self.field_map)
            groups = build_groups(
                [self.field_map[f] for f in wanted],
                selection.filters,
                selection.opt_out_field,
                after_id,
            )
            if not groups:
                return
            request = PublicObjectSearchRequest(
                filter_groups=groups,
                sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                properties=properties,
                limit=limit,
                after="0",
            )
            page = self._call("search", functools.partial(self._search, request))
            contacts = [self._contact(r.id, r.properties or {}) for r in page.results or []]
            contacts = [c for c in contacts if after_id is None or int(c.id) > after_id]
            if contacts:
                after_id = int(contacts[-1].id)
                yield contacts
            if not contacts or page.paging is None:
                return

    def iter_changed(self, selection: Selection, since: datetime) -> Iterator[list[Change]]:
        """Candidates created or modified since `since` (`hubspot_incremental`)."""
        return iter_changed(self, selection, since)

    # Hooks for `hubspot_incremental`: the same properties, retries and record mapping.
    def search_properties(self) -> list[str]:
        return self._properties()

    def search_page(self, fn: Callable[[], T]) -> T:
        return self._call("search", fn)

    def run_search(self, request: PublicObjectSearchRequest) -> Any:
        return self._search(request)

    def to_contact(self, record_id: str, props: dict[str, Any]) -> Contact:
        return self._contact(record_id, props)

    def _search(self, request: PublicObjectSearchRequest) -> Any:
        return self._search_api.do_search(
            public_object_search_request=request,
            _request_timeout=self.hs_settings.timeout_seconds,
        )

    # -- read -------------------------------------------------------------------------------
    def _batch_read(self, body: BatchReadInputSimplePublicObjectId) -> Any:
        return self._batch_api.read(
            batch_read_input_simple_public_object_id=body,
            archived=False,
            _request_timeout=self.hs_settings.timeout_seconds,
        )

    def read(self, ids: Sequence[str]) -> dict[str, Contact]:
        """Current values of these contacts, 100 per call; unknown ids are absent."""
        unique = list(dict.fromkeys(str(i) for i in ids))
        found: dict[str, Contact] = {}
        size = self.limits.read_batch_size
        for start in range(0, len(unique), size):
            chunk = unique[start : start + size]
            body = BatchReadInputSimplePublicObjectId(
                properties=self._properties(),
                properties_with_history=[],
                inputs=[SimplePublicObjectId(id=i) for i in chunk],
            )
            answer = self._call("read", functools.partial(self._batch_read, body))
            for record in answer.results or []:
                found[str(record.id)] = self._contact(record.id, record.properties or {})
        return found

    # -- write ------------------------------------------------------------------------------
    def _crm_properties(self, update: FieldUpdate) -> dict[str, str]:
        return {self.field_map[name]: value for name, value in update.values.items()}

    def _chunks(self, updates: Sequence[FieldUpdate]) -> list[list[int]]:
        """Indexes in batches of <= 100 with no record twice (HubSpot refuses duplicate ids)."""
        chunks: list[list[int]] = []
        pending = list(range(len(updates)))
        while pending:
            chunk: list[int] = []
            seen: set[str] = set()
            rest: list[int] = []
            for i in pending:
                rid = updates[i].record_id
                if len(chunk) < self.limits.write_batch_size and rid not in seen:
                    chunk.append(i)
                    seen.add(rid)
                else:
                    rest.append(i)
            chunks.append(chunk)
            pending = rest
        return chunks

    def write(self, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        """Write in batches; one outcome per update, in order; a bad record never raises."""
        outcomes: dict[int, WriteOutcome] = {}
        for chunk in self._chunks(updates):
            outcomes.update(self._write_batch([updates[i] for i in chunk], chunk))
        return [outcomes[i] for i in range(len(updates))]

    def _write_batch(self, batch: list[FieldUpdate], indexes: list[int]) -> dict[int, WriteOutcome]:
        inputs = [
            SimplePublicObjectBatchInput(id=u.record_id, properties=self._crm_properties(u))
            for u in batch
        ]
        body = BatchInputSimplePublicObjectBatchInput(inputs=inputs)
        try:
            answer = self._call(
                "write",
                lambda: self._batch_api.update(
                    batch_input_simple_public_object_batch_input=body,
                    _request_timeout=self.hs_settings.timeout_seconds,
                ),
                passthrough=frozenset({400, 409}),
            )
        except API_ERRORS as exc:
            category = error_fields(exc)[0]
            self.log.info("hubspot_batch_refused", status=exc.status, category=category)
            refusal = field_refusal(exc)
            if refusal:
                return {
                    i: WriteOutcome(u.record_id, WriteStatus.FIELD_REFUSED, refusal)
                    for i, u in zip(indexes, batch, strict=True)
                }
            return {i: self._write_one(u) for i, u in zip(indexes, batch, strict=True)}
        errors = getattr(answer, "errors", None) or []
        if not errors:
            return {
                i: WriteOutcome(u.record_id, WriteStatus.WRITTEN)
                for i, u in zip(indexes, batch, strict=True)
            }
        written = {str(r.id) for r in answer.results or []}
        return self._attribute(batch, indexes, written, errors)

    def _write_one(self, update: FieldUpdate) -> WriteOutcome:
        """PATCH one record; 400/404/409 reject it with HubSpot's message."""
        try:
            self._call(
                "write",
                lambda: self._basic_api.update(
                    contact_id=update.record_id,
                    simple_public_object_input=SimplePublicObjectInput(
                        properties=self._crm_properties(update)
                    ),
                    _request_timeout=self.hs_settings.timeout_seconds,
                ),
                passthrough=frozenset({400, 404, 409}),
            )
        except API_ERRORS as exc:
            refusal = field_refusal(exc)
            if refusal:
                return WriteOutcome(update.record_id, WriteStatus.FIELD_REFUSED, refusal)
            category, message, _ = error_fields(exc)
            reason = f"{category}: {message}" if category else message or f"HTTP {exc.status}"
            return WriteOutcome(update.record_id, WriteStatus.REJECTED, reason)
        return WriteOutcome(update.record_id, WriteStatus.WRITTEN)

    def _attribute(
        self, batch: list[FieldUpdate], indexes: list[int], written: set[str], errors: list[Any]
    ) -> dict[int, WriteOutcome]:
        """Map 207 item errors to records: by context ids, by quoted value, else by re-reading."""
        rejected: dict[str, str] = {}
        unattributed: list[str] = []
        for error in errors:
            reason = f"{error.category}: {scrub(str(error.message))}"
            context = error.context or {}
            ids = [str(i) for i in context.get("ids") or context.get("id") or []]
            if not ids:
                ids = [
                    u.record_id
                    for u in batch
                    if u.record_id not in written
                    and any(v in str(error.message) for v in u.values.values())
                ]
            if len(ids) == 1 or context.get("ids"):
                rejected.update(dict.fromkeys(ids, reason))
            else:
                unattributed.append(reason)
        unsure = [u for u in batch if u.record_id not in written and u.record_id not in rejected]
        if unsure:
            current = self.read([u.record_id for u in unsure])
            fallback = "; ".join(unattributed) or "not confirmed by HubSpot"
            for u in unsure:
                contact = current.get(u.record_id)
                if contact is None:
                    rejected[u.record_id] = "not found in HubSpot"
                elif all(contact.value(k) == v for k, v in u.values.items()):
                    written.add(u.record_id)
                else:
                    rejected[u.record_id] = fallback
        return {
            i: WriteOutcome(u.record_id, WriteStatus.REJECTED, rejected[u.record_id])
            if u.record_id in rejected
            else WriteOutcome(u.record_id, WriteStatus.WRITTEN)
            for i, u in zip(indexes, batch, strict=True)
        }

    # -- check ------------------------------------------------------------------------------
    def check(self) -> list[CheckResult]:
        """Token accepted, properties exist (mapped ones writable), daily calls left."""
        try:
            self.auth.ensure_fresh()
            request = PublicObjectSearchRequest(
                filter_groups=[], sorts=[], properties=["hs_object_id"], limit=1, after="0"
            )
            page = self._call("search", lambda: self._search(request))
        except CrmSyncError as exc:
            refused = isinstance(exc, AuthError)
            return [CheckResult("hubspot.token", False, str(exc), credentials_refused=refused)]
        results = [CheckResult("hubspot.token", True, f"accepted; {page.total} contacts")]
        results.append(CheckResult("hubspot.auth", True, self.auth.identity(self.client)))
        headers: Any = {}
        s = self.hs_settings
        identity = [s.company_property, s.domain_property, s.linkedin_property]
        names = dict.fromkeys([*self.field_map.values(), *identity])
        if self.source.opt_out_field:
            names[self.source.opt_out_field] = None
        for name in names:
            result, headers = self._check_property(name, name in self.field_map.values())
            results.append(result)
        daily = headers.get("X-HubSpot-RateLimit-Daily-Remaining") if headers else None
        if daily is not None:
            limit = headers.get("X-HubSpot-RateLimit-Daily", "?")
            results.append(
                CheckResult("hubspot.daily_usage", True, f"{daily} of {limit} calls left today")
            )
        return results

    def close(self) -> None:
        """Drop the SDK client's connection pools."""
        for api in (self._search_api, self._batch_api, self._basic_api, self._properties_api):
            pool = getattr(getattr(api.api_client, "rest_client", None), "pool_manager", None)
            if pool is not None:
                pool.clear()
