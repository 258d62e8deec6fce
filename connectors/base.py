"""The CRM connector interface: find records missing a field, read them, write field values.

This module is the public surface for connector authors, with `connectors.registry` (the
`crm_sync.connectors` entry-point group) and `connectors.testing` (the contract suite).
A connector is given a `SourceSpec` (its source's name, field map, filters, opt-out field and
settings), never the engine's config model; from the engine it may use only `crm_sync.errors`,
`crm_sync.logs`, `crm_sync.retry` and `crm_sync.clock` (a test enforces it).

A connector knows nothing of enrichment. It speaks in *logical* fields (`email`, `phone`);
the source's field map (`fields: {phone: mobilephone}`) tells it which CRM property each one is.
It translates its library's exceptions at its boundary into `crm_sync.errors` types:
`AuthError` for a refused token, `QuotaExhausted` for a spent daily allocation,
`RetriableError` for what may pass, and never raises for one bad record on write.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from crm_sync.clock import SYSTEM_CLOCK, Clock


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What a connector is told about its source; the engine builds it from its own config.

    `fields` maps logical fields (`email`, `phone`) to the CRM's names; `filters` are in the
    CRM's own terms (checked by `Connector.validate_filters`); `settings` is the raw `settings:`
    block (validated by the connector's `settings_model`; it may hold secrets, so no repr).
    """

    name: str
    fields: Mapping[str, str]
    filters: Any = None
    opt_out_field: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class Contact:
    """A CRM record as the engine sees it. Empty CRM values are None, never ""."""

    id: str
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    domain: str | None = None  # a bare domain or a website URL, as the CRM holds it
    linkedin_url: str | None = None
    email: str | None = None
    phone: str | None = None

    def value(self, logical_field: str) -> str | None:
        """The current value of a logical field (`email` or `phone`)."""
        return {"email": self.email, "phone": self.phone}[logical_field]


@dataclass(frozen=True, slots=True)
class Selection:
    """What to look for: records where any of `wanted` is empty, within the user's filters."""

    wanted: frozenset[str]  # logical fields, subset of the field map's keys
    filters: Any = None  # the CRM's own terms, validated by the connector class
    opt_out_field: str | None = None
    page_size: int | None = None  # None: the connector's own maximum
    # Resume after this record id, in the connector's own order (a bounded scan continuing).
    # A connector that cannot may ignore it: the engine then simply rescans from the start.
    after_id: str | None = None


#: Capability of a connector that implements `iter_changed` (the fresh lane's incremental scan).
INCREMENTAL_SCAN = "incremental_scan"


@dataclass(frozen=True, slots=True)
class Change:
    """A candidate found by an incremental scan, with when the CRM last changed and created it."""

    contact: Contact
    modified_at: datetime  # timezone-aware; the scan's cursor moves to the newest seen
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FieldUpdate:
    """Values to write to one record, by logical field. Values are never empty strings."""

    record_id: str
    values: Mapping[str, str]

    def __post_init__(self) -> None:
        for name, value in self.values.items():
            if not value:
                raise ValueError(f"refusing to write an empty value to {name!r}")


class WriteStatus(StrEnum):
    WRITTEN = "written"
    REJECTED = "rejected"  # this record was refused: a duplicate email, a validation rule
    # The field itself was refused (it does not exist, or cannot be written): nothing about the
    # record is wrong, and no other record will fare better until the config is fixed.
    FIELD_REFUSED = "field_refused"


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What happened to one record of a batch write."""

    record_id: str
    status: WriteStatus
    reason: str = ""  # the CRM's own words when rejected


@dataclass(frozen=True, slots=True)
class ConnectorLimits:
    """The connector's own batch sizes, declared as data.

    The connector is the only one to split: the engine hands `read` and `write` any number of
    records, and the connector chunks them by these sizes (and caps a candidate page at
    `page_size`, whatever `Selection.page_size` asks). The engine reads none of them; the
    contract suite (`connectors.testing`) sends one more than a batch to check the splitting.
    Pacing is the connector's own business too (e.g. HubSpot's `requests_per_second` setting).
    """

    page_size: int
    read_batch_size: int
    write_batch_size: int


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One line of `crm-sync check` for a source."""

    name: str
    ok: bool
    detail: str = ""
    credentials_refused: bool = False  # the CRM refused the token: `check` exits 3, not 1


