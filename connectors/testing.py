"""A contract test suite that any CRM connector can run against its own sandbox.

`ConnectorContract(harness)` holds behavioural checks of the `connectors.base.Connector`
contract, one `check_*` method each, raising AssertionError that says what went wrong. It needs
no test framework. The connector's author supplies a `ContractHarness`: a way to build their
connector against a sandbox, and to seed and inspect records there behind the connector's back.
Each check adds its own records (named uniquely per contract) and asserts about those, plus
properties that hold for every record, so checks run in any order, against a sandbox that
already holds data, and against each other's leftovers.

A third party runs it from pytest like this (`PipedriveHarness` implements `ContractHarness`)::

    import pytest
    from connectors.testing import ConnectorContract
    from my_package.sandbox import PipedriveHarness

    @pytest.fixture(scope="module")
    def contract() -> ConnectorContract:
        return ConnectorContract(PipedriveHarness(), page_size=5)

    @pytest.mark.parametrize("check", ConnectorContract.check_names())
    def test_pipedrive_contract(contract: ConnectorContract, check: str) -> None:
        contract.run(check)

`page_size` is the page size the connector honours through `Selection.page_size` or, for one
that pages by its API's own size, the sandbox's page size: candidate checks seed enough records
for two pages, and they read every candidate, so point the harness at a small sandbox. A CRM
with strict value rules subclasses the contract and overrides `value_for`.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields as dataclass_fields
from dataclasses import replace

from pydantic import ValidationError

from connectors.base import (
    CheckResult,
    Connector,
    ConnectorSettings,
    Contact,
    FieldUpdate,
    Selection,
    WriteOutcome,
)
from connectors.testing_fields import FieldChecks
from connectors.testing_harness import ContractHarness, require
from connectors.testing_incremental import IncrementalChecks
from connectors.testing_writes import WriteChecks
from crm_sync.clock import SYSTEM_CLOCK, Clock

__all__ = ["ConnectorContract", "ContractHarness"]


class ConnectorContract(WriteChecks, IncrementalChecks, FieldChecks):
    """Behavioural checks of the Connector contract against one harness."""

    def __init__(
        self, harness: ContractHarness, *, page_size: int = 3, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.harness = harness
        self.page_size = page_size
        self.clock = clock  # the incremental check waits on it for the CRM's clock to tick
        self.tag = uuid.uuid4().hex[:8]
        self._serial = itertools.count(1)

    # -- running ----------------------------------------------------------------------------
    @classmethod
    def check_names(cls) -> list[str]:
        """Every check of this contract (and of subclasses), by name, in a stable order."""
        return sorted(n for n in dir(cls) if n.startswith("check_") and callable(getattr(cls, n)))

    def run(self, name: str) -> None:
        """Run one check by name; AssertionError when the connector breaks the contract."""
        if name not in self.check_names():
            raise ValueError(f"unknown check {name!r}; known: {', '.join(self.check_names())}")
        check: Callable[[], None] = getattr(self, name)
        check()

    def run_all(self) -> None:
        """Run every check; one AssertionError listing all that failed."""
        failures: list[str] = []
        for name in self.check_names():
            try:
                self.run(name)
            except AssertionError as exc:
                failures.append(f"{name}: {exc}")
        require(not failures, "\n".join(failures))

    # -- hooks ------------------------------------------------------------------------------
    def value_for(self, logical_field: str, serial: int) -> str:
        """A valid value, unique to this contract and serial, that the CRM accepts for a field."""
        if logical_field == "email":
            return f"contract.{self.tag}.{serial}@example.com"
        if logical_field == "phone":
            return f"+1415555{serial % 10_000:04d}"
        return f"contract-{self.tag}-{serial}"

    # -- helpers ----------------------------------------------------------------------------
    @contextmanager
    def _connector(self, *, opt_out: bool = True) -> Iterator[Connector]:
        connector = self.harness.make_connector(opt_out=opt_out)
        try:
            require(bool(connector.field_map), "the connector maps no logical field")
            yield connector
        finally:
            connector.close()

    def _seed(
        self, connector: Connector, missing: Sequence[str] = (), *, opted_out: bool = False
    ) -> str:
        """A record holding a unique value in every mapped field except those `missing`."""
        serial = next(self._serial)
        values = {
            name: None if name in missing else self.value_for(name, serial)
            for name in connector.field_map
        }
        return self.harness.add_record(
            values, first_name="Contract", last_name=f"Check{self.tag}{serial}", opted_out=opted_out
        )

    def _selection(self, connector: Connector, wanted: Sequence[str] | None = None) -> Selection:
        selection = replace(connector.selection(), page_size=self.page_size)
        return replace(selection, wanted=frozenset(wanted)) if wanted else selection

    def _pages(self, connector: Connector, selection: Selection) -> list[list[Contact]]:
        return [list(page) for page in connector.iter_candidates(selection)]

    def _candidate_ids(self, connector: Connector, selection: Selection | None = None) -> list[str]:
        pages = self._pages(connector, selection or self._selection(connector))
        return [contact.id for page in pages for contact in page]

    def _write(self, connector: Connector, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        try:
            outcomes = connector.write(updates)
        except Exception as exc:
            raise AssertionError(f"write raised {type(exc).__name__}: {exc}") from exc
        got = [o.record_id for o in outcomes]
        want = [u.record_id for u in updates]
        require(got == want, f"write outcomes {got} are not one per update in order {want}")
        return outcomes

    # -- candidates -------------------------------------------------------------------------
    def check_candidates_are_exactly_records_missing_a_wanted_field(self) -> None:
        """Each record missing a wanted field is found once, over 2+ pages; complete ones never."""
        with self._connector() as connector:
            names = sorted(connector.field_map)
            missing = [
                self._seed(connector, [names[i % len(names)]])
                for i in range(2 * self.page_size + 1)
            ]
            missing.append(self._seed(connector, names))
            complete = [self._seed(connector), self._seed(connector)]
            pages = self._pages(connector, self._selection(connector))
            ids = [contact.id for page in pages for contact in page]
            require(len(pages) >= 2, f"{len(ids)} candidates came in {len(pages)} page(s), not 2+")
            twice = sorted({i for i in ids if ids.count(i) > 1})
            require(not twice, f"records yielded more than once: {twice}")
            lost = [i for i in missing if i not in ids]
            require(not lost, f"records missing a wanted field were not found: {lost}")
            found = [i for i in complete if i in ids]
            require(not found, f"records holding every wanted field were found: {found}")
            for contact in (c for page in pages for c in page):
                gaps = [n for n in names if contact.value(n) is None]
                require(bool(gaps), f"candidate {contact.id} holds every wanted field")
            for record_id in missing:
                gaps = [n for n in names if self.harness.get_value(record_id, n) is None]
                require(bool(gaps), f"the sandbox holds every field of seeded {record_id}")

    def check_candidates_follow_the_wanted_fields(self) -> None:
        """A record missing only a field that is not wanted is no candidate."""
        with self._connector() as connector:
            names = sorted(connector.field_map)
            if len(names) < 2:
                return  # one mapped field: nothing narrower to select
            first, second = names[0], names[1]
            lacks_first = self._seed(connector, [first])
            lacks_second = self._seed(connector, [second])
            ids = self._candidate_ids(connector, self._selection(connector, [first]))
            require(lacks_first in ids, f"record missing {first!r} not found when it is wanted")
            require(
                lacks_second not in ids,
                f"record missing only {second!r} found when only {first!r} is wanted",
            )

    def check_candidates_come_in_a_stable_order(self) -> None:
        """Two passes over unchanged data yield the same ids in the same order."""
        with self._connector() as connector:
            names = sorted(connector.field_map)
            for _ in range(self.page_size + 1):
                self._seed(connector, names[:1])
            first = self._candidate_ids(connector)
            second = self._candidate_ids(connector)
            require(first == second, f"order changed between passes: {first} then {second}")

    def check_candidates_are_contacts_with_none_for_empty(self) -> None:
        """Candidates are Contact values; empty CRM values (even "") are None, never ""."""
        with self._connector() as connector:
            names = sorted(connector.field_map)
            seeded = self._seed(connector, names[:1])
            cleared = self._seed(connector)
            self.harness.set_value(cleared, names[0], "")
            pages = self._pages(connector, self._selection(connector))
            contacts = {c.id: c for page in pages for c in page}
            for page in pages:
                for contact in page:
                    require(isinstance(contact, Contact), f"a candidate is a {type(contact)}")
                    _check_no_empty_strings(contact)
            require(seeded in contacts, f"seeded record {seeded} missing {names[0]} not found")
            require(cleared in contacts, f"a field cleared to '' did not make {cleared} a gap")
            for record_id in (seeded, cleared):
                contact = contacts[record_id]
                require(contact.value(names[0]) is None, f"{record_id}.{names[0]} is not None")
                for name in names[1:]:
                    sandbox = self.harness.get_value(record_id, name)
                    require(
                        contact.value(name) == sandbox,
                        f"{record_id}.{name} is {contact.value(name)!r}, sandbox holds {sandbox!r}",
                    )
            require(contacts[seeded].first_name == "Contract", "first_name not read")

    def check_opted_out_records_are_never_candidates(self) -> None:
        """Opted-out records are no candidates; without the opt-out field they would be."""
        with self._connector() as connector:
            names = sorted(connector.field_map)
            opted = [self._seed(connector, names, opted_out=True) for _ in range(2)]
            ids = self._candidate_ids(connector)
            found = [i for i in opted if i in ids]
            require(not found, f"opted-out records were candidates: {found}")
        with self._connector(opt_out=False) as connector:
            ids = self._candidate_ids(connector)
            lost = [i for i in opted if i not in ids]
            require(not lost, f"without an opt-out field, records were not found: {lost}")

    # -- read -------------------------------------------------------------------------------
    def check_read_returns_current_values_and_omits_unknown_ids(self) -> None:
        """`read` shows a person's edit made since the last read, and leaves unknown ids out."""
        with self._connector() as connector:
            names = sorted(connector.field_map)
            record_id = self._seed(connector, names)
            before = connector.read([record_id])
            require(set(before) == {record_id}, f"read([{record_id}]) gave {sorted(before)}")
            edited = self.value_for(names[0], next(self._serial))
            self.harness.set_value(record_id, names[0], edited)
            unknown = self.harness.unknown_id()
            found = connector.read([record_id, unknown])
            require(set(found) == {record_id}, f"read([{record_id}, unknown]) gave {sorted(found)}")
            contact = found[record_id]
            require(isinstance(contact, Contact), f"read gave a {type(contact)}")
            _check_no_empty_strings(contact)
            got = contact.value(names[0])
            require(got == edited, f"read {names[0]}={got!r}, the CRM holds {edited!r}")
            for name in names[1:]:
                require(contact.value(name) is None, f"read {name}={contact.value(name)!r}")
            require(connector.read([]) == {}, "read([]) is not empty")

    # -- configuration ----------------------------------------------------------------------
    def check_check_returns_result_lines(self) -> None:
        """`check()` gives CheckResult lines, all passing against a healthy sandbox."""
        with self._connector() as connector:
            results = connector.check()
            require(isinstance(results, list) and bool(results), f"check() gave {results!r}")
            for result in results:
                require(isinstance(result, CheckResult), f"check() line {result!r}")
                require(bool(result.name.strip()), f"a check line has no name: {result!r}")
                require(result.ok, f"check line failed on a healthy sandbox: {result!r}")
                require(not result.credentials_refused, f"credentials refused: {result!r}")

    def check_settings_model_rejects_unknown_keys(self) -> None:
        """The settings model accepts the source's settings and refuses an unknown key."""
        with self._connector() as connector:
            model = connector.settings_model
            require(issubclass(model, ConnectorSettings), f"{model} is no ConnectorSettings")
            settings = dict(connector.source.settings)
            model.model_validate(settings)
            try:
                model.model_validate({**settings, "contract_no_such_key": True})
            except ValidationError as exc:
                kinds = {e["type"] for e in exc.errors()}
                require("extra_forbidden" in kinds, f"refused, but not as unknown: {kinds}")
                return
            raise AssertionError(f"{model.__name__} accepted an unknown key")


def _check_no_empty_strings(contact: Contact) -> None:
    require(isinstance(contact.id, str) and bool(contact.id), f"contact id {contact.id!r}")
    for item in dataclass_fields(contact):
        value = getattr(contact, item.name)
        require(
            value is None or (isinstance(value, str) and bool(value.strip())),
            f"{contact.id}.{item.name} is {value!r}, not None or text",
        )
