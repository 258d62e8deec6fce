"""The HubSpot connector's field checks: do the mapped contact properties exist and take values?

`GET /crm/v3/properties/contacts/{name}` per property: a 404 means it does not exist, and
`modificationMetadata.readOnlyValue` that it cannot be written. Every run asks before it spends
credits (`check_fields`), and `crm-sync check` prints one line per property (`_check_property`).
A mixin of `HubSpotConnector`, using its `_call` (throttle, retries, error translation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException

from connectors.base import CheckResult
from crm_sync.errors import CrmSyncError

if TYPE_CHECKING:
    from connectors.hubspot.settings import HubSpotSettings

T = TypeVar("T")
API_ERRORS = (ContactsApiException, PropertiesApiException)


class HubSpotFieldChecks:
    """`check_fields` and the property lines of `check`."""

    if TYPE_CHECKING:
        field_map: Mapping[str, str]
        hs_settings: HubSpotSettings
        _properties_api: Any

        def _call(
            self, kind: str, fn: Callable[[], T], passthrough: frozenset[int] = frozenset()
        ) -> T: ...

    def check_fields(self) -> list[str]:
        """Each mapped property exists and takes values (`GET /crm/v3/properties/contacts/x`)."""
        problems = []
        for logical, name in self.field_map.items():
            problem, _ = self._property_problem(name, must_write=True)
            if problem:
                problems.append(f"fields.{logical}: {problem}")
        return problems

    def _property_problem(self, name: str, *, must_write: bool) -> tuple[str, Any]:
        """(what is wrong with a contact property or "", answer headers); other errors raise."""
        try:
            data, _, headers = self._call(
                "properties",
                lambda: self._properties_api.get_by_name_with_http_info(
                    "contacts", name, _request_timeout=self.hs_settings.timeout_seconds
                ),
                passthrough=frozenset({404}),
            )
        except API_ERRORS:
            return f"HubSpot contact property {name!r} does not exist", {}
        meta = getattr(data, "modification_metadata", None)
        if must_write and meta is not None and meta.read_only_value:
            return f"HubSpot contact property {name!r} is read-only", headers
        return "", headers

    def _check_property(self, name: str, must_write: bool) -> tuple[CheckResult, Any]:
        label = f"hubspot.property.{name}"
        try:
            problem, headers = self._property_problem(name, must_write=must_write)
        except CrmSyncError as exc:
            return CheckResult(label, False, str(exc)), {}
        return CheckResult(label, not problem, problem or "exists"), headers