class ConnectorSettings(BaseModel):
    """Base for a connector's `settings:` block; unknown keys are errors."""

    # hide_input_in_errors: a validation error must not quote a token or key it was given
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


@dataclass
class CallCounter:
    """Calls a connector made, by kind, for reports and metrics."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n


class Connector(ABC):
    """A CRM, reduced to the three things the engine needs.

    Subclasses set `name`, `settings_model` and `limits`, implement the three abstract methods,
    and may override `validate_filters`, `check`, `check_fields` and `close`. Time (pacing,
    backoff, token expiry) is read from `self.clock`, never from `time` directly.
    """

    name: ClassVar[str]
    settings_model: ClassVar[type[ConnectorSettings]] = ConnectorSettings
    limits: ClassVar[ConnectorLimits]
    #: Optional abilities, e.g. INCREMENTAL_SCAN; the engine falls back when one is absent.
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self, source: SourceSpec, settings: ConnectorSettings, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.source = source
        self.settings = settings
        self.clock = clock
        self.field_map: Mapping[str, str] = dict(source.fields)
        self.calls = CallCounter()

    @classmethod
    def from_spec(cls, source: SourceSpec, *, clock: Clock = SYSTEM_CLOCK) -> Connector:
        """Build a connector for a source whose settings passed `settings_model`.

        A subclass that overrides `__init__` keeps its signature: `(source, settings, *, clock)`.
        """
        return cls(source, cls.settings_model.model_validate(dict(source.settings)), clock=clock)

    @classmethod
    def validate_filters(cls, filters: Any) -> list[str]:
        """Problems with the user's filters, as `filters...: message` lines; none by default."""
        return []

    def selection(self) -> Selection:
        """The selection this source's config asks for."""
        return Selection(
            wanted=frozenset(self.field_map),
            filters=self.source.filters,
            opt_out_field=self.source.opt_out_field,
        )

    @abstractmethod
    def iter_candidates(self, selection: Selection) -> Iterator[list[Contact]]:
        """Yield pages of records missing any wanted field, each record once, in a stable order."""

    @abstractmethod
    def read(self, ids: Sequence[str]) -> dict[str, Contact]:
        """Current values of any number of records (read in batches of `limits.read_batch_size`);
        ids that no longer exist are absent."""

    @abstractmethod
    def write(self, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        """Write any number of updates, in batches of `limits.write_batch_size`; one outcome per
        update, in order; never raise for one record."""

    def iter_changed(self, selection: Selection, since: datetime) -> Iterator[list[Change]]:
        """Pages of candidates created or modified after `since`, oldest change first.

        Only for connectors declaring INCREMENTAL_SCAN. Every candidate changed strictly after
        `since` is yielded once; one changed at `since` itself may be (the engine overlaps).
        """
        raise NotImplementedError(f"the {self.name} connector cannot scan incrementally")

    def check(self) -> list[CheckResult]:
        """Lines for `crm-sync check`: token accepted, mapped fields exist, API usage left."""
        return [CheckResult("connector", True, "no checks defined")]

    def check_fields(self) -> list[str]:
        """Problems with the mapped fields, one line each naming the field; [] when all are fine.

        Run before any credit is spent, every run, and by `crm-sync check`: a field that does
        not exist or cannot be written would lose every paid result. The default knows nothing
        and finds nothing (a third-party connector keeps working); raise `AuthError` and the
        like as any other call does.
        """
        return []

    def close(self) -> None:  # noqa: B027 - an optional hook with a do-nothing default
        """Release sockets and sessions."""
