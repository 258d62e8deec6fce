"""HubSpot's incremental scan: candidates created or modified since a cursor, oldest first.

The same filter groups as the full scan (one per property to fill, ANDed with the user's filters
and the opt-out filter), each with `lastmodifieddate GTE <cursor>` in place of the id keyset;
when HubSpot's limits leave room, the groups are repeated with `createdate GTE <cursor>` (a
record whose modification date the search index has not caught up with is still found by its
creation). Date values are epoch milliseconds, as HubSpot documents.

Paging is a keyset on time, sorted by `lastmodifieddate` ascending: the next page asks for
`GTE <last date seen>` again and drops the ids already yielded at that instant. A full page of
one instant moves on with `after` instead, so the scan never loops. Our own writes move records
*later* (and out of the gap set): the keyset neither skips nor repeats because of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from hubspot.crm.contacts import PublicObjectSearchRequest

from connectors.base import Change, ConnectorLimits, Contact, Selection
from connectors.hubspot.filters import (
    MAX_FILTERS_PER_GROUP,
    MAX_FILTERS_TOTAL,
    MAX_GROUPS,
    build_groups,
)

T = TypeVar("T")


class Searcher(Protocol):
    """What the scan needs of the HubSpot connector (which passes itself): no import back."""

    @property
    def limits(self) -> ConnectorLimits: ...

    @property
    def field_map(self) -> Mapping[str, str]: ...

    def search_properties(self) -> list[str]: ...

    def search_page(self, fn: Callable[[], T]) -> T: ...

    def run_search(self, request: PublicObjectSearchRequest) -> Any: ...

    def to_contact(self, record_id: str, props: dict[str, Any]) -> Contact: ...


DATE_PROPERTIES = ("createdate", "lastmodifieddate")


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime (what HubSpot's date filters take)."""
    return int(moment.timestamp() * 1000)


def parse_date(value: Any) -> datetime | None:
    """HubSpot's date text (`2024-01-01T00:00:00.000Z`, or epoch ms) as an aware datetime."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def changed_groups(
    gap_properties: list[str], user_filters: Any, opt_out_field: str | None, since_ms: int
) -> list[dict[str, Any]]:
    """The full scan's groups with a date bound; createdate twins only where they fit."""
    base = build_groups(gap_properties, user_filters, opt_out_field, None)
    by_modified = [{"filters": [*g["filters"], _gte("lastmodifieddate", since_ms)]} for g in base]
    by_created = [{"filters": [*g["filters"], _gte("createdate", since_ms)]} for g in base]
    both = by_modified + by_created
    total = sum(len(g["filters"]) for g in both)
    widest = max((len(g["filters"]) for g in both), default=0)
    if len(both) <= MAX_GROUPS and total <= MAX_FILTERS_TOTAL and widest <= MAX_FILTERS_PER_GROUP:
        return both
    return by_modified


def _gte(name: str, since_ms: int) -> dict[str, Any]:
    return {"propertyName": name, "operator": "GTE", "value": str(since_ms)}


def iter_changed(
    connector: Searcher, selection: Selection, since: datetime
) -> Iterator[list[Change]]:
    """Pages of changed candidates, ascending by `lastmodifieddate`, each record once."""
    limit = min(selection.page_size or connector.limits.page_size, connector.limits.page_size)
    wanted = sorted(f for f in selection.wanted if f in connector.field_map)
    if not wanted:
        return
    properties = list(dict.fromkeys([*connector.search_properties(), *DATE_PROPERTIES]))
    bound_ms, offset = to_ms(since), 0
    seen: set[str] = set()
    while True:
        groups = changed_groups(
            [connector.field_map[f] for f in wanted],
            selection.filters,
            selection.opt_out_field,
            bound_ms,
        )
        request = PublicObjectSearchRequest(
            filter_groups=groups,
            sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            properties=properties,
            limit=limit,
            after=str(offset),
        )
        page = connector.search_page(functools.partial(connector.run_search, request))
        records = list(page.results or [])
        changes = [c for c in (_change(connector, r) for r in records) if c is not None]
        fresh = [c for c in changes if c.contact.id not in seen]
        seen.update(c.contact.id for c in fresh)
        if fresh:
            yield fresh
        if page.paging is None or not records:
            return
        last_ms = to_ms(changes[-1].modified_at) if changes else bound_ms
        if last_ms > bound_ms:
            bound_ms, offset = last_ms, 0
        else:  # a full page of one instant: step past it by offset
            offset += len(records)


def _change(connector: Searcher, record: Any) -> Change | None:
    props = record.properties or {}
    modified = parse_date(props.get("lastmodifieddate")) or getattr(record, "updated_at", None)
    if modified is None:
        return None
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    created = parse_date(props.get("createdate")) or getattr(record, "created_at", None)
    return Change(connector.to_contact(record.id, props), modified, created)
