"""HubSpot contacts through hubspot-api-client 12: search for gaps, batch read, batch update.

Finding candidates: one filter group per wanted field (`<prop> NOT_HAS_PROPERTY`), each ANDed
with the user's filters and `<opt_out> NEQ "true"` (HubSpot's NEQ also matches a record with no
value, so contacts that never had the opt-out set are found). Pages are read by *keyset*: sorted
by `hs_object_id` ascending, each page is a new query `hs_object_id GT <last id>` with
`after="0"`. This never meets the 10,000-result cap of `after` paging, and unlike offsets it
neither skips nor repeats records when our own writes (or a person's) move records out of the
result set between pages; every record is yielded once.

Writing (`writing.py`): batch update (<= 100), 207 partial errors mapped to records.

Retries are ours, not urllib3's, through `crm_sync.retry.RetryPolicy` with HubSpot's own
classification (`policy.classify`): 429 waits as the body's `policyName` says
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
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
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
    Selection,
    SourceSpec,
)
from connectors.hubspot.auth import HubSpotAuth
from connectors.hubspot.fields import API_ERRORS, HubSpotFieldChecks
from connectors.hubspot.filters import build_groups, validate_filters
from connectors.hubspot.incremental import iter_changed
from connectors.hubspot.policy import Throttle, classify
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.writing import HubSpotWrites
from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.errors import AuthError, CrmSyncError
from crm_sync.logs import get_logger
from crm_sync.retry import Decision, RetryPolicy

__all__ = ["HubSpotConnector", "HubSpotSettings", "Throttle"]

T = TypeVar("T")


def _clean(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


class HubSpotConnector(HubSpotWrites, HubSpotFieldChecks, Connector):
    """HubSpot contacts; logical fields map to contact properties via the source's `fields`."""

    name = "hubspot"
    settings_model = HubSpotSettings
    limits: ClassVar[ConnectorLimits] = ConnectorLimits(
        page_size=200, read_batch_size=100, write_batch_size=100
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
        """Candidates created or modified since `since` (`incremental.py`)."""
        return iter_changed(self, selection, since)

    # Hooks for `incremental.py`: the same properties, retries and record mapping.
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
