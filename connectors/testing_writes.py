"""Contract checks of `write` and `read` in batches: outcomes per update, batch limits, no I/O
for an empty value.

Mixed into `connectors.testing.ConnectorContract`. The engine hands `write` and `read` any
number of records: the connector splits them by its own `limits`, so these checks send one more
than a batch holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from connectors.base import Connector, FieldUpdate, WriteStatus
from connectors.testing_harness import ContractParts, require


class WriteChecks(ContractParts):
    """`check_write_*`, `check_*_beyond_one_batch_*`, `check_limits_*`, `check_empty_values_*`."""

    def check_write_outcomes_are_one_per_update_in_order(self) -> None:
        """A rejected record (unknown id) is REJECTED with a reason; the others are WRITTEN."""
        with self._connector() as connector:
            names = sorted(connector.field_map)
            first = self._seed(connector, names)
            second = self._seed(connector, names[:1])
            kept = {n: self.harness.get_value(second, n) for n in names[1:]}
            serial = next(self._serial)
            full = {n: self.value_for(n, serial) for n in names}
            partial = {names[0]: self.value_for(names[0], next(self._serial))}
            unknown = self.harness.unknown_id()
            updates = [
                FieldUpdate(first, full),
                FieldUpdate(unknown, {names[0]: self.value_for(names[0], next(self._serial))}),
                FieldUpdate(second, partial),
            ]
            outcomes = self._write(connector, updates)
            statuses = [o.status for o in outcomes]
            expected = [WriteStatus.WRITTEN, WriteStatus.REJECTED, WriteStatus.WRITTEN]
            require(statuses == expected, f"write statuses {statuses}, expected {expected}")
            require(bool(outcomes[1].reason.strip()), "the rejection gives no reason")
            self._require_written(connector, {first: full, second: {**partial, **kept}})

    def _require_written(
        self, connector: Connector, wanted: Mapping[str, Mapping[str, Any]]
    ) -> None:
        """Each record holds these values, in the sandbox and through `read`."""
        found = connector.read(list(wanted))
        for record_id, values in wanted.items():
            require(record_id in found, f"written record {record_id} cannot be read")
            for name, value in values.items():
                sandbox = self.harness.get_value(record_id, name)
                require(sandbox == value, f"sandbox {record_id}.{name}={sandbox!r}, not {value!r}")
                got = found[record_id].value(name)
                require(got == value, f"read {record_id}.{name}={got!r}, not {value!r}")

    def check_limits_are_positive(self) -> None:
        """The connector has a name, and its batch sizes and rate are positive."""
        with self._connector() as connector:
            limits = connector.limits
            require(bool(getattr(connector, "name", "")), "the connector has no name")
            for label in ("page_size", "read_batch_size", "write_batch_size"):
                value = getattr(limits, label)
                require(isinstance(value, int) and value > 0, f"limits.{label} is {value!r}")

    def check_writes_beyond_one_batch_all_land(self) -> None:
        """`write_batch_size + 1` updates in one call are all WRITTEN and all in the CRM."""
        with self._connector() as connector:
            name = sorted(connector.field_map)[0]
            count = connector.limits.write_batch_size + 1
            ids = [self._seed(connector, [name]) for _ in range(count)]
            values = {i: {name: self.value_for(name, next(self._serial))} for i in ids}
            outcomes = self._write(connector, [FieldUpdate(i, values[i]) for i in ids])
            refused = [o for o in outcomes if o.status is not WriteStatus.WRITTEN]
            require(not refused, f"{len(refused)} of {count} refused, first: {refused[:1]}")
            for record_id in ids:
                held = self.harness.get_value(record_id, name)
                wanted = values[record_id][name]
                require(held == wanted, f"sandbox {record_id}.{name}={held!r}, not {wanted!r}")
            self._require_written(connector, {i: values[i] for i in (ids[0], ids[-1])})

    def check_reads_beyond_one_batch_come_back_whole(self) -> None:
        """`read` of `read_batch_size + 1` ids returns every one of them."""
        with self._connector() as connector:
            names = sorted(connector.field_map)
            count = connector.limits.read_batch_size + 1
            ids = [self._seed(connector, names[1:]) for _ in range(count)]
            found = connector.read(ids)
            lost = [i for i in ids if i not in found]
            require(not lost, f"read lost {len(lost)} of {count} ids, first: {lost[:3]}")
            for record_id in ids:
                got = found[record_id].value(names[0])
                held = self.harness.get_value(record_id, names[0])
                require(got == held, f"read {record_id}.{names[0]}={got!r}, CRM holds {held!r}")

    def check_empty_values_are_refused_before_io(self) -> None:
        """A FieldUpdate with an empty value cannot be built, so nothing reaches the CRM."""
        with self._connector() as connector:
            name = sorted(connector.field_map)[0]
            record_id = self._seed(connector, [name])
            calls = dict(connector.calls.counts)
            for empty in ("", None):
                try:
                    FieldUpdate(record_id, {name: cast(str, empty)})
                except ValueError:
                    continue
                raise AssertionError(f"FieldUpdate accepted {empty!r} for {name!r}")
            require(dict(connector.calls.counts) == calls, "the connector made calls")
            held = self.harness.get_value(record_id, name)
            require(held is None, f"{record_id}.{name} became {held!r}")
