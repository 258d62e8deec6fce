"""The HubSpot incremental scan's paging: a keyset on time, and `after` within one instant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from connectors.hubspot import HubSpotConnector
from crm_sync.sandbox.hubspot import HubSpotEmulator
from tests.support.hubspot import TOKEN


def test_many_records_of_one_instant_are_each_yielded_once(
    connect: Callable[..., HubSpotConnector],
) -> None:
    """Seven changes at the same millisecond, pages of three: all seven, once, none lost."""
    emulator = HubSpotEmulator(token=TOKEN, search_per_second=1000, ten_secondly_limit=10_000)
    instant = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    same = [
        emulator.store.add({"firstname": f"S{i}", "lastname": "Same", "company": "Acme"}, instant)
        for i in range(7)
    ]
    later = emulator.store.add(
        {"firstname": "L", "lastname": "Later", "company": "Acme"}, instant + timedelta(seconds=1)
    )
    connector = connect(emulator)
    selection = replace(connector.selection(), page_size=3)
    pages = list(connector.iter_changed(selection, instant - timedelta(seconds=1)))
    ids = [c.contact.id for page in pages for c in page]
    assert sorted(ids) == sorted([*same, later])
    assert ids[-1] == later
    assert all(c.created_at == c.modified_at for page in pages for c in page)


def test_the_date_filter_is_sent_as_epoch_milliseconds(
    connect: Callable[..., HubSpotConnector],
) -> None:
    """HubSpot documents epoch milliseconds for date filters: that is what goes on the wire."""
    emulator = HubSpotEmulator(token=TOKEN)
    connector = connect(emulator)
    since = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    list(connector.iter_changed(connector.selection(), since))
    body = next(e.body for e in emulator.exchanges if e.path.endswith("/search")).decode()
    assert f'"value": "{int(since.timestamp() * 1000)}"' in body.replace('":"', '": "')
    assert '"propertyName": "lastmodifieddate"' in body.replace('":"', '": "')
