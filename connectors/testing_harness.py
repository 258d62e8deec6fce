"""What a connector's author provides to the contract suite: a connector and a sandbox.

A leaf module, so that the suite's check groups (`testing_writes`, `testing_incremental`) can name
it without importing `connectors.testing`, which composes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from connectors.base import Connector

__all__ = ["ContractHarness"]


class ContractHarness(Protocol):
    """What a connector's author provides: the connector, and a sandbox to seed and inspect."""

    def make_connector(self, *, opt_out: bool = True) -> Connector:
        """A connector on the sandbox mapping `email` and/or `phone`; opt-out field if asked."""
        ...

    def add_record(
        self,
        values: Mapping[str, str | None],
        *,
        first_name: str,
        last_name: str,
        opted_out: bool = False,
    ) -> str:
        """Create a record as a person would, with these logical field values; its id."""
        ...

    def set_value(self, record_id: str, logical_field: str, value: str | None) -> None:
        """A person's edit of one field in the CRM ("" as the CRM stores a cleared field)."""
        ...

    def get_value(self, record_id: str, logical_field: str) -> str | None:
        """A field as the sandbox holds it now, read around the connector; empty as None."""
        ...

    def unknown_id(self) -> str:
        """An id shaped like this CRM's ids that names no record."""
        ...
