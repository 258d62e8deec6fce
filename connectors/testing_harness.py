"""What a connector's author provides to the contract suite: a connector and a sandbox.

A leaf module, so that the suite's check groups (`testing_writes`, `testing_incremental`) can name
it without importing `connectors.testing`, which composes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from connectors.base import Connector, FieldUpdate, WriteOutcome

if TYPE_CHECKING:
    from itertools import count

    from crm_sync.clock import Clock

__all__ = ["ContractHarness", "ContractParts", "require"]


def require(condition: bool, message: str) -> None:
    """AssertionError even under `python -O`, where `assert` statements vanish."""
    if not condition:
        raise AssertionError(message)


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


class ContractParts:
    """What each group of checks uses from `ConnectorContract`, which composes them (declared
    once, for the type checker; `ConnectorContract` defines them)."""

    if TYPE_CHECKING:
        harness: ContractHarness
        tag: str
        page_size: int
        clock: Clock
        _serial: count[int]

        def _connector(self, *, opt_out: bool = True) -> AbstractContextManager[Connector]: ...

        def _seed(
            self, connector: Connector, missing: Sequence[str] = (), *, opted_out: bool = False
        ) -> str: ...

        def _write(
            self, connector: Connector, updates: Sequence[FieldUpdate]
        ) -> list[WriteOutcome]: ...

        def value_for(self, logical_field: str, serial: int) -> str: ...
