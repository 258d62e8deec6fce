"""Contract checks of the incremental scan, for connectors that declare INCREMENTAL_SCAN.

Mixed into `connectors.testing.ConnectorContract`, so every connector runs them; a connector
without the capability passes by declaring it consistently (the base `iter_changed` raises).
Timestamps of some CRMs have one-second resolution (Salesforce's `SystemModstamp`), so the check
waits just over a second between the cursor and the changes it expects to see.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

from connectors.base import INCREMENTAL_SCAN, Change, Connector
from connectors.testing_harness import ContractParts, require

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_STEP_SECONDS = 1.05


class IncrementalChecks(ContractParts):
    """`check_incremental_*`: what the fresh lane relies on."""

    def _changes(self, connector: Connector, since: datetime) -> list[list[Change]]:
        selection = replace(connector.selection(), page_size=self.page_size)
        return [list(page) for page in connector.iter_changed(selection, since)]

    def check_incremental_capability_is_declared_consistently(self) -> None:
        """A connector offers `iter_changed` exactly when it declares INCREMENTAL_SCAN."""
        with self._connector() as connector:
            overridden = type(connector).iter_changed is not Connector.iter_changed
            declared = INCREMENTAL_SCAN in connector.capabilities
            require(
                overridden == declared,
                f"INCREMENTAL_SCAN declared={declared} but iter_changed overridden={overridden}",
            )

    def check_incremental_scan_finds_what_changed_after_the_cursor(self) -> None:
        """New and edited gaps after the cursor are found once, oldest first; others are not."""
        with self._connector() as connector:
            if INCREMENTAL_SCAN not in connector.capabilities:
                return
            names = sorted(connector.field_map)
            old_gap = self._seed(connector, names[:1])
            edited = self._seed(connector)
            first = [c for page in self._changes(connector, EPOCH) for c in page]
            require(old_gap in {c.contact.id for c in first}, "a gap was not found from 2000")
            require(edited not in {c.contact.id for c in first}, "a complete record was found")
            cursor = max(c.modified_at for c in first)
            self.clock.sleep(CLOCK_STEP_SECONDS)
            new = [self._seed(connector, names[:1]) for _ in range(2 * self.page_size + 1)]
            complete = self._seed(connector)
            opted = self._seed(connector, names, opted_out=True)
            self.harness.set_value(edited, names[0], None)
            pages = self._changes(connector, cursor)
            changes = [c for page in pages for c in page]
            ids = [c.contact.id for c in changes]
            require(len(pages) >= 2, f"{len(ids)} changes came in {len(pages)} page(s), not 2+")
            twice = sorted({i for i in ids if ids.count(i) > 1})
            require(not twice, f"changes yielded more than once: {twice}")
            lost = [i for i in [*new, edited] if i not in ids]
            require(not lost, f"records changed after the cursor were not found: {lost}")
            wrong = [i for i in (complete, opted) if i in ids]
            require(not wrong, f"complete or opted-out records were found: {wrong}")
            stamps = [c.modified_at for c in changes]
            require(all(s.tzinfo is not None for s in stamps), "modified_at is not tz-aware")
            require(stamps == sorted(stamps), "changes are not oldest first")
            # Unchanged records (old_gap included) may come back only at the cursor's instant.
            require(all(s >= cursor for s in stamps), "a change before the cursor was yielded")
            for change in changes:
                gaps = [n for n in names if change.contact.value(n) is None]
                require(bool(gaps), f"changed candidate {change.contact.id} has no gap")


def iter_pages(connector: Connector, since: datetime) -> Iterator[list[Change]]:
    """Every page of an incremental scan with the source's own selection (for harness tests)."""
    yield from connector.iter_changed(connector.selection(), since)
