"""Contract checks of `check_fields` and of field refusals on write.

Mixed into `connectors.testing.ConnectorContract`. A connector that keeps the base class's
`check_fields` declares no knowledge of its fields and passes the last two checks as is; one
that implements it must name a mapped field that does not exist, and must answer a write to
such a field with `FIELD_REFUSED` (the engine then holds the paid results instead of
rejecting every record). The checks point a built connector's `field_map` at a field that does
not exist.
"""

from __future__ import annotations

from connectors.base import Connector, FieldUpdate, WriteStatus
from connectors.testing_harness import ContractParts, require


class FieldChecks(ContractParts):
    """`check_check_fields_*`, `check_writes_to_a_missing_field_*`: what the field guard needs."""

    def check_check_fields_passes_for_the_mapped_fields(self) -> None:
        """`check_fields()` finds nothing wrong with the harness's own field map."""
        with self._connector() as connector:
            problems = connector.check_fields()
            require(isinstance(problems, list), f"check_fields() gave {problems!r}")
            require(problems == [], f"check_fields() refused healthy fields: {problems}")

    def _missing_field_connector(self, connector: Connector) -> str | None:
        """Map one logical field to a CRM field that does not exist; its logical name.

        None for a connector that keeps the base class's `check_fields` (it declares no
        knowledge of its fields, so there is nothing to hold it to).
        """
        if type(connector).check_fields is Connector.check_fields:
            return None
        logical = sorted(connector.field_map)[-1]
        connector.field_map = {**connector.field_map, logical: f"crm_sync_contract_{self.tag}"}
        return logical

    def check_check_fields_names_a_missing_field(self) -> None:
        """A mapped field that does not exist is named by `check_fields()`, before any write."""
        with self._connector() as connector:
            logical = self._missing_field_connector(connector)
            if logical is None:
                return
            problems = connector.check_fields()
            named = [p for p in problems if f"crm_sync_contract_{self.tag}" in p]
            require(bool(named), f"check_fields() did not name the missing field: {problems}")

    def check_writes_to_a_missing_field_are_field_refused(self) -> None:
        """A write to a field that does not exist is FIELD_REFUSED (hold), not REJECTED."""
        with self._connector() as connector:
            record_id = self._seed(connector, missing=list(connector.field_map))
            logical = self._missing_field_connector(connector)
            if logical is None:
                return
            value = self.value_for(logical, next(self._serial))
            (outcome,) = self._write(connector, [FieldUpdate(record_id, {logical: value})])
            require(
                outcome.status is WriteStatus.FIELD_REFUSED,
                f"a write to a missing field gave {outcome.status} ({outcome.reason!r})",
            )
            require(bool(outcome.reason.strip()), "the field refusal gives no reason")
