"""The contract on an in-memory connector written here, as a third party would write one.

The correct connector passes every check; each broken variant fails the check that guards
the rule it breaks, so the contract is shown to catch what it claims to.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import pytest
from pydantic import ConfigDict

from connectors.base import (
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
from connectors.testing import ConnectorContract

OPT_OUT = "do_not_enrich"


class MemoryCrm:
    """A CRM's records by id ("m0001", ...), refusing update batches larger than its limit."""

    def __init__(self, max_batch: int) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.max_batch = max_batch
        self._ids = itertools.count(1)

    def add(self, fields: dict[str, Any]) -> str:
        record_id = f"m{next(self._ids):04d}"
        self.records[record_id] = fields
        return record_id

    def update_batch(self, items: list[tuple[str, dict[str, str]]]) -> list[str | None]:
        """An error message per item, or None when applied."""
        if len(items) > self.max_batch:
            raise RuntimeError(f"batch of {len(items)} refused: at most {self.max_batch}")
        errors: list[str | None] = []
        for record_id, fields in items:
            if record_id not in self.records:
                errors.append(f"NOT_FOUND: no record {record_id}")
                continue
            self.records[record_id].update(fields)
            errors.append(None)
        return errors


class MemorySettings(ConnectorSettings):
    """`settings:` of the memory CRM."""

    label: str = "memory"


class MemoryConnector(Connector):
    """The smallest connector that keeps the whole contract."""

    name = "memory"
    settings_model: ClassVar[type[ConnectorSettings]] = MemorySettings
    limits = ConnectorLimits(page_size=50, read_batch_size=4, write_batch_size=5)

    def __init__(
        self, source: SourceSpec, settings: ConnectorSettings, *, crm: MemoryCrm, **kwargs: Any
    ) -> None:
        super().__init__(source, settings, **kwargs)
        self.crm = crm

    def _text(self, record: dict[str, Any], name: str) -> str | None:
        value = record.get(name)
        return value if isinstance(value, str) and value.strip() else None

    def contact(self, record_id: str) -> Contact:
        record, fmap = self.crm.records[record_id], self.field_map
        return Contact(
            record_id,
            first_name=self._text(record, "first"),
            last_name=self._text(record, "last"),
            email=self._text(record, fmap["email"]) if "email" in fmap else None,
            phone=self._text(record, fmap["phone"]) if "phone" in fmap else None,
        )

    def matches(self, record_id: str, selection: Selection) -> bool:
        record = self.crm.records[record_id]
        if selection.opt_out_field and record.get(selection.opt_out_field):
            return False
        wanted = [self.field_map[f] for f in selection.wanted if f in self.field_map]
        return any(self._text(record, name) is None for name in wanted)

    def iter_candidates(self, selection: Selection) -> Iterator[list[Contact]]:
        size = min(selection.page_size or self.limits.page_size, self.limits.page_size)
        ids = [i for i in sorted(self.crm.records) if self.matches(i, selection)]
        for start in range(0, len(ids), size):
            yield [self.contact(i) for i in ids[start : start + size]]

    def read(self, ids: Sequence[str]) -> dict[str, Contact]:
        return {i: self.contact(i) for i in ids if i in self.crm.records}

    def batches(self, updates: Sequence[FieldUpdate]) -> list[Sequence[FieldUpdate]]:
        size = self.limits.write_batch_size
        return [updates[i : i + size] for i in range(0, len(updates), size)]

    def write(self, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        outcomes: list[WriteOutcome] = []
        for batch in self.batches(updates):
            items = [
                (u.record_id, {self.field_map[k]: v for k, v in u.values.items()}) for u in batch
            ]
            for update, error in zip(batch, self.crm.update_batch(items), strict=True):
                status = WriteStatus.REJECTED if error else WriteStatus.WRITTEN
                outcomes.append(WriteOutcome(update.record_id, status, error or ""))
        return outcomes


class MemoryHarness:
    """Builds a connector class against one MemoryCrm and edits its records directly."""

    fields = {"email": "work_email", "phone": "mobile"}

    def __init__(self, connector_class: type[MemoryConnector]) -> None:
        self.connector_class = connector_class
        self.crm = MemoryCrm(max_batch=MemoryConnector.limits.write_batch_size)

    def make_connector(self, *, opt_out: bool = True) -> Connector:
        source = SourceSpec(
            name="contract-memory",
            settings={"label": "contract"},
            fields=self.fields,
            opt_out_field=OPT_OUT if opt_out else None,
        )
        settings = self.connector_class.settings_model.model_validate(source.settings)
        return self.connector_class(source, settings, crm=self.crm)

    def add_record(
        self,
        values: Mapping[str, str | None],
        *,
        first_name: str,
        last_name: str,
        opted_out: bool = False,
    ) -> str:
        fields = {self.fields[name]: value for name, value in values.items()}
        return self.crm.add({"first": first_name, "last": last_name, OPT_OUT: opted_out, **fields})

    def set_value(self, record_id: str, logical_field: str, value: str | None) -> None:
        self.crm.records[record_id][self.fields[logical_field]] = value

    def get_value(self, record_id: str, logical_field: str) -> str | None:
        return self.crm.records[record_id].get(self.fields[logical_field]) or None

    def unknown_id(self) -> str:
        return "m9999"


class RepeatsAcrossPages(MemoryConnector):
    """Offset paging that re-reads: the last record of a page starts the next one too."""

    def iter_candidates(self, selection: Selection) -> Iterator[list[Contact]]:
        previous: list[Contact] = []
        for page in super().iter_candidates(selection):
            yield previous[-1:] + page
            previous = page


class EmptyStrings(MemoryConnector):
    """Hands the CRM's "" through instead of None."""

    def contact(self, record_id: str) -> Contact:
        record = self.crm.records[record_id]
        email = record.get(self.field_map["email"])
        return Contact(record_id, "Contract", email=email if email is not None else "")


class IgnoresOptOut(MemoryConnector):
    """Forgets the opt-out field."""

    def iter_candidates(self, selection: Selection) -> Iterator[list[Contact]]:
        return super().iter_candidates(Selection(selection.wanted, page_size=selection.page_size))


class RaisesOnUnknownId(MemoryConnector):
    """Lets one bad record abort the whole write."""

    def write(self, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        outcomes = super().write(updates)
        rejected = [o for o in outcomes if o.status is WriteStatus.REJECTED]
        if rejected:
            raise KeyError(rejected[0].record_id)
        return outcomes


class OneBigBatch(MemoryConnector):
    """Sends every update in a single batch, whatever its declared limit."""

    def batches(self, updates: Sequence[FieldUpdate]) -> list[Sequence[FieldUpdate]]:
        return [updates]


class ReadsOneBatch(MemoryConnector):
    """Reads only the first batch of the ids it is given."""

    def read(self, ids: Sequence[str]) -> dict[str, Contact]:
        return super().read(ids[: self.limits.read_batch_size])


class ReadsStaleCopy(MemoryConnector):
    """Serves `read` from the values it first saw."""

    def __init__(self, source: SourceSpec, settings: ConnectorSettings, **kwargs: Any) -> None:
        super().__init__(source, settings, **kwargs)
        self.cache: dict[str, Contact] = {}

    def read(self, ids: Sequence[str]) -> dict[str, Contact]:
        fresh = super().read(ids)
        return {i: self.cache.setdefault(i, c) for i, c in fresh.items()}


class ShuffledOrder(MemoryConnector):
    """Yields candidates newest first on every other pass."""

    passes = 0

    def iter_candidates(self, selection: Selection) -> Iterator[list[Contact]]:
        type(self).passes += 1
        pages = list(super().iter_candidates(selection))
        yield from (pages if self.passes % 2 else [list(reversed(p)) for p in reversed(pages)])


class LooseSettings(MemoryConnector):
    """A settings model that lets typos through."""

    class Settings(MemorySettings):
        model_config = ConfigDict(extra="allow", frozen=True)

    settings_model = Settings


class IgnoresWantedFields(MemoryConnector):
    """Treats every mapped field as wanted."""

    def iter_candidates(self, selection: Selection) -> Iterator[list[Contact]]:
        everything = Selection(
            frozenset(self.field_map), selection.filters, selection.opt_out_field, 2
        )
        return super().iter_candidates(everything)


class FieldsBlind(MemoryConnector):
    """Claims to check its fields, and never finds a problem."""

    def check_fields(self) -> list[str]:
        return []


class WritesAnyField(MemoryConnector):
    """Names a missing field, yet writes to it as if it were there."""

    def check_fields(self) -> list[str]:
        known = set(MemoryHarness.fields.values())
        return [f"fields.{k}: no field {v}" for k, v in self.field_map.items() if v not in known]


def test_memory_connector_keeps_the_contract(contract_check: str) -> None:
    """The in-memory connector passes each contract check."""
    ConnectorContract(MemoryHarness(MemoryConnector), page_size=2).run(contract_check)


@pytest.mark.parametrize(
    ("connector_class", "check", "message"),
    [
        (RepeatsAcrossPages, "check_candidates_are_exactly_records_missing_a_wanted_field", "once"),
        (EmptyStrings, "check_candidates_are_contacts_with_none_for_empty", "not None or text"),
        (IgnoresOptOut, "check_opted_out_records_are_never_candidates", "opted-out"),
        (RaisesOnUnknownId, "check_write_outcomes_are_one_per_update_in_order", "raised KeyError"),
        (OneBigBatch, "check_writes_beyond_one_batch_all_land", "raised RuntimeError"),
        (ReadsOneBatch, "check_reads_beyond_one_batch_come_back_whole", "read lost 1 of 5"),
        (ReadsStaleCopy, "check_read_returns_current_values_and_omits_unknown_ids", "CRM holds"),
        (ShuffledOrder, "check_candidates_come_in_a_stable_order", "order changed"),
        (LooseSettings, "check_settings_model_rejects_unknown_keys", "accepted an unknown key"),
        (IgnoresWantedFields, "check_candidates_follow_the_wanted_fields", "only 'email' is"),
        (FieldsBlind, "check_check_fields_names_a_missing_field", "did not name"),
        (WritesAnyField, "check_writes_to_a_missing_field_are_field_refused", "missing field gave"),
    ],
)
def test_contract_catches_a_broken_connector(
    connector_class: type[MemoryConnector], check: str, message: str
) -> None:
    """A connector that breaks one rule fails the check for that rule, saying what broke."""
    contract = ConnectorContract(MemoryHarness(connector_class), page_size=2)
    with pytest.raises(AssertionError, match=message):
        contract.run(check)


def test_run_all_reports_every_failed_check() -> None:
    """`run_all` names each failing check in one error rather than stopping at the first."""
    contract = ConnectorContract(MemoryHarness(IgnoresOptOut), page_size=2)
    with pytest.raises(AssertionError) as failure:
        contract.run_all()
    lines = str(failure.value).splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("check_opted_out_records_are_never_candidates: opted-out records")


def test_unknown_check_name_is_refused() -> None:
    """A typo in a check name fails loudly instead of passing without running anything."""
    contract = ConnectorContract(MemoryHarness(MemoryConnector))
    with pytest.raises(ValueError, match="unknown check 'check_nope'"):
        contract.run("check_nope")
